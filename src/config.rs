//! Typed settings, read from YAML (serde_yaml is confined to this module).
//!
//! Loading happens in three steps: parse the YAML into a tree, replace `${VAR}` (or
//! `${VAR:-default}`) in string values from the environment, then deserialize into [`Config`] with
//! unknown keys refused. Every error names the key it is about. Secrets are held in [`Secret`],
//! whose `Debug` and `Display` never show the value.

pub mod honesty;
pub mod maintenance;
pub mod retention;
pub mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::domain::Impact;
pub use honesty::HonestyConfig;
pub use maintenance::MaintenanceConfig;
pub use retention::RetentionConfig;
pub use server::ServerConfig;

/// A configuration problem, naming the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file is not valid YAML: {0}")]
    Syntax(String),
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A secret value (password, token). Never printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim()).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{s}` is not a duration ({e}); write it like `90s`, `45m` or `2h`"
        ))
    })
}

fn de_tz<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<chrono_tz::Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{s}` is not an IANA time zone name; write it like `UTC` or `Europe/London`"
        ))
    })
}

fn de_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let s = String::deserialize(d)?;
    let u = url::Url::parse(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{s}` is not an absolute URL ({e}); write it like `https://status.example.com`"
        ))
    })?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(serde::de::Error::custom(format!(
            "`{s}` must be an http or https URL"
        )));
    }
    Ok(u)
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub site: SiteConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    pub components: Vec<ComponentConfig>,
    #[serde(default)]
    pub policies: Policies,
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub ops: OpsConfig,
    #[serde(default)]
    pub status_page: StatusPageConfig,
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    pub channels: BTreeMap<String, ChannelConfig>,
    #[serde(default)]
    pub alertmanager: AlertmanagerConfig,
    /// What the check before publishing warns about.
    #[serde(default)]
    pub honesty: HonestyConfig,
    /// How long finished history is kept (see `config/retention.rs`).
    #[serde(default)]
    pub retention: RetentionConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Shown on every page and used to sign scheduled updates.
    pub name: String,
    /// Where the public status page is reachable; links in messages point here.
    #[serde(deserialize_with = "de_url")]
    pub public_url: url::Url,
    /// Time zone used for times in messages (the status page shows UTC and the reader's zone).
    #[serde(default = "default_tz", deserialize_with = "de_tz")]
    pub time_zone: chrono_tz::Tz,
    /// How customers reach a human: an email address or URL.
    pub support_contact: String,
    /// Folder of templates that override the built-in ones (a missing file falls back).
    #[serde(default = "default_templates_dir")]
    pub templates_dir: PathBuf,
    /// Logo shown in the page header (an absolute URL or a path on this site).
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Colours of the status page.
    #[serde(default)]
    pub colours: Colours,
    /// Links in the page footer (your main site, terms, ...).
    #[serde(default)]
    pub footer_links: Vec<FooterLink>,
}

/// The page's colours, as CSS hex colours (`#rrggbb`). Status colours are chosen for contrast and
/// are the same on every Candor page, so customers learn them once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Colours {
    /// Header background and links.
    #[serde(default = "default_accent")]
    pub accent: String,
    /// Text on the accent colour.
    #[serde(default = "default_on_accent")]
    pub on_accent: String,
}

fn default_accent() -> String {
    "#1f3a5f".into()
}
fn default_on_accent() -> String {
    "#ffffff".into()
}

