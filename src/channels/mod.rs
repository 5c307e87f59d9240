//! Where messages go. Each channel kind is one file implementing [`Channel`]; it knows its own
//! length limit, threading and which of its errors are worth retrying.

pub mod email;
pub mod log;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{ChannelConfig, Config};
use crate::domain::{Audience, ComponentStatus, Impact, IncidentStatus};
use crate::render::Renderer;

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
    /// What this channel would publish for `msg`, exactly, for the console's preview: the text
    /// after fitting it to the platform's limit, and that limit. `None` for channels whose
    /// output is not a short text (or that do not take this audience).
    fn preview(&self, _msg: &Message) -> Option<Preview> {
        None
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
        let built: Arc<dyn Channel> = match ch {
            ChannelConfig::Log { path, .. } => {
                Arc::new(log::LogChannel::open(id, path, renderer.clone())?)
            }
            ChannelConfig::Webhook {
                url,
                bearer_token,
                limits,
            } => Arc::new(webhook::WebhookChannel::new(
                id,
                url.clone(),
                bearer_token.clone(),
                limits.timeout,
                renderer.clone(),
            )?),
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

/// Reads `Retry-After` (seconds, or an HTTP date relative to `now`).
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Classifies an HTTP status the way most APIs mean it.
pub fn classify_status(
    status: reqwest::StatusCode,
    detail: &str,
    retry_after: Option<Duration>,
) -> SendError {
    let reason = format!("HTTP {}: {}", status.as_u16(), truncate(detail, 300));
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status.as_u16() == 425
    {
        SendError::Retryable {
            reason,
            retry_after,
        }
    } else {
        SendError::Permanent { reason }
    }
}

/// Describes a transport error without leaking URLs' credentials or query strings.
pub fn describe_reqwest_error(e: reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "broken response"
    } else {
        "request failed"
    };
    SendError::retryable(format!("{what}: {}", e.without_url()))
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
