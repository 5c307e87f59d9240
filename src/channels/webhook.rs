//! The `webhook` channel: an HTTP POST of the message as JSON to a URL of yours, with an
//! `Idempotency-Key` header that stays the same across retries of one delivery.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    classify_status, describe_reqwest_error, retry_after, Channel, DeliveryContext, Message,
    SendError, Sent,
};
use crate::config::Secret;
use crate::render::Renderer;

pub struct WebhookChannel {
    id: String,
    url: url::Url,
    bearer: Option<Secret>,
    http: reqwest::Client,
    renderer: Arc<Renderer>,
}

impl WebhookChannel {
    pub fn new(
        id: &str,
        url: url::Url,
        bearer: Option<Secret>,
        timeout: Duration,
        renderer: Arc<Renderer>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("candor/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            id: id.to_string(),
            url,
            bearer,
            http,
            renderer,
        })
    }
}

#[async_trait]
impl Channel for WebhookChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn preview(&self, msg: &Message) -> Option<super::Preview> {
        let text = super::post_text(&self.renderer, msg).ok()?;
        Some(super::Preview {
            kind: "webhook",
            length: text.chars().count(),
            text,
            limit: None,
        })
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let text = super::post_text(&self.renderer, msg)?;
        let body = serde_json::json!({
            "delivery_id": ctx.delivery_id,
            "attempt": ctx.attempt,
            "text": text,
            "message": msg,
        });
        let mut req = self
            .http
            .post(self.url.clone())
            .header("Idempotency-Key", &ctx.idempotency_key)
            .json(&body);
        if let Some(token) = &self.bearer {
            req = req.bearer_auth(token.expose());
        }
        let resp = req.send().await.map_err(describe_reqwest_error)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Sent::default());
        }
        let wait = retry_after(resp.headers(), ctx.now);
        let detail = resp.text().await.unwrap_or_default();
        Err(classify_status(status, &detail, wait))
    }
}
