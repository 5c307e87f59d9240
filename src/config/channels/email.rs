//! The `email` channel's settings: SMTP, the sender, DKIM and the pace of a fan-out.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::super::{de_duration, ConfigError, Secret};
use super::{ChannelFilter, ChannelLimits};

/// The `email` channel: SMTP settings, the sender, and how fast to fan out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:587?tls=required` (STARTTLS), `smtps://host:465` (TLS from the start) or
    /// `smtp://host:25` (no TLS: only for a relay on this machine). A user name may be given
    /// (`smtp://user@host`); the password goes in `password`, from the environment.
    pub smtp_url: Secret,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender, as `Name <address>` or a bare address. Its domain names Message-IDs.
    pub from: String,
    /// Signs unsubscribe links (at least 32 characters; keep it in the environment). Changing it
    /// breaks the links in mails already sent.
    pub token_secret: Secret,
    /// SMTP connections kept open and used at once during a fan-out.
    #[serde(default = "default_email_connections")]
    pub connections: u32,
    /// Pipeline SMTP commands (RFC 2920) when the server offers PIPELINING: one round trip a
    /// mail instead of four. Turn off only for a server that offers it and mishandles it.
    #[serde(default = "default_true")]
    pub pipelining: bool,
    /// Recipients per second at most during a fan-out (unset: as fast as the server takes them).
    #[serde(default)]
    pub per_second: Option<u32>,
    /// Subscribers read from the database at a time.
    #[serde(default = "default_email_page_size")]
    pub page_size: u32,
    /// How long a confirmation link works.
    #[serde(default = "default_confirm_within", deserialize_with = "de_duration")]
    pub confirm_within: Duration,
    /// Public subscription requests accepted per minute, from everyone together.
    #[serde(default = "default_subscribe_per_minute")]
    pub subscribe_per_minute: u32,
    /// Public subscription requests per minute from one client address (an IPv6 client's /64).
    #[serde(default = "default_subscribe_per_client_per_minute")]
    pub subscribe_per_client_per_minute: u32,
    /// Subscription requests one email address may make per day (UTC), and so the confirmation
    /// mails it can be sent; counted in the database, across instances and restarts.
    #[serde(default = "default_subscribe_per_address_per_day")]
    pub subscribe_per_address_per_day: u32,
    /// Optional DKIM signature (covers From, To, Subject, Date, Message-ID, In-Reply-To,
    /// References, List-Unsubscribe and List-Unsubscribe-Post).
    #[serde(default)]
    pub dkim: Option<DkimConfig>,
    #[serde(default)]
    pub limits: ChannelLimits,
    /// Narrows which incidents are mailed at all (subscribers narrow further by component).
    #[serde(default)]
    pub only: ChannelFilter,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// The selector published in DNS (`SELECTOR._domainkey.DOMAIN`).
    pub selector: String,
    /// The signing domain (`d=`).
    pub domain: String,
    /// `rsa` (a PKCS#1 PEM key file) or `ed25519` (a file holding the base64 private key).
    #[serde(default = "default_dkim_algorithm")]
    pub algorithm: String,
    pub key_file: PathBuf,
}

fn default_dkim_algorithm() -> String {
    "rsa".into()
}
fn default_true() -> bool {
    true
}
fn default_email_connections() -> u32 {
    4
}
fn default_email_page_size() -> u32 {
    500
}
fn default_confirm_within() -> Duration {
    Duration::from_secs(48 * 3600)
}
fn default_subscribe_per_client_per_minute() -> u32 {
    5
}
fn default_subscribe_per_address_per_day() -> u32 {
    3
}
fn default_subscribe_per_minute() -> u32 {
    600
}