impl Default for Colours {
    fn default() -> Self {
        Self {
            accent: default_accent(),
            on_accent: default_on_accent(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FooterLink {
    pub label: String,
    pub url: String,
}

/// How the public pages are cached and refreshed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPageConfig {
    /// How often each instance checks the database for changes made elsewhere (another
    /// instance); changes made here show at once.
    #[serde(default = "default_refresh", deserialize_with = "de_duration")]
    pub refresh: Duration,
    /// `Cache-Control: max-age` for pages, feeds and JSON (what CDNs and browsers may reuse).
    #[serde(default = "default_max_age", deserialize_with = "de_duration")]
    pub max_age: Duration,
}

fn default_refresh() -> Duration {
    Duration::from_millis(500)
}
fn default_max_age() -> Duration {
    Duration::from_secs(10)
}

impl Default for StatusPageConfig {
    fn default() -> Self {
        Self {
            refresh: default_refresh(),
            max_age: default_max_age(),
        }
    }
}

fn default_tz() -> chrono_tz::Tz {
    chrono_tz::UTC
}
fn default_templates_dir() -> PathBuf {
    PathBuf::from("templates")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created on first run) or `postgres://user:pass@host/db`.
    #[serde(default = "default_db_url")]
    pub url: Secret,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_db_url() -> Secret {
    Secret::new("sqlite://candor.db")
}
fn default_max_connections() -> u32 {
    8
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: default_db_url(),
            max_connections: default_max_connections(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
}

/// How often an open incident of each impact gets a public update.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    #[serde(default = "policy_none")]
    pub none: UpdatePolicy,
    #[serde(default = "policy_minor")]
    pub minor: UpdatePolicy,
    #[serde(default = "policy_major")]
    pub major: UpdatePolicy,
    #[serde(default = "policy_critical")]
    pub critical: UpdatePolicy,
}

impl Policies {
    pub fn for_impact(&self, impact: Impact) -> &UpdatePolicy {
        match impact {
            Impact::None => &self.none,
            Impact::Minor => &self.minor,
            Impact::Major => &self.major,
            Impact::Critical => &self.critical,
        }
    }
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            none: policy_none(),
            minor: policy_minor(),
            major: policy_major(),
            critical: policy_critical(),
        }
    }
}

fn policy(mins: u64) -> UpdatePolicy {
    UpdatePolicy {
        update_every: Duration::from_secs(mins * 60),
    }
}
fn policy_none() -> UpdatePolicy {
    policy(120)
}
fn policy_minor() -> UpdatePolicy {
    policy(60)
}
fn policy_major() -> UpdatePolicy {
    policy(30)
}
fn policy_critical() -> UpdatePolicy {
    policy(15)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    /// The longest gap between two public updates; each update promises the next within this.
    #[serde(deserialize_with = "de_duration")]
    pub update_every: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// How often the scheduler checks what is due.
    #[serde(default = "default_tick", deserialize_with = "de_duration")]
    pub tick: Duration,
}

fn default_tick() -> Duration {
    Duration::from_secs(1)
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            tick: default_tick(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// How often workers look for due deliveries when nothing woke them (other instances' work).
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
    /// How long a claimed delivery belongs to its worker; after that another may take it over.
    #[serde(default = "default_lease", deserialize_with = "de_duration")]
    pub lease: Duration,
    /// An optional cap on attempts before a delivery is parked as dead (a channel may set its
    /// own). Unset by default: `retry_for` bounds retries instead, so a long outage loses nothing.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// How long a delivery that keeps failing with retryable errors is retried (counted from its
    /// creation, or from the last "retry now") before it is parked as dead.
    #[serde(default = "default_retry_for", deserialize_with = "de_duration")]
    pub retry_for: Duration,
    /// First retry delay; each further retry doubles it, with jitter, up to `backoff_max`.
    #[serde(default = "default_backoff_min", deserialize_with = "de_duration")]
    pub backoff_min: Duration,
    #[serde(default = "default_backoff_max", deserialize_with = "de_duration")]
    pub backoff_max: Duration,
}

fn default_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_lease() -> Duration {
    Duration::from_secs(60)
}
fn default_retry_for() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_backoff_min() -> Duration {
    Duration::from_secs(2)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            poll_interval: default_poll(),
            lease: default_lease(),
            max_attempts: None,
            retry_for: default_retry_for(),
            backoff_min: default_backoff_min(),
            backoff_max: default_backoff_max(),
        }
    }
}

/// The operator console.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Incident templates the declare form offers, to fill it in one click.
    #[serde(default)]
    pub templates: Vec<IncidentTemplate>,
}

/// A prepared declaration: every field pre-fills the declare form, which the operator still
/// reads, edits and posts.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentTemplate {
    pub id: String,
    /// What the declare form's button says.
    pub name: String,
    pub title: String,
    #[serde(default = "default_template_impact")]
    pub impact: crate::domain::Impact,
    #[serde(default)]
    pub components: BTreeMap<String, crate::domain::ComponentStatus>,
    pub message: String,
    /// A humantime duration (`45m`) for the ETA field; absent means "not known yet".
    #[serde(default)]
    pub eta_in: Option<String>,
    #[serde(default)]
    pub next_update_in: Option<String>,
}

