//! The `x` channel: `POST /2/tweets` signed with OAuth 1.0a (user context, HMAC-SHA1, by the
//! `oauth1-request` crate).
//!
//! - 280 weighted characters as twitter-text counts them (links 23).
//! - Later updates reply with `reply.in_reply_to_tweet_id`.
//! - X has no idempotency key. If an attempt's answer was lost and the retry is refused as
//!   duplicate content (403), the first attempt did post: that counts as delivered, never as a
//!   failure to retry forever.
//! - Rate limits: `Retry-After`, else `x-rate-limit-reset` (Unix seconds).

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

/// A post's limit, in weighted characters.
pub const LIMIT: usize = 280;

/// The four OAuth 1.0a user-context keys.
#[derive(Clone)]
pub struct Keys {
    pub consumer_key: Secret,
    pub consumer_secret: Secret,
    pub access_token: Secret,
    pub access_token_secret: Secret,
}

/// The `Authorization` header for a request to `uri` with `params` (query or form parameters;
/// a JSON body is not signed). `nonce` and `timestamp` are pinned only by tests.
pub fn authorization<R: oauth1_request::Request + ?Sized>(
    keys: &Keys,
    method: &str,
    uri: &str,
    params: &R,
    nonce: Option<&str>,
    timestamp: Option<u64>,
) -> String {
    let token = oauth1_request::Token::from_parts(
        keys.consumer_key.expose(),
        keys.consumer_secret.expose(),
        keys.access_token.expose(),
        keys.access_token_secret.expose(),
    );
    let mut b = oauth1_request::Builder::with_token(token, oauth1_request::HmacSha1::new());
    b.version(true)
        .nonce(nonce)
        .timestamp(timestamp.and_then(std::num::NonZeroU64::new));
    b.authorize(method, uri, params)
}

pub struct XChannel {
    id: String,
    api: url::Url,
    keys: Keys,
    http: reqwest::Client,
    renderer: Arc<Renderer>,
}

impl XChannel {
    pub fn new(
        id: &str,
        api: url::Url,
        keys: Keys,
        timeout: Duration,
        renderer: Arc<Renderer>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            id: id.to_string(),
            api,
            keys,
            http: super::http_client(timeout)?,
            renderer,
        })
    }

    fn text(&self, msg: &Message) -> Result<String, SendError> {
        super::fitted_post(&self.renderer, msg, LIMIT, Counter::Weighted)
    }
}

/// Whether an error body is X's refusal of a post identical to a recent one.
/// (v2: "You are not allowed to create a Tweet with duplicate content."; v1.1: "Status is a
/// duplicate.")
fn is_duplicate(body: &str) -> bool {
    body.to_ascii_lowercase().contains("duplicate")
}

#[async_trait]
impl Channel for XChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn preview(&self, msg: &Message) -> Option<Preview> {
        let text = self.text(msg).ok()?;
        Some(Preview {
            kind: "x",
            length: Counter::Weighted.count(&text),
            text,
            limit: Some(LIMIT),
        })
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let text = self.text(msg)?;
        let mut body = json!({ "text": text });
        if let Some(parent) = ctx.thread_parent.as_ref().or(ctx.thread_root.as_ref()) {
            body["reply"] = json!({ "in_reply_to_tweet_id": parent });
        }
        let mut url = self.api.clone();
        url.set_path("/2/tweets");
        let auth = authorization(&self.keys, "POST", url.as_str(), &(), None, None);
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .json(&body)
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let status = resp.status();
        if status.is_success() {
            let v: serde_json::Value = resp
                .json()
                .await
                .map_err(|e| SendError::retryable(format!("unreadable answer: {e}")))?;
            let id = v["data"]["id"].as_str().map(str::to_string);
            return Ok(Sent {
                remote_url: id
                    .as_ref()
                    .map(|id| format!("https://x.com/i/web/status/{id}")),
                remote_id: id,
            });
        }
        let wait = wait_hint(&resp, "x-rate-limit-reset", Reset::EpochSeconds, ctx.now);
        let raw = resp.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::FORBIDDEN && ctx.attempt > 1 && is_duplicate(&raw) {
            tracing::info!("X refused a duplicate on a retry: an earlier attempt had posted");
            return Ok(Sent::default());
        }
        Err(classify_status(
            status,
            &error_text(&raw, &["title", "detail"]),
            wait,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example in X's "Creating a signature" (OAuth 1.0a) documentation: its keys,
    /// nonce, timestamp and parameters give its signature `hCtSmYh+iHYCEqBWrE7C7hYmtUk=`. (The
    /// page's prose now names api.x.com, but that signature was computed, and still verifies,
    /// over the original base URL https://api.twitter.com/1.1/statuses/update.json.)
    #[test]
    fn signature_matches_x_documentation_example() {
        let keys = Keys {
            consumer_key: Secret::new("xvz1evFS4wEEPTGEFPHBog"),
            consumer_secret: Secret::new("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"),
            access_token: Secret::new("370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
            access_token_secret: Secret::new("LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"),
        };
        let params = oauth1_request::ParameterList::new([
            ("include_entities", "true"),
            (
                "status",
                "Hello Ladies + Gentlemen, a signed OAuth request!",
            ),
        ]);
        let header = authorization(
            &keys,
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            &params,
            Some("kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            Some(1318622958),
        );
        assert!(
            header.contains(r#"oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D""#),
            "{header}"
        );
        assert!(header.contains(r#"oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog""#));
        assert!(header.contains(r#"oauth_version="1.0""#));
    }
}
