//! Where messages go. Each channel kind is one file implementing [`Channel`]; it knows its own
//! length limit, threading and which of its errors are worth retrying.

pub mod bluesky;
pub mod discord;
pub mod email;
pub mod fit;
mod http;
pub mod log;
pub mod mastodon;
pub mod slack;
mod test_mail;
pub mod webhook;
pub mod x;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{ChannelConfig, Config};
use crate::domain::{Audience, ComponentStatus, Impact, IncidentStatus};
use crate::render::Renderer;
pub use http::{
    classify_status, describe_reqwest_error, error_text, http_client, retry_after, wait_hint, Reset,
};

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A public update written by a person.
    Operator,
    /// A public holding update: the promised time came and nobody wrote.
    Scheduled,
    /// A public apology: the estimate passed and the incident is still open.
    Overdue,
    /// The public all-clear.
    Resolution,
    /// To the team: a promised update falls due soon.
    OpsReminder,
    /// To the team: the estimate has passed; post a new one.
    OpsEtaPassed,
    /// To the team: Alertmanager says the alerts behind an incident resolved; confirm it.
    OpsAlertResolved,
    /// To the team: an alert named a component (by label value) that the config does not map.
    OpsAlertUnmapped,
    /// To the team: a customer's conversation in the inbox waits unclaimed.
    OpsInboxWaiting,
    /// A maintenance window is announced.
    MaintenanceScheduled,
    /// An announced window changed (times, title, components) or was extended.
    MaintenanceUpdated,
    /// An advance reminder of a window (24 h before, 1 h before...).
    MaintenanceReminder,
    /// A window started: its components are under maintenance.
    MaintenanceStarted,
    /// A window ended: its components are back.
    MaintenanceCompleted,
    /// An announced window will not happen.
    MaintenanceCancelled,
    /// A published update was corrected: `Message::correction` says how.
    Correction,
    /// The incident's postmortem was published: the final post, linking to it.
    Postmortem,
}

/// What a correction message carries besides its announcement (`Message::body`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorrectionFacts {
    pub correction_id: i64,
    /// The corrected update.
    pub update_id: i64,
    /// When the corrected update was first posted.
    pub original_posted_at: DateTime<Utc>,
    /// The update's words as corrected.
    pub corrected_body: String,
    pub reason: String,
    /// Whether the meaning changed: a network that edits the original also replies then.
    pub meaning_changed: bool,
    /// The original post as it reads once edited (for networks that edit in place: Mastodon):
    /// the original message with the corrected words and a line saying so.
    pub edited: Box<Message>,
}

/// A component as a message names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentFacts {
    pub id: String,
    pub name: String,
    pub status: ComponentStatus,
}

/// The facts of one message, fixed when the update was posted, so every channel tells the same
/// story whenever it gets to send it. Stored as the delivery's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub audience: Audience,
    pub kind: MessageKind,
    pub site_name: String,
    pub incident_id: i64,
    pub incident_url: String,
    pub title: String,
    pub impact: Impact,
    pub status: IncidentStatus,
    pub components: Vec<ComponentFacts>,
    pub update_id: Option<i64>,
    /// The words of the update (or of the notice, for the team).
    pub body: String,
    pub started_at: DateTime<Utc>,
    pub eta_at: Option<DateTime<Utc>>,
    pub next_update_at: Option<DateTime<Utc>>,
    /// "We expect this fixed by 14:30 UTC." or an honest "no estimate yet", in the site's zone.
    pub eta_line: Option<String>,
    /// "Next update by 14:00 UTC."
    pub next_update_line: Option<String>,
    /// Who signs Candor's own messages (the incident's owner, or "The <site> team"); templates
    /// put it after everything else the message says. `None` for people's own words.
    #[serde(default)]
    pub signature: Option<String>,
    pub posted_at: DateTime<Utc>,
    /// Set on a `correction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<CorrectionFacts>,
}