fn default_template_impact() -> crate::domain::Impact {
    crate::domain::Impact::Minor
}

/// Where the team hears from Candor: reminders before a promised update falls due, and requests
/// for a new estimate when one has passed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// Channel ids (from `channels`) that carry operator notices only, never public updates.
    #[serde(default)]
    pub channels: Vec<String>,
    /// How long before a promised public update the team is reminded to write it.
    #[serde(default = "default_remind", deserialize_with = "de_duration")]
    pub remind_before: Duration,
}

fn default_remind() -> Duration {
    Duration::from_secs(5 * 60)
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            remind_before: default_remind(),
        }
    }
}

/// Limits that apply to every channel kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelLimits {
    /// Sends per minute at most (unset: unlimited).
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// Deliveries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Overrides `outbox.max_attempts` for this channel.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// One delivery attempt may take this long.
    #[serde(default = "default_send_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

fn default_concurrency() -> u32 {
    4
}
fn default_send_timeout() -> Duration {
    Duration::from_secs(15)
}

impl Default for ChannelLimits {
    fn default() -> Self {
        Self {
            per_minute: None,
            concurrency: default_concurrency(),
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
    /// A Slack incoming webhook.
    Slack {
        /// The webhook URL (it is the credential: keep it in the environment).
        webhook_url: Secret,
        #[serde(default)]
        limits: ChannelLimits,
        #[serde(default)]
        only: ChannelFilter,
    },
    /// A Discord webhook (Execute Webhook, with `?wait=true`).
    Discord {
        /// The webhook URL (it is the credential: keep it in the environment).
        webhook_url: Secret,
        #[serde(default)]
        limits: ChannelLimits,
        #[serde(default)]
        only: ChannelFilter,
    },
    /// Mail to the confirmed subscribers of the status page, over SMTP.
    Email(Box<EmailConfig>),
}

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

fn default_log_path() -> String {
    "-".to_string()
}

fn default_bluesky_service() -> url::Url {
    url::Url::parse("https://bsky.social").expect("valid URL")
}

fn default_x_api() -> url::Url {
    url::Url::parse("https://api.x.com").expect("valid URL")
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
            ChannelConfig::Slack { webhook_url: u, .. }
            | ChannelConfig::Discord { webhook_url: u, .. } => webhook_url("webhook_url", u),
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

#[derive(Debug, Clone, Default)]
/// Values given on the command line or in the environment that override the file.
pub struct Overrides {
    pub database_url: Option<String>,
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Reads, interpolates, parses and validates a config file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_with_env(&text, overrides, &|name| std::env::var(name).ok())
    }

    /// Parses YAML text, reading `${VAR}` values through `env`.
    pub fn from_yaml_with_env(
        text: &str,
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut tree: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        interpolate(&mut tree, "", env)?;
        let mut config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                "(top level)".to_string()
            } else {
                key
            };
            ConfigError::invalid(key, e.into_inner().to_string())
        })?;
        if let Some(url) = &overrides.database_url {
            config.database.url = Secret::new(url.clone());
        }
        if let Some(listen) = overrides.listen {
            config.server.listen = listen;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: references between keys, ranges, uniqueness.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.site.name.trim().is_empty() {
            return Err(ConfigError::invalid("site.name", "must not be empty"));
        }
        if self.site.support_contact.trim().is_empty() {
            return Err(ConfigError::invalid(
                "site.support_contact",
                "must name how customers reach a human (an email address or URL)",
            ));
        }
        for (key, value) in [
            ("site.colours.accent", &self.site.colours.accent),
            ("site.colours.on_accent", &self.site.colours.on_accent),
        ] {
            let hex = value.strip_prefix('#').unwrap_or("");
            if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ConfigError::invalid(
                    key,
                    format!("`{value}` is not a colour; write it like `#1f3a5f`"),
                ));
            }
        }
        for (i, link) in self.site.footer_links.iter().enumerate() {
            if link.label.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("site.footer_links[{i}].label"),
                    "must not be empty",
                ));
            }
            if !(link.url.starts_with("https://")
                || link.url.starts_with("http://")
                || link.url.starts_with('/'))
            {
                return Err(ConfigError::invalid(
                    format!("site.footer_links[{i}].url"),
                    "must be an http(s) URL or a path starting with `/`",
                ));
            }
        }
        if let Some(logo) = &self.site.logo_url {
            if !(logo.starts_with("https://")
                || logo.starts_with("http://")
                || logo.starts_with('/'))
            {
                return Err(ConfigError::invalid(
                    "site.logo_url",
                    "must be an http(s) URL or a path starting with `/`",
                ));
            }
        }
        if self.status_page.refresh < Duration::from_millis(50)
            || self.status_page.refresh > Duration::from_secs(60)
        {
            return Err(ConfigError::invalid(
                "status_page.refresh",
                "must be between 50ms and 60s",
            ));
        }
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(ConfigError::invalid(
                "database.url",
                "must start with `sqlite:` or `postgres://`",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        self.server.validate()?;
        let mut groups = BTreeSet::new();
        for (i, g) in self.groups.iter().enumerate() {
            check_id(&format!("groups[{i}].id"), &g.id)?;
            if !groups.insert(g.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("groups[{i}].id"),
                    format!("`{}` is used twice", g.id),
                ));
            }
        }
        if self.components.is_empty() {
            return Err(ConfigError::invalid(
                "components",
                "name at least one component",
            ));
        }
        let mut ids = BTreeSet::new();
        for (i, c) in self.components.iter().enumerate() {
            check_id(&format!("components[{i}].id"), &c.id)?;
            if !ids.insert(c.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("components[{i}].id"),
                    format!("`{}` is used twice", c.id),
                ));
            }
            if let Some(g) = &c.group {
                if !groups.contains(g.as_str()) {
                    return Err(ConfigError::invalid(
                        format!("components[{i}].group"),
                        format!(
                            "unknown group `{g}`; expected one of: {}",
                            join(groups.iter())
                        ),
                    ));
                }
            }
        }
        for (name, p) in [
            ("none", &self.policies.none),
            ("minor", &self.policies.minor),
            ("major", &self.policies.major),
            ("critical", &self.policies.critical),
        ] {
            if p.update_every < Duration::from_secs(60)
                || p.update_every > Duration::from_secs(86_400)
            {
                return Err(ConfigError::invalid(
                    format!("policies.{name}.update_every"),
                    "must be between 1m and 24h",
                ));
            }
        }
        if self.scheduler.tick.is_zero() || self.scheduler.tick > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "scheduler.tick",
                "must be between 1ms and 60s",
            ));
        }
        if self.outbox.poll_interval.is_zero() {
            return Err(ConfigError::invalid(
                "outbox.poll_interval",
                "must be more than 0",
            ));
        }
        if self.outbox.max_attempts == Some(0) {
            return Err(ConfigError::invalid(
                "outbox.max_attempts",
                "must be at least 1 (leave it out to bound retries by outbox.retry_for only)",
            ));
        }
        if self.outbox.retry_for < self.outbox.backoff_min {
            return Err(ConfigError::invalid(
                "outbox.retry_for",
                "must be at least outbox.backoff_min",
            ));
        }
        if self.outbox.backoff_min.is_zero() || self.outbox.backoff_min > self.outbox.backoff_max {
            return Err(ConfigError::invalid(
                "outbox.backoff_min",
                "must be more than 0 and no more than outbox.backoff_max",
            ));
        }
        self.maintenance.validate(self)?;
        self.honesty.validate()?;
        self.retention.validate()?;
        if self.channels.is_empty() {
            return Err(ConfigError::invalid(
                "channels",
                "name at least one channel (the `log` kind needs no credentials)",
            ));
        }
        for (id, ch) in &self.channels {
            check_id(&format!("channels.{id}"), id)?;
            ch.validate(id, &self.components)?;
            let l = ch.limits();
            if l.concurrency == 0 {
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
                if self.ops.channels.iter().any(|o| o == id) {
                    return Err(ConfigError::invalid(
                        format!("channels.{id}"),
                        "an email channel mails subscribers; it cannot be an ops channel",
                    ));
                }
            }
            if l.timeout.is_zero() || l.timeout >= self.outbox.lease {
                return Err(ConfigError::invalid(
                    format!("channels.{id}.limits.timeout"),
                    format!(
                        "must be more than 0 and shorter than outbox.lease ({})",
                        humantime::format_duration(self.outbox.lease)
                    ),
                ));
            }
        }
        let emails: Vec<&String> = self
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
        for (i, id) in self.ops.channels.iter().enumerate() {
            if !self.channels.contains_key(id) {
                return Err(ConfigError::invalid(
                    format!("ops.channels[{i}]"),
                    format!(
                        "unknown channel `{id}`; expected one of: {}",
                        join(self.channels.keys())
                    ),
                ));
            }
        }
        if self.public_channels().next().is_none() {
            return Err(ConfigError::invalid(
                "ops.channels",
                "every channel is an ops channel; leave at least one for public updates",
            ));
        }
        self.alertmanager.validate(self)?;
        self.validate_console()
    }

    fn validate_console(&self) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        for (i, t) in self.console.templates.iter().enumerate() {
            let key = |field: &str| format!("console.templates[{i}].{field}");
            check_id(&key("id"), &t.id)?;
            if !ids.insert(t.id.as_str()) {
                return Err(ConfigError::invalid(
                    key("id"),
                    format!("`{}` is used twice", t.id),
                ));
            }
            for (field, value) in [
                ("name", &t.name),
                ("title", &t.title),
                ("message", &t.message),
            ] {
                if value.trim().is_empty() {
                    return Err(ConfigError::invalid(key(field), "must not be empty"));
                }
            }
            for c in t.components.keys() {
                if self.component(c).is_none() {
                    return Err(ConfigError::invalid(
                        key(&format!("components.{c}")),
                        format!(
                            "unknown component; expected one of: {}",
                            join(self.components.iter().map(|c| &c.id))
                        ),
                    ));
                }
            }
            for (field, value) in [("eta_in", &t.eta_in), ("next_update_in", &t.next_update_in)] {
                if let Some(v) = value {
                    crate::domain::parse_duration(&key(field), v)
                        .map_err(|e| ConfigError::invalid(key(field), e.message))?;
                }
            }
        }
        Ok(())
    }

    /// The email channel subscribers sign up for, if one is configured (there is at most one).
    pub fn email_channel(&self) -> Option<(&str, &EmailConfig)> {
        self.channels.iter().find_map(|(id, c)| match c {
            ChannelConfig::Email(e) => Some((id.as_str(), &**e)),
            _ => None,
        })
    }

    /// Channels that carry public updates: all but the ops channels.
    pub fn public_channels(&self) -> impl Iterator<Item = &str> {
        self.channels
            .keys()
            .map(String::as_str)
            .filter(|id| !self.ops.channels.iter().any(|o| o == id))
    }

    pub fn component(&self, id: &str) -> Option<&ComponentConfig> {
        self.components.iter().find(|c| c.id == id)
    }
}

