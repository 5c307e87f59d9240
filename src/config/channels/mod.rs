//! `channels:` where public updates and ops notices go, one entry per channel; the `type` key
//! picks the kind. The email channel's many settings live in `email.rs`.

mod email;

use std::time::Duration;

use serde::Deserialize;

use super::{check_id, de_duration, de_url, join, ComponentConfig, Config, ConfigError, Secret};
pub use email::{DkimConfig, EmailConfig};

/// Limits that apply to every channel kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelLimits {
    /// Sends per minute at most (unset: unlimited).
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// Deliveries in flight at once (and claimed in one pass). Unset: 64 for the `log` kind
    /// (a local append that can take many at once), 4 for every remote kind.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Overrides `outbox.max_attempts` for this channel.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// One delivery attempt may take this long.
    #[serde(default = "default_send_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

fn default_send_timeout() -> Duration {
    Duration::from_secs(15)
}

impl Default for ChannelLimits {
    fn default() -> Self {
        Self {
            per_minute: None,
            concurrency: None,
            max_attempts: None,
            timeout: default_send_timeout(),
        }
    }
}

/// Which public updates a channel carries. Empty lists mean "all".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelFilter {
    /// Only incidents of these impacts.
    #[serde(default)]
    pub impacts: Vec<crate::domain::Impact>,
    /// Only incidents touching at least one of these component ids.
    #[serde(default)]
    pub components: Vec<String>,
}

impl ChannelFilter {
    /// Whether an incident of `impact` touching `components` goes to this channel.
    pub fn accepts<'a>(
        &self,
        impact: crate::domain::Impact,
        mut components: impl Iterator<Item = &'a str>,
    ) -> bool {
        (self.impacts.is_empty() || self.impacts.contains(&impact))
            && (self.components.is_empty()
                || components.any(|c| self.components.iter().any(|f| f == c)))
    }
}

/// One outgoing channel. The `type` key picks the kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelConfig {
    /// One JSON line per outgoing message, to stdout (`-`) or appended to a file.
    Log {
        #[serde(default = "default_log_path")]
        path: String,
        #[serde(default)]
        limits: ChannelLimits,
        #[serde(default)]
        only: ChannelFilter,
    },
    /// An HTTP POST of the message as JSON to a URL of yours.
    Webhook {
        #[serde(deserialize_with = "de_url")]
        url: url::Url,
        /// Sent as `Authorization: Bearer ...` when set.
        #[serde(default)]
        bearer_token: Option<Secret>,
        /// A `whsec_`-prefixed base64 key: the body is then signed following Standard Webhooks
        /// (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
        #[serde(default)]
        signing_secret: Option<Secret>,
        #[serde(default)]
        limits: ChannelLimits,
        #[serde(default)]
        only: ChannelFilter,
    },
    /// A Mastodon account: `POST /api/v1/statuses` with an access token.
    Mastodon {
        /// The instance, e.g. `https://mastodon.social`.
        #[serde(deserialize_with = "de_url")]
        instance: url::Url,
        /// An access token with the `write:statuses` scope.
        access_token: Secret,
        #[serde(default)]
        limits: ChannelLimits,
        #[serde(default)]
        only: ChannelFilter,
    },
    /// A Bluesky (AT Protocol) account, signed in with an app password.
    Bluesky {
        /// The account's PDS or entryway (default `https://bsky.social`).
        #[serde(default = "default_bluesky_service", deserialize_with = "de_url")]
        service: url::Url,
        /// The handle (`status.example.com`) or DID.
        identifier: String,
        /// An app password (Settings → App passwords), never the account password.
        app_password: Secret,
        #[serde(default)]
        limits: ChannelLimits,
        #[serde(default)]
        only: ChannelFilter,
    },
    /// An X account: `POST /2/tweets` with OAuth 1.0a user-context keys.
    X {
        /// The API base (default `https://api.x.com`).
        #[serde(default = "default_x_api", deserialize_with = "de_url")]
        api_url: url::Url,
        consumer_key: Secret,
        consumer_secret: Secret,
        access_token: Secret,
        access_token_secret: Secret,
        #[serde(default)]
        limits: ChannelLimits,
        #[serde(default)]
        only: ChannelFilter,
    },
    /// Slack: an incoming webhook (`webhook_url`), or `chat.postMessage` with a bot token
    /// (`bot_token` and `channel`), which threads each incident's messages.
    Slack {
        /// An incoming webhook's URL (it is the credential: keep it in the environment).
        #[serde(default)]
        webhook_url: Option<Secret>,
        /// A bot token (`xoxb-...`) of an app with the `chat:write` scope, invited to `channel`.
        #[serde(default)]
        bot_token: Option<Secret>,
        /// The channel's ID (`C0123456789`), for `bot_token`.
        #[serde(default)]
        channel: Option<String>,
        /// The Web API base (default `https://slack.com/api`).
        #[serde(default = "default_slack_api", deserialize_with = "de_url")]
        api_url: url::Url,
        #[serde(default)]
        limits: ChannelLimits,
        #[serde(default)]
        only: ChannelFilter,
    },
    /// A Discord webhook (Execute Webhook, with `?wait=true`).
    Discord {
        /// The webhook URL (it is the credential: keep it in the environment).
        webhook_url: Secret,
        /// The webhook's channel is a forum: each incident starts a post named after it, and
        /// its later messages go into that post.
        #[serde(default)]
        forum: bool,
        /// Every message goes into this existing thread (its id, digits only).
        #[serde(default)]
        thread_id: Option<String>,
        #[serde(default)]
        limits: ChannelLimits,
        #[serde(default)]
        only: ChannelFilter,
    },
    /// Mail to the confirmed subscribers of the status page, over SMTP.
    Email(Box<EmailConfig>),
}

