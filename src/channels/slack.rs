//! The `slack` channel: a Slack incoming webhook (`POST` of `{"text": ...}` to the webhook URL).
//! Slack answers `ok`, or an error word (`invalid_payload`, `no_service`, `channel_is_archived`,
//! ...) with a 4xx, or 429 with `Retry-After`. Incoming webhooks return no message id, so
//! there is nothing to thread under.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::fit::Counter;
use super::{
    classify_status, describe_reqwest_error, retry_after, Channel, DeliveryContext, Message,
    Preview, SendError, Sent,
};
use crate::config::Secret;
use crate::render::Renderer;

/// Slack truncates a message's `text` beyond 40,000 characters; keep well under it.
pub const LIMIT: usize = 4000;

pub struct SlackChannel {
    id: String,
    url: Secret,
    http: reqwest::Client,
    renderer: Arc<Renderer>,
}

impl SlackChannel {
    pub fn new(
        id: &str,
        url: Secret,
        timeout: Duration,
        renderer: Arc<Renderer>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            id: id.to_string(),
            url,
            http: super::http_client(timeout)?,
            renderer,
        })
    }

    fn text(&self, msg: &Message) -> Result<String, SendError> {
        super::fitted_post(&self.renderer, msg, LIMIT, Counter::Chars)
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
        let resp = self
            .http
            .post(self.url.expose())
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
}