impl EmailConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let url = url::Url::parse(self.smtp_url.expose()).map_err(|_| {
            ConfigError::invalid(
                format!("{key}.smtp_url"),
                "is not a URL; write it like `smtp://mail.example.com:587?tls=required`",
            )
        })?;
        if url.scheme() != "smtp" && url.scheme() != "smtps" {
            return Err(ConfigError::invalid(
                format!("{key}.smtp_url"),
                "must start with `smtp://` or `smtps://`",
            ));
        }
        if url.password().is_some() {
            return Err(ConfigError::invalid(
                format!("{key}.smtp_url"),
                "must not hold a password; put it in `password` (from the environment: \"${SMTP_PASSWORD}\")",
            ));
        }
        // `serve` would refuse it: the user name goes in the URL, the password beside it.
        if self.password.is_some() && url.username().is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.password"),
                "is set but `smtp_url` names no user; write it like `smtp://USER@host:587?tls=required`",
            ));
        }
        if url.host_str().unwrap_or("").is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.smtp_url"),
                "names no host",
            ));
        }
        if let Some(tls) = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v) {
            if tls != "required" && tls != "opportunistic" {
                return Err(ConfigError::invalid(
                    format!("{key}.smtp_url"),
                    "`tls=` must be `required` or `opportunistic`",
                ));
            }
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::invalid(
                format!("{key}.from"),
                format!(
                    "`{}` is not an address; write it like `Acme Status <status@acme.com>`",
                    self.from
                ),
            ));
        }
        if self.token_secret.expose().len() < 32 {
            return Err(ConfigError::invalid(
                format!("{key}.token_secret"),
                "must be at least 32 characters (for example `openssl rand -base64 32`)",
            ));
        }
        if self.connections == 0 || self.connections > 64 {
            return Err(ConfigError::invalid(
                format!("{key}.connections"),
                "must be between 1 and 64",
            ));
        }
        if self.per_second == Some(0) {
            return Err(ConfigError::invalid(
                format!("{key}.per_second"),
                "must be at least 1 (leave it out for no limit)",
            ));
        }
        if self.page_size == 0 || self.page_size > 10_000 {
            return Err(ConfigError::invalid(
                format!("{key}.page_size"),
                "must be between 1 and 10000",
            ));
        }
        if self.confirm_within < Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                format!("{key}.confirm_within"),
                "must be at least 1m",
            ));
        }
        if self.subscribe_per_minute == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.subscribe_per_minute"),
                "must be at least 1",
            ));
        }
        if self.subscribe_per_client_per_minute == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.subscribe_per_client_per_minute"),
                "must be at least 1",
            ));
        }
        if self.subscribe_per_address_per_day == 0 {
            return Err(ConfigError::invalid(
                format!("{key}.subscribe_per_address_per_day"),
                "must be at least 1",
            ));
        }
        if let Some(d) = &self.dkim {
            if d.algorithm != "rsa" && d.algorithm != "ed25519" {
                return Err(ConfigError::invalid(
                    format!("{key}.dkim.algorithm"),
                    "must be `rsa` or `ed25519`",
                ));
            }
            if d.selector.trim().is_empty() || d.domain.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.dkim"),
                    "`selector` and `domain` must not be empty",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::test_support::{no_env, MINIMAL};
    use super::super::super::{Config, Overrides};

    /// Failed before: `check-config` accepted it and `serve` then refused to start.
    #[test]
    fn a_password_needs_a_user_in_the_smtp_url() {
        let with = |url: &str| {
            MINIMAL.replace(
                "channels: { log: { type: log } }",
                &format!(
                    "channels: {{ log: {{ type: log }}, mail: {{ type: email, smtp_url: \"{url}\", \
                     password: hunter2, from: status@acme.test, \
                     token_secret: 0123456789abcdef0123456789abcdef }} }}"
                ),
            )
        };
        let err = Config::from_yaml_with_env(
            &with("smtp://mail.acme.test:587"),
            &Overrides::default(),
            &no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("channels.mail.password"), "{err}");
        assert!(err.contains("smtp://USER@host"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        Config::from_yaml_with_env(
            &with("smtp://bot@mail.acme.test:587"),
            &Overrides::default(),
            &no_env,
        )
        .unwrap();
    }

    #[test]
    fn email_channels_are_checked_key_by_key() {
        let with = |email: &str| {
            MINIMAL.replace(
                "channels: { log: { type: log } }",
                &format!("channels: {{ log: {{ type: log }}, mail: {{ type: email, {email} }} }}"),
            )
        };
        let ok = "smtp_url: \"smtp://bot@mail.acme.test:587?tls=required\", password: \"${PW}\", \
                  from: \"Acme <status@acme.test>\", token_secret: \"0123456789abcdef0123456789abcdef\"";
        let env = |n: &str| (n == "PW").then(|| "hunter2".to_string());
        let c = Config::from_yaml_with_env(&with(ok), &Overrides::default(), &env).unwrap();
        let (id, e) = c.email_channel().unwrap();
        assert_eq!(id, "mail");
        assert_eq!(e.connections, 4);
        assert!(!format!("{c:?}").contains("hunter2"));
        for (bad, key) in [
            (ok.replace("bot@", "bot:pw@"), "channels.mail.smtp_url"),
            (ok.replace("smtp://", "http://"), "channels.mail.smtp_url"),
            (
                ok.replace("tls=required", "tls=maybe"),
                "channels.mail.smtp_url",
            ),
            (
                ok.replace("Acme <status@acme.test>", "not an address"),
                "channels.mail.from",
            ),
            (
                ok.replace("0123456789abcdef0123456789abcdef", "short"),
                "channels.mail.token_secret",
            ),
            (format!("{ok}, connections: 0"), "channels.mail.connections"),
            (
                format!("{ok}, dkim: {{ selector: s, domain: d, algorithm: dsa, key_file: k }}"),
                "channels.mail.dkim.algorithm",
            ),
        ] {
            let err = Config::from_yaml_with_env(&with(&bad), &Overrides::default(), &env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{bad}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