fn default_log_path() -> String {
    "-".to_string()
}

fn default_bluesky_service() -> url::Url {
    url::Url::parse("https://bsky.social").expect("valid URL")
}

fn default_x_api() -> url::Url {
    url::Url::parse("https://api.x.com").expect("valid URL")
}

fn default_slack_api() -> url::Url {
    url::Url::parse("https://slack.com/api").expect("valid URL")
}

impl ChannelConfig {
    pub fn limits(&self) -> &ChannelLimits {
        match self {
            ChannelConfig::Log { limits, .. }
            | ChannelConfig::Webhook { limits, .. }
            | ChannelConfig::Mastodon { limits, .. }
            | ChannelConfig::Bluesky { limits, .. }
            | ChannelConfig::X { limits, .. }
            | ChannelConfig::Slack { limits, .. }
            | ChannelConfig::Discord { limits, .. } => limits,
            ChannelConfig::Email(e) => &e.limits,
        }
    }
    /// Deliveries in flight at once: `limits.concurrency`, else the kind's default.
    pub fn concurrency(&self) -> u32 {
        self.limits().concurrency.unwrap_or(match self {
            ChannelConfig::Log { .. } => 64,
            _ => 4,
        })
    }
    /// Which public updates this channel carries.
    pub fn only(&self) -> &ChannelFilter {
        match self {
            ChannelConfig::Log { only, .. }
            | ChannelConfig::Webhook { only, .. }
            | ChannelConfig::Mastodon { only, .. }
            | ChannelConfig::Bluesky { only, .. }
            | ChannelConfig::X { only, .. }
            | ChannelConfig::Slack { only, .. }
            | ChannelConfig::Discord { only, .. } => only,
            ChannelConfig::Email(e) => &e.only,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Log { .. } => "log",
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Mastodon { .. } => "mastodon",
            ChannelConfig::Bluesky { .. } => "bluesky",
            ChannelConfig::X { .. } => "x",
            ChannelConfig::Slack { .. } => "slack",
            ChannelConfig::Discord { .. } => "discord",
            ChannelConfig::Email(_) => "email",
        }
    }

