//! The `discord` channel: Discord's Execute Webhook (`POST` to the webhook URL with
//! `?wait=true`, so Discord answers with the message it created, or with the error, instead of
//! a bare 204). Mentions are disabled (`allowed_mentions.parse: []`): an incident title never
//! pings `@everyone`. A 429 carries `Retry-After` and `X-RateLimit-Reset-After` (seconds).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::fit::Counter;
use super::{
    classify_status, describe_reqwest_error, error_text, wait_hint, Channel, DeliveryContext,
    Message, Preview, Reset, SendError, Sent,
};
use crate::config::Secret;
use crate::render::Renderer;

/// A message's `content` limit, in characters.
pub const LIMIT: usize = 2000;

pub struct DiscordChannel {
    id: String,
    url: Secret,
    http: reqwest::Client,
    renderer: Arc<Renderer>,
}

impl DiscordChannel {
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

#[async_trait]
impl Channel for DiscordChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn preview(&self, msg: &Message) -> Option<Preview> {
        let text = self.text(msg).ok()?;
        Some(Preview {
            kind: "discord",
            length: Counter::Chars.count(&text),
            text,
            limit: Some(LIMIT),
        })
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let text = self.text(msg)?;
        let mut url = url::Url::parse(self.url.expose())
            .map_err(|_| SendError::permanent("webhook_url is not a URL"))?;
        url.query_pairs_mut().append_pair("wait", "true");
        let resp = self
            .http
            .post(url)
            .json(&json!({ "content": text, "allowed_mentions": { "parse": [] } }))
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let status = resp.status();
        if status.is_success() {
            let v: serde_json::Value = resp
                .json()
                .await
                .map_err(|e| SendError::retryable(format!("unreadable answer: {e}")))?;
            return Ok(Sent {
                remote_id: v["id"].as_str().map(str::to_string),
                remote_url: None,
            });
        }
        let wait = wait_hint(
            &resp,
            "x-ratelimit-reset-after",
            Reset::SecondsFromNow,
            ctx.now,
        );
        let body = resp.text().await.unwrap_or_default();
        Err(classify_status(
            status,
            &error_text(&body, &["message"]),
            wait,
        ))
    }
}
