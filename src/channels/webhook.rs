//! The `webhook` channel: an HTTP POST of the message as JSON to a URL of yours, with an
//! `Idempotency-Key` header that stays the same across retries of one delivery, and, with a
//! `signing_secret`, the Standard Webhooks signature headers (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`)
//! so the receiver can check the body came from Candor, unaltered and recently. The body's
//! `event` says what happened: `update.published`, `update.corrected`, `postmortem.published` or
//! `notice.ops`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

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
    signing_key: Option<Vec<u8>>,
    http: reqwest::Client,
    renderer: Arc<Renderer>,
}

/// The HMAC key of a Standard Webhooks secret: `whsec_` then base64 of at least 24 bytes.
pub fn signing_key(secret: &Secret) -> Option<Vec<u8>> {
    let b64 = secret.expose().strip_prefix("whsec_")?;
    let key = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (key.len() >= 24).then_some(key)
}

/// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

impl WebhookChannel {
    pub fn new(
        id: &str,
        url: url::Url,
        bearer: Option<Secret>,
        signing_secret: Option<&Secret>,
        timeout: Duration,
        renderer: Arc<Renderer>,
    ) -> anyhow::Result<Self> {
        let signing_key = match signing_secret {
            None => None,
            Some(s) => Some(signing_key(s).ok_or_else(|| {
                anyhow::anyhow!("channels.{id}.signing_secret: must be `whsec_` followed by base64")
            })?),
        };
        Ok(Self {
            id: id.to_string(),
            url,
            bearer,
            signing_key,
            http: super::http_client(timeout)?,
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
        let body = serde_json::to_vec(&serde_json::json!({
            "event": event(msg),
            "delivery_id": ctx.delivery_id,
            "attempt": ctx.attempt,
            "text": text,
            "message": msg,
        }))
        .map_err(|e| SendError::permanent(e.to_string()))?;
        let mut req = self
            .http
            .post(self.url.clone())
            .header("Idempotency-Key", &ctx.idempotency_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.signing_key {
            // The id stays the same across retries (receivers deduplicate on it); the
            // timestamp is this attempt's.
            let ts = ctx.now.timestamp();
            req = req
                .header("webhook-id", &ctx.idempotency_key)
                .header("webhook-timestamp", ts.to_string())
                .header(
                    "webhook-signature",
                    sign(key, &ctx.idempotency_key, ts, &body),
                );
        }
        if let Some(token) = &self.bearer {
            req = req.bearer_auth(token.expose());
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Sent::default());
        }
        let wait = retry_after(resp.headers(), ctx.now);
        let detail = resp.text().await.unwrap_or_default();
        Err(classify_status(status, &detail, wait))
    }
}

/// What happened, for receivers that route on it: `update.corrected` for a correction,
/// `notice.ops` for the team's notices, else `update.published`.
fn event(msg: &Message) -> &'static str {
    match (msg.audience, msg.kind) {
        (_, super::MessageKind::Correction) => "update.corrected",
        (_, super::MessageKind::Postmortem) => "postmortem.published",
        (crate::domain::Audience::Ops, _) => "notice.ops",
        _ => "update.published",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_need_the_prefix_and_base64() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(
            signing_key(&Secret::new(format!("whsec_{key}"))),
            Some(vec![7u8; 32])
        );
        assert_eq!(signing_key(&Secret::new(key)), None);
        assert_eq!(signing_key(&Secret::new("whsec_not base64!")), None);
        assert_eq!(signing_key(&Secret::new("whsec_c2hvcnQ=")), None);
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The spec's reference libraries' test vector.
        let key = signing_key(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