    /// Checks a channel's own keys (called from [`Config::validate`]).
    fn validate(&self, id: &str, components: &[ComponentConfig]) -> Result<(), ConfigError> {
        for (i, c) in self.only().components.iter().enumerate() {
            if !components.iter().any(|k| &k.id == c) {
                return Err(ConfigError::invalid(
                    format!("channels.{id}.only.components[{i}]"),
                    format!(
                        "unknown component `{c}`; expected one of: {}",
                        join(components.iter().map(|k| k.id.as_str()))
                    ),
                ));
            }
        }
        let empty = |key: &str, value: &str| {
            if value.trim().is_empty() {
                Err(ConfigError::invalid(
                    format!("channels.{id}.{key}"),
                    "must not be empty (is its environment variable set?)",
                ))
            } else {
                Ok(())
            }
        };
        let webhook_url = |key: &str, value: &Secret| {
            empty(key, value.expose())?;
            match url::Url::parse(value.expose()) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Ok(()),
                // The URL is the credential: never echo it.
                _ => Err(ConfigError::invalid(
                    format!("channels.{id}.{key}"),
                    "is not an http(s) URL",
                )),
            }
        };
        match self {
            ChannelConfig::Log { .. } => Ok(()),
            ChannelConfig::Webhook { signing_secret, .. } => match signing_secret {
                Some(s) if crate::channels::webhook::signing_key(s).is_none() => {
                    Err(ConfigError::invalid(
                        format!("channels.{id}.signing_secret"),
                        "must be `whsec_` followed by base64 (at least 24 bytes of key)",
                    ))
                }
                _ => Ok(()),
            },
            ChannelConfig::Mastodon { access_token, .. } => {
                empty("access_token", access_token.expose())
            }
            ChannelConfig::Bluesky {
                identifier,
                app_password,
                ..
            } => {
                empty("identifier", identifier)?;
                empty("app_password", app_password.expose())
            }
            ChannelConfig::X {
                consumer_key,
                consumer_secret,
                access_token,
                access_token_secret,
                ..
            } => {
                empty("consumer_key", consumer_key.expose())?;
                empty("consumer_secret", consumer_secret.expose())?;
                empty("access_token", access_token.expose())?;
                empty("access_token_secret", access_token_secret.expose())
            }
            ChannelConfig::Slack {
                webhook_url: url,
                bot_token,
                channel,
                ..
            } => match (url, bot_token, channel) {
                (Some(u), None, None) => webhook_url("webhook_url", u),
                (None, Some(token), Some(channel)) => {
                    empty("bot_token", token.expose())?;
                    empty("channel", channel)?;
                    if !token.expose().starts_with("xox") {
                        // Never echo a credential.
                        return Err(ConfigError::invalid(
                            format!("channels.{id}.bot_token"),
                            "is not a Slack token (a bot token starts with `xoxb-`: OAuth & Permissions in the app's settings)",
                        ));
                    }
                    Ok(())
                }
                (Some(_), Some(_), _) => Err(ConfigError::invalid(
                    format!("channels.{id}.bot_token"),
                    "give either webhook_url (an incoming webhook) or bot_token and channel (chat.postMessage, which threads), not both",
                )),
                (Some(_), None, Some(_)) => Err(ConfigError::invalid(
                    format!("channels.{id}.channel"),
                    "goes with bot_token; an incoming webhook posts to the channel it was made for",
                )),
                (None, Some(_), None) => Err(ConfigError::invalid(
                    format!("channels.{id}.channel"),
                    "is needed with bot_token: the channel's ID (C0123456789, from the channel's details)",
                )),
                (None, None, _) => Err(ConfigError::invalid(
                    format!("channels.{id}.webhook_url"),
                    "give webhook_url (an incoming webhook) or bot_token and channel (chat.postMessage, which threads)",
                )),
            },
            ChannelConfig::Discord {
                webhook_url: u,
                forum,
                thread_id,
                ..
            } => {
                webhook_url("webhook_url", u)?;
                match thread_id {
                    Some(_) if *forum => Err(ConfigError::invalid(
                        format!("channels.{id}.thread_id"),
                        "goes without forum: true (a forum channel gets a post per incident; thread_id sends everything into one thread)",
                    )),
                    Some(t) if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) => {
                        Err(ConfigError::invalid(
                            format!("channels.{id}.thread_id"),
                            format!("`{t}` is not a thread's id (digits only: Copy Thread ID in Discord's developer mode)"),
                        ))
                    }
                    _ => Ok(()),
                }
            }
            // Checked by `EmailConfig::validate`.
            ChannelConfig::Email(_) => Ok(()),
        }
    }
    /// Whether one delivery may run longer than the lease (the outbox renews the lease while it
    /// runs, and each send inside it has its own timeout).
    pub fn long_running(&self) -> bool {
        matches!(self, ChannelConfig::Email(_))
    }
}

/// Checks every channel: its own keys, its limits against the outbox's lease, and that at most
/// one is an email channel (and none of those an ops channel).
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    if config.channels.is_empty() {
        return Err(ConfigError::invalid(
            "channels",
            "name at least one channel (the `log` kind needs no credentials)",
        ));
    }
    for (id, ch) in &config.channels {
        check_id(&format!("channels.{id}"), id)?;
        ch.validate(id, &config.components)?;
        let l = ch.limits();
        if l.concurrency == Some(0) {
            return Err(ConfigError::invalid(
                format!("channels.{id}.limits.concurrency"),
                "must be at least 1",
            ));
        }
        if l.per_minute == Some(0) {
            return Err(ConfigError::invalid(
                format!("channels.{id}.limits.per_minute"),
                "must be at least 1 (leave it out for no limit)",
            ));
        }
        if l.max_attempts == Some(0) {
            return Err(ConfigError::invalid(
                format!("channels.{id}.limits.max_attempts"),
                "must be at least 1",
            ));
        }
        if let ChannelConfig::Email(e) = ch {
            e.validate(&format!("channels.{id}"))?;
            if config.ops.channels.iter().any(|o| o == id) {
                return Err(ConfigError::invalid(
                    format!("channels.{id}"),
                    "an email channel mails subscribers; it cannot be an ops channel",
                ));
            }
        }
        if l.timeout.is_zero() || l.timeout >= config.outbox.lease {
            return Err(ConfigError::invalid(
                format!("channels.{id}.limits.timeout"),
                format!(
                    "must be more than 0 and shorter than outbox.lease ({})",
                    humantime::format_duration(config.outbox.lease)
                ),
            ));
        }
    }
    let emails: Vec<&String> = config
        .channels
        .iter()
        .filter(|(_, c)| matches!(c, ChannelConfig::Email(_)))
        .map(|(id, _)| id)
        .collect();
    if emails.len() > 1 {
        return Err(ConfigError::invalid(
                format!("channels.{}", emails[1]),
                format!(
                    "only one email channel may be configured (subscribers sign up for one); `{}` is already one",
                    emails[0]
                ),
            ));
    }
    Ok(())
}