/// A subscriber's confirmation mail (the double opt-in), as its delivery's payload: who it is
/// for, by id only. The address is read and a fresh link minted when it is sent, so the outbox
/// holds neither an address nor a token, and every attempt's mail carries a link that works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub subscriber_id: i64,
}

/// A reply to one customer's post, from the inbox (an operator's answer, or the "it is fixed"
/// that closes the loop), as its delivery's payload: the words and exactly what they answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub conversation_id: i64,
    /// The customer's post: Mastodon's status id, Bluesky's "`uri` `cid`".
    pub to: String,
    /// Bluesky: the thread's root post ("`uri` `cid`"); the post itself when it starts one.
    pub root: Option<String>,
    /// Mastodon: the customer's `acct`, mentioned first so they are told.
    pub mention: Option<String>,
    pub text: String,
    /// When it was queued (a stable part of idempotency keys and record keys).
    pub posted_at: DateTime<Utc>,
}

/// What the worker knows about this attempt.
#[derive(Debug, Clone)]
pub struct DeliveryContext {
    pub delivery_id: i64,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// A key unique to this delivery, stable across retries: for platforms that deduplicate.
    pub idempotency_key: String,
    /// The remote id of this incident's first post on this channel, for threading replies.
    pub thread_root: Option<String>,
    /// The remote id of this incident's latest post on this channel: what a reply answers, so
    /// the thread reads in order. Equal to `thread_root` after one post.
    pub thread_parent: Option<String>,
    /// On a correction: the remote id of the corrected update's post on this channel, if it
    /// was delivered here (what a network that edits posts edits).
    pub corrects: Option<String>,
    pub now: DateTime<Utc>,
}

/// A successful send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
}

/// A failed send, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (network trouble, 5xx, 429). `retry_after` is the remote's own
    /// word on when.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Will not succeed however often it is tried (bad credentials, rejected content).
    #[error("{reason}")]
    Permanent { reason: String },
}

impl SendError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
        }
    }
}

/// One outgoing channel.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The id given in config.
    fn id(&self) -> &str;
    /// Sends one message. Must not panic; must classify its errors.
    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError>;
    /// Sends one subscriber's confirmation mail. Only the email channel does; any other
    /// refuses for good.
    async fn confirm(&self, _c: &Confirmation, _ctx: &DeliveryContext) -> Result<Sent, SendError> {
        Err(SendError::permanent(format!(
            "channel `{}` does not send confirmation mails",
            self.id()
        )))
    }
    /// Sends one reply in a customer's thread (the inbox). Only Mastodon and Bluesky do; any
    /// other refuses for good.
    async fn reply(&self, _r: &Reply, _ctx: &DeliveryContext) -> Result<Sent, SendError> {
        Err(SendError::permanent(format!(
            "channel `{}` does not answer customers' posts",
            self.id()
        )))
    }
    /// Publishes the public site (a mirror). Only mirrors do; any other channel refuses for
    /// good.
    async fn publish(
        &self,
        _p: &crate::mirror::Publish,
        _ctx: &DeliveryContext,
    ) -> Result<Sent, SendError> {
        Err(SendError::permanent(format!(
            "channel `{}` does not publish the site",
            self.id()
        )))
    }
    /// The inbox's side of this channel (reading notifications), if it has one.
    fn listener(&self) -> Option<&dyn crate::inbox::Listener> {
        None
    }
    /// What this channel would publish for `msg`, exactly, for the console's preview: the text
    /// after fitting it to the platform's limit, and that limit. `None` for channels whose
    /// output is not a short text (or that do not take this audience).
    fn preview(&self, _msg: &Message) -> Option<Preview> {
        None
    }
    /// Whether this channel threads an incident's messages (replies to its earlier posts):
    /// only then does the outbox look up the thread before each send.
    fn threads(&self) -> bool {
        true
    }
}

/// A channel's rendering of one message, as the console previews it before posting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// The channel's kind as config names it (`log`, `mastodon`, ...).
    pub kind: &'static str,
    /// Exactly what would be published.
    pub text: String,
    /// The length as the platform counts it (graphemes, weighted characters, ...).
    pub length: usize,
    /// The platform's limit in the same unit, if it has one.
    pub limit: Option<usize>,
}