impl EmailConfig {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
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

fn join<'a>(items: impl Iterator<Item = &'a (impl AsRef<str> + ?Sized + 'a)>) -> String {
    let v: Vec<String> = items.map(|s| format!("`{}`", s.as_ref())).collect();
    if v.is_empty() {
        "(none defined)".into()
    } else {
        v.join(", ")
    }
}

fn check_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("`{id}` is not a valid id; use 1-64 lowercase letters, digits, `-` or `_`"),
        ))
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` inside string values; `$$` stands for a literal `$`.
fn interpolate(
    v: &mut serde_yaml::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    use serde_yaml::Value;
    match v {
        Value::String(s) if s.contains('$') => *s = expand(s, path, env)?,
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), env)?;
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let key = k
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"));
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                interpolate(item, &p, env)?;
            }
        }
        Value::Tagged(t) => interpolate(&mut t.value, path, env)?,
        _ => {}
    }
    Ok(())
}

fn expand(
    s: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                ConfigError::invalid(
                    path,
                    "unclosed `${`; write `${NAME}` or `$$` for a literal `$`",
                )
            })?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(ConfigError::invalid(
                    path,
                    format!("`${{{expr}}}` does not name an environment variable"),
                ));
            }
            match (env(name), default) {
                (Some(val), _) => out.push_str(&val),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(ConfigError::invalid(
                        path,
                        format!("environment variable `{name}` is not set"),
                    ))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// What `POST /api/v1/integrations/alertmanager` does with Alertmanager's alert groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// When Alertmanager says a group is resolved: `confirm` (the default) tells the ops
    /// channels and leaves the incident open for a person to resolve; `resolve` resolves an
    /// incident that Alertmanager opened once all its groups are resolved.
    #[serde(default)]
    pub on_resolved: OnResolved,
    /// The impact of an incident Alertmanager opens, unless `impacts` maps the alert's
    /// `impact_label`.
    #[serde(default = "default_alert_impact")]
    pub impact: Impact,
    /// The label whose value picks the impact through `impacts`.
    #[serde(default = "default_impact_label")]
    pub impact_label: String,
    /// Label value to impact, e.g. `{critical: major, warning: minor}`.
    #[serde(default = "default_alert_impacts")]
    pub impacts: BTreeMap<String, Impact>,
    /// The label naming the affected component (a component id, or a key of `components`).
    #[serde(default = "default_component_label")]
    pub component_label: String,
    /// Label value to component id, for labels that do not use Candor's ids.
    #[serde(default)]
    pub components: BTreeMap<String, String>,
    /// The status affected components get.
    #[serde(default = "default_alert_component_status")]
    pub component_status: crate::domain::ComponentStatus,
    /// Templates (minijinja) of the public title and first message, and of the all-clear. They
    /// see the payload's fields: `groupLabels`, `commonLabels`, `commonAnnotations`, `alerts`,
    /// `status`, `externalURL`, plus `components` (the affected components' names, joined).
    /// They are published: keep internal host names out of them.
    #[serde(default = "default_alert_title")]
    pub title: String,
    #[serde(default = "default_alert_message")]
    pub message: String,
    #[serde(default = "default_alert_resolved_message")]
    pub resolved_message: String,
    /// Who is named as owner of incidents Alertmanager opens.
    #[serde(default)]
    pub owner: Option<String>,
}

/// What a resolved alert group does to its incident.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnResolved {
    #[default]
    Confirm,
    Resolve,
}

fn default_alert_impact() -> Impact {
    Impact::Minor
}
fn default_impact_label() -> String {
    "severity".into()
}
fn default_alert_impacts() -> BTreeMap<String, Impact> {
    [("critical", Impact::Major), ("warning", Impact::Minor)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}
fn default_component_label() -> String {
    "component".into()
}
fn default_alert_component_status() -> crate::domain::ComponentStatus {
    crate::domain::ComponentStatus::PartialOutage
}
fn default_alert_title() -> String {
    "{{ commonAnnotations.summary or 'Service disruption' }}".into()
}
fn default_alert_message() -> String {
    "Our monitoring has detected a problem{% if components %} with {{ components }}{% endif %}. \
     We are looking into it now."
        .into()
}
fn default_alert_resolved_message() -> String {
    "Our monitoring shows {% if components %}{{ components }} working{% else %}everything \
     working{% endif %} normally again. We are sorry for the trouble."
        .into()
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            on_resolved: OnResolved::default(),
            impact: default_alert_impact(),
            impact_label: default_impact_label(),
            impacts: default_alert_impacts(),
            component_label: default_component_label(),
            components: BTreeMap::new(),
            component_status: default_alert_component_status(),
            title: default_alert_title(),
            message: default_alert_message(),
            resolved_message: default_alert_resolved_message(),
            owner: None,
        }
    }
}

impl AlertmanagerConfig {
    fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        for (value, id) in &self.components {
            if config.component(id).is_none() {
                return Err(ConfigError::invalid(
                    format!("alertmanager.components.{value}"),
                    format!(
                        "unknown component `{id}`; expected one of: {}",
                        join(config.components.iter().map(|c| &c.id))
                    ),
                ));
            }
        }
        let env = minijinja::Environment::new();
        for (key, source) in [
            ("alertmanager.title", &self.title),
            ("alertmanager.message", &self.message),
            ("alertmanager.resolved_message", &self.resolved_message),
        ] {
            if let Err(e) = env.template_from_str(source) {
                return Err(ConfigError::invalid(
                    key,
                    format!("not a valid template: {e}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
site: { name: Acme, public_url: "https://status.acme.test", support_contact: help@acme.test }
components: [ { id: api, name: API } ]
channels: { log: { type: log } }
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn minimal_config_gets_sensible_defaults() {
        let c = Config::from_yaml_with_env(MINIMAL, &Overrides::default(), &no_env).unwrap();
        assert_eq!(c.policies.critical.update_every, Duration::from_secs(900));
        assert_eq!(c.server.listen.port(), 8080);
        assert_eq!(c.database.url.expose(), "sqlite://candor.db");
        assert_eq!(c.public_channels().collect::<Vec<_>>(), vec!["log"]);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("support_contact", "suport_contact");
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("site"), "{err}");
        assert!(err.contains("suport_contact"), "{err}");
    }

    #[test]
    fn unknown_key_inside_a_channel_is_named() {
        let text = MINIMAL.replace("{ type: log }", "{ type: log, colour: red }");
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("channels.log"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_duration_names_key_and_form() {
        let text = format!("{MINIMAL}\npolicies: {{ major: {{ update_every: soon }} }}\n");
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("policies.major.update_every"), "{err}");
        assert!(err.contains("45m"), "{err}");
    }

    #[test]
    fn env_interpolation_and_default() {
        let text = MINIMAL.replace("help@acme.test", "\"${SUPPORT:-fallback@acme.test}\"")
            + "database: { url: \"${DB_URL}\" }\n";
        let env = |n: &str| (n == "DB_URL").then(|| "postgres://u:p@localhost/x".to_string());
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &env).unwrap();
        assert_eq!(c.site.support_contact, "fallback@acme.test");
        assert_eq!(c.database.url.expose(), "postgres://u:p@localhost/x");
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("database.url") && err.contains("DB_URL"),
            "{err}"
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let text = MINIMAL.to_string() + "database: { url: \"postgres://u:hunter2@db/x\" }\n";
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn references_are_checked() {
        let text = MINIMAL.replace(
            "{ id: api, name: API }",
            "{ id: api, name: API, group: core }",
        );
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("components[0].group") && err.contains("core"),
            "{err}"
        );
        let text = MINIMAL.to_string() + "ops: { channels: [pager] }\n";
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ops.channels[0]") && err.contains("pager"),
            "{err}"
        );
    }

    #[test]
    fn console_templates_are_checked() {
        let ok = MINIMAL.to_string()
            + "console: { templates: [ { id: api-down, name: API down, title: API errors, impact: major, \
               components: { api: major_outage }, message: Looking., eta_in: 45m } ] }\n";
        let c = Config::from_yaml_with_env(&ok, &Overrides::default(), &no_env).unwrap();
        assert_eq!(c.console.templates[0].impact, crate::domain::Impact::Major);
        for (bad, key) in [
            (
                "components: { billing: major_outage }",
                "console.templates[0].components.billing",
            ),
            ("eta_in: soon", "console.templates[0].eta_in"),
            ("next_update_in: 0s", "console.templates[0].next_update_in"),
        ] {
            let text = MINIMAL.to_string()
                + &format!("console: {{ templates: [ {{ id: t, name: T, title: T, message: M, {bad} }} ] }}\n");
            let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
        let twice = MINIMAL.to_string()
            + "console: { templates: [ { id: t, name: T, title: T, message: M }, { id: t, name: U, title: U, message: M } ] }\n";
        let err = Config::from_yaml_with_env(&twice, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("console.templates[1].id") && err.contains("used twice"),
            "{err}"
        );
    }

    #[test]
    fn overrides_win() {
        let o = Overrides {
            database_url: Some("sqlite://other.db".into()),
            listen: Some("127.0.0.1:9999".parse().unwrap()),
        };
        let c = Config::from_yaml_with_env(MINIMAL, &o, &no_env).unwrap();
        assert_eq!(c.database.url.expose(), "sqlite://other.db");
        assert_eq!(c.server.listen.port(), 9999);
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

    #[test]
    fn the_shipped_config_is_valid() {
        let text = include_str!("../config/candor.yaml");
        Config::from_yaml_with_env(text, &Overrides::default(), &no_env).unwrap();
    }
}
