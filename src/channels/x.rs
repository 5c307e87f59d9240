//! The `x` channel: `POST /2/tweets` signed with OAuth 1.0a (user context, HMAC-SHA1, by the
//! `oauth1-request` crate).
//!
//! - 280 weighted characters as twitter-text counts them (links 23).
//! - Later updates reply with `reply.in_reply_to_tweet_id`.
//! - X has no idempotency key. If an attempt's answer was lost and the retry is refused as
//!   duplicate content (403), the first attempt did post: that counts as delivered, never as a
//!   failure to retry forever. The post's id is then looked up, so the thread goes on from it
//!   (see [`XChannel::find_post`]): `GET /2/users/me` (once, kept) and `GET
//!   /2/users/:id/tweets` for the account's 10 latest posts, matching the exact text (X's
//!   t.co links turned back into `entities.urls[].expanded_url`, its `&amp;` `&lt;` `&gt;`
//!   read back) and the post it answers (`referenced_tweets`). If it cannot be found (X's
//!   lower access levels may not read timelines), the log says so and the delivery counts as
//!   delivered without an id: the next update then answers the post before it, a branch in
//!   the thread rather than a lost or doubled post.
//! - Rate limits: `Retry-After`, else `x-rate-limit-reset` (Unix seconds).

use std::sync::{Arc, Mutex};
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
    /// The account's user id, once `GET /2/users/me` has said it.
    user_id: Mutex<Option<String>>,
}

/// How many of the account's latest posts are searched for a duplicate's original.
const RECENT_POSTS: &str = "10";

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
            user_id: Mutex::new(None),
        })
    }

    fn text(&self, msg: &Message) -> Result<String, SendError> {
        super::fitted_post(&self.renderer, msg, LIMIT, Counter::Weighted)
    }

    /// A signed `GET` of `path` with `params`, its answer as JSON; a failure in words.
    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<serde_json::Value, String> {
        let mut url = self.api.clone();
        url.set_path(path);
        let signed = oauth1_request::ParameterList::new(params.to_vec());
        let auth = authorization(&self.keys, "GET", url.as_str(), &signed, None, None);
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {}", describe_reqwest_error(e)))?;
        let status = resp.status();
        let raw = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let words = error_text(&raw, &["title", "detail"]);
            return Err(format!(
                "GET {path}: HTTP {}: {}",
                status.as_u16(),
                super::truncate(&words, 300)
            ));
        }
        serde_json::from_str(&raw).map_err(|e| format!("GET {path}: unreadable answer: {e}"))
    }

    /// The account's user id: `GET /2/users/me`, asked once.
    async fn user_id(&self) -> Result<String, String> {
        if let Some(id) = self.user_id.lock().expect("not poisoned").clone() {
            return Ok(id);
        }
        let v = self.get("/2/users/me", &[]).await?;
        let id = v["data"]["id"]
            .as_str()
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .ok_or("GET /2/users/me: no user id in the answer")?
            .to_string();
        *self.user_id.lock().expect("not poisoned") = Some(id.clone());
        Ok(id)
    }

    /// The id of the account's recent post that says exactly `text` and answers `parent` (or
    /// nothing): the post a duplicate refusal means.
    pub async fn find_post(
        &self,
        text: &str,
        parent: Option<&str>,
    ) -> Result<Option<String>, String> {
        let user = self.user_id().await?;
        let v = self
            .get(
                &format!("/2/users/{user}/tweets"),
                &[
                    ("max_results", RECENT_POSTS),
                    ("tweet.fields", "entities,referenced_tweets"),
                ],
            )
            .await?;
        let posts = v["data"].as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(posts
            .iter()
            .find(|p| as_written(p) == text && answers(p) == parent)
            .and_then(|p| p["id"].as_str())
            .map(str::to_string))
    }
}

/// A post's text as it was written: X gives links back as t.co (`entities.urls` has each
/// one's `expanded_url`) and `&`, `<`, `>` as HTML entities.
fn as_written(post: &serde_json::Value) -> String {
    let mut text = post["text"].as_str().unwrap_or_default().to_string();
    for u in post["entities"]["urls"].as_array().into_iter().flatten() {
        if let (Some(short), Some(long)) = (u["url"].as_str(), u["expanded_url"].as_str()) {
            text = text.replace(short, long);
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The post a post replies to, if any.
fn answers(post: &serde_json::Value) -> Option<&str> {
    post["referenced_tweets"]
        .as_array()?
        .iter()
        .find(|r| r["type"] == "replied_to")?["id"]
        .as_str()
}

fn sent(id: Option<String>) -> Sent {
    Sent {
        remote_url: id
            .as_ref()
            .map(|id| format!("https://x.com/i/web/status/{id}")),
        remote_id: id,
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
        let parent = ctx.thread_parent.as_ref().or(ctx.thread_root.as_ref());
        if let Some(parent) = parent {
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
            return Ok(sent(v["data"]["id"].as_str().map(str::to_string)));
        }
        let wait = wait_hint(&resp, "x-rate-limit-reset", Reset::EpochSeconds, ctx.now);
        let raw = resp.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::FORBIDDEN && ctx.attempt > 1 && is_duplicate(&raw) {
            return Ok(
                match self.find_post(&text, parent.map(String::as_str)).await {
                    Ok(Some(id)) => {
                        tracing::info!(
                            remote.id = %id,
                            "X refused a duplicate on a retry: an earlier attempt had posted it; \
                             found among the account's latest posts"
                        );
                        sent(Some(id))
                    }
                    Ok(None) => {
                        tracing::warn!(
                        "X refused a duplicate on a retry: an earlier attempt had posted it, but \
                         it is not among the account's latest posts; counted as delivered without \
                         an id, so the incident's next update answers the post before it"
                    );
                        Sent::default()
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            "X refused a duplicate on a retry: an earlier attempt had posted it, but \
                             its id could not be looked up; counted as delivered without an id, so \
                             the incident's next update answers the post before it"
                        );
                        Sent::default()
                    }
                },
            );
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

    #[test]
    fn a_post_reads_back_as_written_and_names_what_it_answers() {
        let post = json!({
            "id": "101",
            "text": "Fixed &amp; watching &lt;3\n\nhttps://t.co/AbC",
            "entities": { "urls": [{ "start": 29, "end": 45, "url": "https://t.co/AbC",
                "expanded_url": "https://status.acme.test/incidents/7" }] },
            "referenced_tweets": [{ "type": "quoted", "id": "1" }, { "type": "replied_to", "id": "100" }]
        });
        assert_eq!(
            as_written(&post),
            "Fixed & watching <3\n\nhttps://status.acme.test/incidents/7"
        );
        assert_eq!(answers(&post), Some("100"));
        assert_eq!(answers(&json!({ "id": "100", "text": "x" })), None);
    }

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