/// Builds the configured channels.
pub fn build(
    config: &Config,
    renderer: &Arc<Renderer>,
) -> anyhow::Result<BTreeMap<String, Arc<dyn Channel>>> {
    let mut out: BTreeMap<String, Arc<dyn Channel>> = BTreeMap::new();
    for (id, ch) in &config.channels {
        let r = renderer.clone();
        let timeout = ch.limits().timeout;
        let built: Arc<dyn Channel> = match ch {
            ChannelConfig::Log { path, .. } => Arc::new(log::LogChannel::open(id, path, r)?),
            ChannelConfig::Webhook {
                url,
                bearer_token,
                signing_secret,
                ..
            } => Arc::new(webhook::WebhookChannel::new(
                id,
                url.clone(),
                bearer_token.clone(),
                signing_secret.as_ref(),
                timeout,
                r,
            )?),
            ChannelConfig::Mastodon {
                instance,
                access_token,
                ..
            } => Arc::new(mastodon::MastodonChannel::new(
                id,
                instance.clone(),
                access_token.clone(),
                timeout,
                r,
            )?),
            ChannelConfig::Bluesky {
                service,
                identifier,
                app_password,
                ..
            } => Arc::new(bluesky::BlueskyChannel::new(
                id,
                service.clone(),
                identifier.clone(),
                app_password.clone(),
                timeout,
                r,
            )?),
            ChannelConfig::X {
                api_url,
                consumer_key,
                consumer_secret,
                access_token,
                access_token_secret,
                ..
            } => Arc::new(x::XChannel::new(
                id,
                api_url.clone(),
                x::Keys {
                    consumer_key: consumer_key.clone(),
                    consumer_secret: consumer_secret.clone(),
                    access_token: access_token.clone(),
                    access_token_secret: access_token_secret.clone(),
                },
                timeout,
                r,
            )?),
            ChannelConfig::Slack {
                webhook_url,
                bot_token,
                channel,
                api_url,
                ..
            } => {
                let target = match (webhook_url, bot_token, channel) {
                    (_, Some(token), Some(channel)) => slack::Target::Bot {
                        api: api_url.clone(),
                        token: token.clone(),
                        channel: channel.clone(),
                    },
                    (Some(url), _, _) => slack::Target::Webhook(url.clone()),
                    // `Config::validate` refuses this.
                    _ => anyhow::bail!("channel `{id}`: no webhook_url, or bot_token and channel"),
                };
                Arc::new(slack::SlackChannel::new(id, target, timeout, r)?)
            }
            ChannelConfig::Discord {
                webhook_url,
                forum,
                thread_id,
                ..
            } => {
                let threads = match (forum, thread_id) {
                    (_, Some(t)) => discord::Threads::Fixed(t.clone()),
                    (true, None) => discord::Threads::Forum,
                    (false, None) => discord::Threads::None,
                };
                Arc::new(discord::DiscordChannel::new(
                    id,
                    webhook_url.clone(),
                    threads,
                    timeout,
                    r,
                )?)
            }
            // Built by the app, which has the database it reads subscribers from.
            ChannelConfig::Email(_) => continue,
        };
        out.insert(id.clone(), built);
    }
    Ok(out)
}

/// The message as a short post, for channels that send its text. A broken template is a
/// permanent error: retrying will not mend it.
pub fn post_text(renderer: &Renderer, msg: &Message) -> Result<String, SendError> {
    renderer
        .post_text(msg, None)
        .map_err(|e| SendError::permanent(format!("template: {e}")))
}

