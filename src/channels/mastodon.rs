//! The `mastodon` channel: `POST /api/v1/statuses` with a bearer token.
//!
//! - The length limit is the instance's own (`GET /api/v2/instance`,
//!   `configuration.statuses.max_characters`, links counting
//!   `characters_reserved_per_url`), read once and kept. Servers without that endpoint (it
//!   came with Mastodon 4.0; older ones, Pleroma and its kin answer 404) are asked `GET
//!   /api/v1/instance` (`configuration.statuses.max_characters` since Mastodon 3.4, else
//!   Pleroma's `max_toot_chars`); failing that, Mastodon's default of 500 is assumed.
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
    Message, Preview, Reply, Reset, SendError, Sent,
};
use crate::config::Secret;
use crate::domain::inbox::{mastodon_length, mastodon_reply_text};
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
        let l = match self.instance_json("/api/v2/instance", ctx).await? {
            Some(v) => {
                let i: Instance = serde_json::from_value(v)
                    .map_err(|e| SendError::retryable(format!("GET /api/v2/instance: {e}")))?;
                Limits {
                    max_characters: i.configuration.statuses.max_characters,
                    characters_reserved_per_url: i
                        .configuration
                        .statuses
                        .characters_reserved_per_url,
                }
            }
            None => match self.instance_json("/api/v1/instance", ctx).await? {
                Some(v) => v1_limits(&v).unwrap_or_else(|| {
                    tracing::warn!(
                        "GET /api/v1/instance names no character limit; assuming Mastodon's 500"
                    );
                    DEFAULT_LIMIT
                }),
                None => {
                    tracing::warn!(
                        "the server has neither /api/v2/instance nor /api/v1/instance; \
                         assuming Mastodon's limit of 500 characters"
                    );
                    DEFAULT_LIMIT
                }
            },
        };
        *kept = Some(l);
        Ok(l)
    }

    /// `GET path` as JSON; `None` if the server does not have it (404, 410).
    async fn instance_json(
        &self,
        path: &str,
        ctx: &DeliveryContext,
    ) -> Result<Option<serde_json::Value>, SendError> {
        let resp = self
            .http
            .get(self.endpoint(path))
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(None);
        }
        if !status.is_success() {
            let wait = wait_hint(&resp, "x-ratelimit-reset", Reset::Iso8601, ctx.now);
            let body = resp.text().await.unwrap_or_default();
            return Err(classify_status(
                status,
                &error_text(&body, &["error"]),
                wait,
            ));
        }
        resp.json()
            .await
            .map(Some)
            .map_err(|e| SendError::retryable(format!("GET {path}: {e}")))
    }

    /// `GET path?query` with the account's token: the inbox reads notifications and threads
    /// with the client and token that post.
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, SendError> {
        self.http
            .get(self.endpoint(path))
            .bearer_auth(self.token.expose())
            .query(query)
            .send()
            .await
            .map_err(describe_reqwest_error)
    }

    /// The instance's limits as far as known (Mastodon's defaults until it was asked).
    pub(crate) fn known_limits(&self) -> (usize, usize) {
        let l = self
            .limits
            .try_lock()
            .ok()
            .and_then(|l| *l)
            .unwrap_or(DEFAULT_LIMIT);
        (l.max_characters, l.characters_reserved_per_url)
    }

    /// Posts `form` to `/api/v1/statuses` under an idempotency key: the status's id and URL.
    async fn post_status(
        &self,
        form: &[(&str, String)],
        key: String,
        ctx: &DeliveryContext,
    ) -> Result<Sent, SendError> {
        let resp = self
            .http
            .post(self.endpoint("/api/v1/statuses"))
            .bearer_auth(self.token.expose())
            .header("Idempotency-Key", key)
            .form(form)
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let s = Self::answer(resp, ctx).await?;
        Ok(Sent {
            remote_id: Some(s.id),
            remote_url: s.url,
        })
    }

    /// `PUT /api/v1/statuses/:id` with the status's new text.
    async fn edit(
        &self,
        id: &str,
        msg: &Message,
        ctx: &DeliveryContext,
    ) -> Result<Status, SendError> {
        let l = self.limits(ctx).await?;
        let (text, _) = self.text(msg, l)?;
        let resp = self
            .http
            .put(self.endpoint(&format!("/api/v1/statuses/{id}")))
            .bearer_auth(self.token.expose())
            .form(&[("status", text)])
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        Self::answer(resp, ctx).await
    }

    /// `POST /api/v1/statuses`, replying to the thread's latest post.
    async fn post(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let l = self.limits(ctx).await?;
        let (text, _) = self.text(msg, l)?;
        let mut form = vec![("status", text)];
        if let Some(parent) = ctx.thread_parent.as_ref().or(ctx.thread_root.as_ref()) {
            form.push(("in_reply_to_id", parent.clone()));
        }
        self.post_status(&form, idempotency_key(msg, ctx), ctx)
            .await
    }

    /// The status a successful answer holds, or the error classified.
    async fn answer(resp: reqwest::Response, ctx: &DeliveryContext) -> Result<Status, SendError> {
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .await
                .map_err(|e| SendError::retryable(format!("unreadable status: {e}")));
        }
        let wait = wait_hint(&resp, "x-ratelimit-reset", Reset::Iso8601, ctx.now);
        let body = resp.text().await.unwrap_or_default();
        Err(classify_status(
            status,
            &error_text(&body, &["error"]),
            wait,
        ))
    }

    fn text(&self, msg: &Message, l: Limits) -> Result<(String, Counter), SendError> {
        let counter = Counter::GraphemesShortLinks {
            url: l.characters_reserved_per_url,
        };
        let text = super::fitted_post(&self.renderer, msg, l.max_characters, counter)?;
        Ok((text, counter))
    }
}

