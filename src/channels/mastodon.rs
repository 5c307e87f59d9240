//! The `mastodon` channel: `POST /api/v1/statuses` with a bearer token.
//!
//! - The length limit is the instance's own (`GET /api/v2/instance`,
//!   `configuration.statuses.max_characters`, links counting
//!   `characters_reserved_per_url`), read once and kept.
//! - `Idempotency-Key` is derived from the delivery (its id and the message's time): a retry
//!   after a lost response is recognised by the server (it keeps keys about an hour) and not
//!   posted twice.
//! - Later updates reply (`in_reply_to_id`) to the incident's latest post here.
//! - A 429 waits for `Retry-After` or `X-RateLimit-Reset` (an ISO 8601 time).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::fit::Counter;
use super::{
    classify_status, describe_reqwest_error, error_text, wait_hint, Channel, DeliveryContext,
    Message, Preview, Reset, SendError, Sent,
};
use crate::config::Secret;
use crate::render::Renderer;

/// Mastodon's defaults, used until the instance has said otherwise.
const DEFAULT_LIMIT: Limits = Limits {
    max_characters: 500,
    characters_reserved_per_url: 23,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    max_characters: usize,
    characters_reserved_per_url: usize,
}

pub struct MastodonChannel {
    id: String,
    instance: url::Url,
    token: Secret,
    http: reqwest::Client,
    renderer: Arc<Renderer>,
    limits: Mutex<Option<Limits>>,
}

#[derive(Deserialize)]
struct Instance {
    configuration: InstanceConfiguration,
}
#[derive(Deserialize)]
struct InstanceConfiguration {
    statuses: StatusesConfiguration,
}
#[derive(Deserialize)]
struct StatusesConfiguration {
    max_characters: usize,
    #[serde(default = "default_url_chars")]
    characters_reserved_per_url: usize,
}
fn default_url_chars() -> usize {
    23
}

#[derive(Deserialize)]
struct Status {
    id: String,
    url: Option<String>,
}

impl MastodonChannel {
    pub fn new(
        id: &str,
        instance: url::Url,
        token: Secret,
        timeout: Duration,
        renderer: Arc<Renderer>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            id: id.to_string(),
            instance,
            token,
            http: super::http_client(timeout)?,
            renderer,
            limits: Mutex::new(None),
        })
    }

    fn endpoint(&self, path: &str) -> url::Url {
        let mut u = self.instance.clone();
        u.set_path(path);
        u
    }

    /// The instance's limits: asked once, then kept.
    async fn limits(&self, ctx: &DeliveryContext) -> Result<Limits, SendError> {
        let mut kept = self.limits.lock().await;
        if let Some(l) = *kept {
            return Ok(l);
        }
        let resp = self
            .http
            .get(self.endpoint("/api/v2/instance"))
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let status = resp.status();
        if !status.is_success() {
            let wait = wait_hint(&resp, "x-ratelimit-reset", Reset::Iso8601, ctx.now);
            let body = resp.text().await.unwrap_or_default();
            return Err(classify_status(
                status,
                &error_text(&body, &["error"]),
                wait,
            ));
        }
        let i: Instance = resp
            .json()
            .await
            .map_err(|e| SendError::retryable(format!("GET /api/v2/instance: {e}")))?;
        let l = Limits {
            max_characters: i.configuration.statuses.max_characters,
            characters_reserved_per_url: i.configuration.statuses.characters_reserved_per_url,
        };
        *kept = Some(l);
        Ok(l)
    }

    fn text(&self, msg: &Message, l: Limits) -> Result<(String, Counter), SendError> {
        let counter = Counter::GraphemesShortLinks {
            url: l.characters_reserved_per_url,
        };
        let text = super::fitted_post(&self.renderer, msg, l.max_characters, counter)?;
        Ok((text, counter))
    }
}

/// The delivery's key plus when its message was posted: the same on every retry, and unlikely
/// to meet another Candor's (a staging copy with its own database posting to the same account)
/// within the hour Mastodon keeps keys.
fn idempotency_key(msg: &Message, ctx: &DeliveryContext) -> String {
    format!(
        "{}-{}",
        ctx.idempotency_key,
        msg.posted_at.timestamp_millis()
    )
}

#[async_trait]
impl Channel for MastodonChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn preview(&self, msg: &Message) -> Option<Preview> {
        let l = self
            .limits
            .try_lock()
            .ok()
            .and_then(|l| *l)
            .unwrap_or(DEFAULT_LIMIT);
        let (text, counter) = self.text(msg, l).ok()?;
        Some(Preview {
            kind: "mastodon",
            length: counter.count(&text),
            text,
            limit: Some(l.max_characters),
        })
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let l = self.limits(ctx).await?;
        let (text, _) = self.text(msg, l)?;
        let mut form = vec![("status", text)];
        if let Some(parent) = ctx.thread_parent.as_ref().or(ctx.thread_root.as_ref()) {
            form.push(("in_reply_to_id", parent.clone()));
        }
        let resp = self
            .http
            .post(self.endpoint("/api/v1/statuses"))
            .bearer_auth(self.token.expose())
            .header("Idempotency-Key", idempotency_key(msg, ctx))
            .form(&form)
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let status = resp.status();
        if status.is_success() {
            let s: Status = resp
                .json()
                .await
                .map_err(|e| SendError::retryable(format!("unreadable status: {e}")))?;
            return Ok(Sent {
                remote_id: Some(s.id),
                remote_url: s.url,
            });
        }
        let wait = wait_hint(&resp, "x-ratelimit-reset", Reset::Iso8601, ctx.now);
        let body = resp.text().await.unwrap_or_default();
        Err(classify_status(
            status,
            &error_text(&body, &["error"]),
            wait,
        ))
    }
}
