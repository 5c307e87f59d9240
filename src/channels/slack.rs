//! The `slack` channel, in one of two ways:
//!
//! - **An incoming webhook** (`webhook_url`): a `POST` of `{"text": ...}` to the webhook URL.
//!   Slack answers `ok`, or an error word (`invalid_payload`, `no_service`,
//!   `channel_is_archived`, ...) with a 4xx, or 429 with `Retry-After`. Incoming webhooks
//!   return no message id, so an incident's messages cannot be threaded.
//! - **The Web API's `chat.postMessage`** (`bot_token` and `channel`): `POST
//!   {api_url}/chat.postMessage` with `Authorization: Bearer xoxb-...` and a JSON body
//!   `{"channel", "text", "thread_ts"}`. Slack answers `{"ok": true, "ts": ...}`; the `ts` of an
//!   incident's first message is its thread root, and every later message is posted with it as
//!   `thread_ts` (the parent's, never a reply's, as Slack asks). Failures come back mostly as
//!   HTTP 200 with `{"ok": false, "error": "..."}`: `ratelimited` and Slack's own trouble are
//!   retried (after `Retry-After` when given), any other word (`invalid_auth`,
//!   `channel_not_found`, `not_in_channel`, ...) is permanent.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::fit::Counter;
use super::{
    classify_status, describe_reqwest_error, error_text, retry_after, Channel, DeliveryContext,
    Message, Preview, SendError, Sent,
};
use crate::config::Secret;
use crate::render::Renderer;

/// Slack truncates a message's `text` beyond 40,000 characters; keep well under it.
pub const LIMIT: usize = 4000;

/// Where a Slack channel posts.
#[derive(Clone)]
pub enum Target {
    /// An incoming webhook: its URL is the credential.
    Webhook(Secret),
    /// `chat.postMessage` with a bot token, into `channel` (an ID such as `C0123456789`).
    Bot {
        api: url::Url,
        token: Secret,
        channel: String,
    },
}

pub struct SlackChannel {
    id: String,
    target: Target,
    http: reqwest::Client,
    renderer: Arc<Renderer>,
}

impl SlackChannel {
    pub fn new(
        id: &str,
        target: Target,
        timeout: Duration,
        renderer: Arc<Renderer>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            id: id.to_string(),
            target,
            http: super::http_client(timeout)?,
            renderer,
        })
    }

    fn text(&self, msg: &Message) -> Result<String, SendError> {
        super::fitted_post(&self.renderer, msg, LIMIT, Counter::Chars)
    }

    async fn webhook(
        &self,
        url: &Secret,
        text: String,
        ctx: &DeliveryContext,
    ) -> Result<Sent, SendError> {
        let resp = self
            .http
            .post(url.expose())
            .json(&json!({ "text": text }))
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Sent::default());
        }
        let wait = retry_after(resp.headers(), ctx.now);
        let detail = resp.text().await.unwrap_or_default();
        Err(classify_status(status, detail.trim(), wait))
    }

    async fn post_message(
        &self,
        api: &url::Url,
        token: &Secret,
        channel: &str,
        text: String,
        ctx: &DeliveryContext,
    ) -> Result<Sent, SendError> {
        let mut body = json!({ "channel": channel, "text": text });
        if let Some(root) = &ctx.thread_root {
            body["thread_ts"] = json!(root);
        }
        let url = format!("{}/chat.postMessage", api.as_str().trim_end_matches('/'));
        let resp = self
            .http
            .post(url)
            .bearer_auth(token.expose())
            // Slack asks for the charset on JSON bodies (else it warns `missing_charset`).
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let status = resp.status();
        let wait = retry_after(resp.headers(), ctx.now);
        let raw = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(classify_status(status, &error_text(&raw, &["error"]), wait));
        }
        let v: serde_json::Value = serde_json::from_str(&raw)
            .map_err(|e| SendError::retryable(format!("unreadable answer: {e}")))?;
        if v["ok"].as_bool() == Some(true) {
            return Ok(Sent {
                remote_id: v["ts"].as_str().map(str::to_string),
                remote_url: None,
            });
        }
        Err(classify_error(
            v["error"].as_str().unwrap_or("unknown_error"),
            wait,
        ))
    }
}

/// Classifies a Web API error word. Slack documents `ratelimited` (with `Retry-After`) and
/// `internal_error`, `fatal_error`, `service_unavailable`, `request_timeout` as passing
/// trouble; every other word (`invalid_auth`, `not_authed`, `token_revoked`, `missing_scope`,
/// `channel_not_found`, `not_in_channel`, `is_archived`, `msg_too_long`, ...) will not change
/// by retrying.
pub fn classify_error(word: &str, retry_after: Option<Duration>) -> SendError {
    let reason = format!("Slack: {}", super::truncate(word, 100));
    match word {
        "ratelimited"
        | "rate_limited"
        | "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout"
        | "team_added_to_org" => SendError::Retryable {
            reason,
            retry_after,
        },
        _ => SendError::Permanent { reason },
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[async_trait]
impl Channel for SlackChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn preview(&self, msg: &Message) -> Option<Preview> {
        let text = self.text(msg).ok()?;
        Some(Preview {
            kind: "slack",
            length: Counter::Chars.count(&text),
            text,
            limit: Some(LIMIT),
        })
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let text = escape(&self.text(msg)?);
        match &self.target {
            Target::Webhook(url) => self.webhook(url, text, ctx).await,
            Target::Bot {
                api,
                token,
                channel,
            } => self.post_message(api, token, channel, text, ctx).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_error_words_are_classified() {
        let wait = Some(Duration::from_secs(30));
        assert_eq!(
            classify_error("ratelimited", wait),
            SendError::Retryable {
                reason: "Slack: ratelimited".into(),
                retry_after: wait
            }
        );
        for word in ["internal_error", "fatal_error", "service_unavailable"] {
            assert!(matches!(
                classify_error(word, None),
                SendError::Retryable { .. }
            ));
        }
        for word in [
            "invalid_auth",
            "not_authed",
            "token_revoked",
            "missing_scope",
            "channel_not_found",
            "not_in_channel",
            "is_archived",
        ] {
            assert!(
                matches!(classify_error(word, None), SendError::Permanent { .. }),
                "{word}"
            );
        }
    }
}