/// The limits `GET /api/v1/instance` gives: Mastodon 3.4+'s `configuration.statuses`, else
/// Pleroma's (and Akkoma's, GoToSocial's) `max_toot_chars`.
fn v1_limits(v: &serde_json::Value) -> Option<Limits> {
    let statuses = &v["configuration"]["statuses"];
    let max = statuses["max_characters"]
        .as_u64()
        .or_else(|| v["max_toot_chars"].as_u64())
        .filter(|m| *m > 0)?;
    let url = statuses["characters_reserved_per_url"]
        .as_u64()
        .unwrap_or(DEFAULT_LIMIT.characters_reserved_per_url as u64);
    Some(Limits {
        max_characters: usize::try_from(max).ok()?,
        characters_reserved_per_url: usize::try_from(url).ok()?,
    })
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
        // A correction edits the original post (Mastodon keeps its edit history, visible to
        // all); when the meaning changed it also replies, so followers who saw the first
        // version are told. Without an original post here, it replies.
        if let (Some(fix), Some(original)) = (&msg.correction, &ctx.corrects) {
            let edited = self.edit(original, &fix.edited, ctx).await?;
            if !fix.meaning_changed {
                // No new post: the thread's latest post stays what the next update answers.
                return Ok(Sent {
                    remote_id: None,
                    remote_url: edited.url,
                });
            }
        }
        self.post(msg, ctx).await
    }

    /// A reply in a customer's thread: `in_reply_to_id` = their status, their `@acct` first,
    /// within the instance's limit as Mastodon counts it.
    async fn reply(&self, r: &Reply, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let l = self.limits(ctx).await?;
        let mention = r.mention.as_deref().unwrap_or("");
        let length = mastodon_length(mention, &r.text, l.characters_reserved_per_url);
        if length > l.max_characters {
            return Err(SendError::permanent(format!(
                "the reply is {length} characters long; the instance allows {}",
                l.max_characters
            )));
        }
        let form = [
            ("status", mastodon_reply_text(mention, &r.text)),
            ("in_reply_to_id", r.to.clone()),
        ];
        let key = format!("{}-{}", ctx.idempotency_key, r.posted_at.timestamp_millis());
        self.post_status(&form, key, ctx).await
    }

    fn listener(&self) -> Option<&dyn crate::inbox::Listener> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_instance_limits_from_mastodon_or_pleroma() {
        let mastodon = json!({ "configuration": { "statuses": {
            "max_characters": 1000, "characters_reserved_per_url": 30 } } });
        assert_eq!(
            v1_limits(&mastodon),
            Some(Limits {
                max_characters: 1000,
                characters_reserved_per_url: 30
            })
        );
        assert_eq!(
            v1_limits(&json!({ "max_toot_chars": 5000 })),
            Some(Limits {
                max_characters: 5000,
                characters_reserved_per_url: 23
            })
        );
        assert_eq!(v1_limits(&json!({ "uri": "old.example" })), None);
        assert_eq!(v1_limits(&json!({ "max_toot_chars": 0 })), None);
    }
}