/// The message as a post fitted to a network's `limit`, counted as `counter` counts (see
/// [`fit::fit_message`]): the story shrinks, the estimate, the next-update line and the link
/// stay whole. A broken template, or a promise and link that alone pass the limit, is a
/// permanent error: retrying will not mend either.
pub fn fitted_post(
    renderer: &Renderer,
    msg: &Message,
    limit: usize,
    counter: fit::Counter,
) -> Result<String, SendError> {
    fit::fit_message(msg, limit, counter, |m| renderer.post_text(m, None)).map_err(|e| match e {
        fit::FitError::Render(e) => SendError::permanent(format!("template: {e}")),
        e @ fit::FitError::TooLong { .. } => SendError::permanent(e.to_string()),
    })
}

pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The estimate line and the next-update line of an incident (not a maintenance window) as
/// they read when an update was posted at `at`, in the site's zone `tz`: "We expect this fixed
/// by 14:30 UTC.", the honest "We don't have a reliable estimate yet.", "Next update by 14:00
/// UTC.". Nothing is promised once it is closed. The feeds word an update's promise with this,
/// so they say what the posts said.
pub fn incident_promise_lines(
    open: bool,
    eta_at: Option<DateTime<Utc>>,
    change: Option<&crate::domain::wording::EtaChange>,
    next_update_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> (Option<String>, Option<String>) {
    use crate::domain::wording::{eta_line, next_update_line};
    let eta_line = open.then(|| eta_line(eta_at, change, at, tz));
    let next_update_line = next_update_at
        .filter(|_| open)
        .map(|t| next_update_line(t, at, tz));
    (eta_line, next_update_line)
}

/// A message that says it is a test, for `candor channel test ID`: no incident is behind it.
pub fn test_message(config: &Config, channel_id: &str, now: DateTime<Utc>) -> Message {
    Message {
        audience: Audience::Public,
        kind: MessageKind::Operator,
        site_name: config.site.name.clone(),
        incident_id: 0,
        incident_url: config.site.public_url.to_string(),
        title: format!("Test of the {channel_id} channel"),
        impact: Impact::None,
        status: IncidentStatus::Resolved,
        components: Vec::new(),
        update_id: None,
        body: format!(
            "This is a test message from {}'s status page. Nothing is wrong.",
            config.site.name
        ),
        started_at: now,
        eta_at: None,
        next_update_at: None,
        eta_line: None,
        next_update_line: None,
        signature: None,
        posted_at: now,
        correction: None,
    }
}

/// Sends [`test_message`] through one configured channel, once, outside the outbox: what
/// `candor channel test ID` does.
pub async fn send_test(
    config: &Config,
    renderer: &Arc<Renderer>,
    channel_id: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<(Sent, Option<Preview>)> {
    let Some(cfg) = config.channels.get(channel_id) else {
        anyhow::bail!(
            "no channel `{channel_id}` in config; configured: {}",
            config
                .channels
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let msg = test_message(config, channel_id, now);
    // The app builds the email channel (it reads subscribers from the database); a test of it
    // mails the sender's own address instead.
    if let ChannelConfig::Email(email) = cfg {
        let (sent, preview) = test_mail::send(channel_id, email, &msg).await?;
        return Ok((sent, Some(preview)));
    }
    let channel = build(config, renderer)?
        .remove(channel_id)
        .ok_or_else(|| anyhow::anyhow!("channel `{channel_id}` was not built"))?;
    let ctx = DeliveryContext {
        // Delivery ids are positive; 0 keeps a test apart from every real delivery.
        delivery_id: 0,
        attempt: 1,
        idempotency_key: format!("candor-test-{channel_id}-{}", now.timestamp_millis()),
        thread_root: None,
        thread_parent: None,
        corrects: None,
        now,
    };
    let preview = channel.preview(&msg);
    let sent = tokio::time::timeout(cfg.limits().timeout, channel.deliver(&msg, &ctx))
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))?
        .map_err(|e| match e {
            SendError::Retryable { reason, .. } => {
                anyhow::anyhow!("failed (temporary, worth trying again): {reason}")
            }
            SendError::Permanent { reason } => anyhow::anyhow!("refused: {reason}"),
        })?;
    Ok((sent, preview))
}
