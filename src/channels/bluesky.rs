//! The `bluesky` channel: posts to an AT Protocol account signed in with an app password.
//!
//! - One session per process: `com.atproto.server.createSession` once, then
//!   `com.atproto.server.refreshSession` when the access token expires (`ExpiredToken`);
//!   signing in per post would hit createSession's own, much lower, rate limit.
//! - `com.atproto.repo.createRecord` for an `app.bsky.feed.post` of at most 300 graphemes, with
//!   a link facet (UTF-8 byte offsets) over the incident URL.
//! - No idempotency key exists, so the record key is a TID derived from the delivery alone:
//!   a retry first asks `com.atproto.repo.getRecord` whether the earlier attempt landed.
//! - Replies carry `reply.root` and `reply.parent` (uri + cid); the delivery's remote id is kept
//!   as "`uri` `cid`" so later updates can name both.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::fit::Counter;
use super::{
    classify_status, describe_reqwest_error, error_text, wait_hint, Channel, DeliveryContext,
    Message, Preview, Reply, Reset, SendError, Sent,
};
use crate::config::Secret;
use crate::render::Renderer;

/// A post's limit, in graphemes (app.bsky.feed.post `text.maxGraphemes`).
pub const LIMIT: usize = 300;
const COLLECTION: &str = "app.bsky.feed.post";

#[derive(Clone, Deserialize)]
struct Session {
    #[serde(rename = "accessJwt")]
    access: String,
    #[serde(rename = "refreshJwt")]
    refresh: String,
    did: String,
}

#[derive(Deserialize)]
struct StrongRef {
    uri: String,
    cid: String,
}

pub struct BlueskyChannel {
    id: String,
    service: url::Url,
    identifier: String,
    password: Secret,
    http: reqwest::Client,
    renderer: Arc<Renderer>,
    session: Mutex<Option<Session>>,
    /// The rate-limit headers of the latest answer (`RateLimit-*`), for the inbox's polling.
    rate: std::sync::Mutex<crate::domain::inbox::Rate>,
}

/// A record key for one delivery: a valid TID (13 base32-sortable characters, top bit 0, 53
/// bits of microseconds, 10 bits of clock id), the same on every attempt. The time part is
/// when the message was posted, to the millisecond, with the delivery id in the microseconds
/// and the clock id, so two deliveries never share a key.
pub fn record_key(posted_at: DateTime<Utc>, delivery_id: i64) -> String {
    let d = delivery_id.unsigned_abs();
    let micros = posted_at.timestamp_millis().max(0) as u64 * 1000 + d % 1000;
    tid(micros, (d / 1000) % 1024)
}

/// Encodes a TID from microseconds since the epoch and a clock id.
pub fn tid(micros: u64, clock_id: u64) -> String {
    const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
    let mut v = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3ff);
    let mut out = [0u8; 13];
    for c in out.iter_mut().rev() {
        *c = ALPHABET[(v & 0x1f) as usize];
        v >>= 5;
    }
    out.iter().map(|&b| b as char).collect()
}

/// A delivery's remote id: the post's uri and cid.
fn remote_id(r: &StrongRef) -> String {
    format!("{} {}", r.uri, r.cid)
}

fn strong_ref(remote_id: &str) -> Option<serde_json::Value> {
    let (uri, cid) = remote_id.split_once(' ')?;
    Some(json!({ "uri": uri, "cid": cid }))
}

/// The post's address on bsky.app: `at://DID/app.bsky.feed.post/RKEY` →
/// `https://bsky.app/profile/DID/post/RKEY`.
pub fn web_url(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("at://")?;
    let (did, rkey) = rest.split_once(&format!("/{COLLECTION}/"))?;
    Some(format!("https://bsky.app/profile/{did}/post/{rkey}"))
}

enum Call {
    Ok(serde_json::Value),
    Expired,
    Failed(SendError),
}

impl BlueskyChannel {
    pub fn new(
        id: &str,
        service: url::Url,
        identifier: String,
        password: Secret,
        timeout: Duration,
        renderer: Arc<Renderer>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            id: id.to_string(),
            service,
            identifier,
            password,
            http: super::http_client(timeout)?,
            renderer,
            session: Mutex::new(None),
            rate: std::sync::Mutex::default(),
        })
    }

    fn xrpc(&self, method: &str) -> url::Url {
        let mut u = self.service.clone();
        u.set_path(&format!("/xrpc/{method}"));
        u
    }

    fn text(&self, msg: &Message) -> Result<String, SendError> {
        super::fitted_post(&self.renderer, msg, LIMIT, Counter::Graphemes)
    }

    /// Sends one XRPC request; an expired access token is told apart from other failures.
    async fn call(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        now: DateTime<Utc>,
    ) -> Result<Call, SendError> {
        let resp = req.send().await.map_err(describe_reqwest_error)?;
        let rate = crate::inbox::rate_of(resp.headers(), "ratelimit-", Reset::EpochSeconds, now);
        if rate.remaining.is_some() {
            *self.rate.lock().expect("rate lock") = rate;
        }
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .await
                .map(Call::Ok)
                .map_err(|e| SendError::retryable(format!("{what}: unreadable answer: {e}")));
        }
        let wait = wait_hint(&resp, "ratelimit-reset", Reset::EpochSeconds, now);
        let body = resp.text().await.unwrap_or_default();
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string));
        if code.as_deref() == Some("ExpiredToken") {
            return Ok(Call::Expired);
        }
        let text = format!("{what}: {}", error_text(&body, &["error", "message"]));
        Ok(Call::Failed(classify_status(status, &text, wait)))
    }

    /// Signs in with the app password (only when there is no session to refresh).
    async fn create_session(&self, now: DateTime<Utc>) -> Result<Session, SendError> {
        let req = self
            .http
            .post(self.xrpc("com.atproto.server.createSession"))
            .json(&json!({ "identifier": self.identifier, "password": self.password.expose() }));
        match self.call(req, "createSession", now).await? {
            Call::Ok(v) => serde_json::from_value(v)
                .map_err(|e| SendError::retryable(format!("createSession: {e}"))),
            Call::Expired => Err(SendError::retryable("createSession: ExpiredToken")),
            Call::Failed(e) => Err(e),
        }
    }

    /// A fresh access token from the refresh token; a refresh token that is no longer good
    /// falls back to signing in again.
    async fn refresh_session(
        &self,
        old: &Session,
        now: DateTime<Utc>,
    ) -> Result<Session, SendError> {
        let req = self
            .http
            .post(self.xrpc("com.atproto.server.refreshSession"))
            .bearer_auth(&old.refresh);
        match self.call(req, "refreshSession", now).await? {
            Call::Ok(v) => serde_json::from_value(v)
                .map_err(|e| SendError::retryable(format!("refreshSession: {e}"))),
            Call::Expired | Call::Failed(SendError::Permanent { .. }) => {
                self.create_session(now).await
            }
            Call::Failed(e) => Err(e),
        }
    }

    /// Runs `make(session)` with the kept session, refreshing it once if it has expired.
    async fn authed<F>(
        &self,
        what: &str,
        now: DateTime<Utc>,
        make: F,
    ) -> Result<serde_json::Value, SendError>
    where
        F: Fn(&Session) -> reqwest::RequestBuilder,
    {
        let session = {
            let mut kept = self.session.lock().await;
            match kept.clone() {
                Some(s) => s,
                None => {
                    let s = self.create_session(now).await?;
                    *kept = Some(s.clone());
                    s
                }
            }
        };
        match self
            .call(make(&session).bearer_auth(&session.access), what, now)
            .await?
        {
            Call::Ok(v) => return Ok(v),
            Call::Failed(e) => return Err(e),
            Call::Expired => {}
        }
        let fresh = {
            let mut kept = self.session.lock().await;
            match kept.clone() {
                // Another delivery refreshed it meanwhile.
                Some(s) if s.access != session.access => s,
                _ => {
                    let s = self.refresh_session(&session, now).await?;
                    *kept = Some(s.clone());
                    s
                }
            }
        };
        match self
            .call(make(&fresh).bearer_auth(&fresh.access), what, now)
            .await?
        {
            Call::Ok(v) => Ok(v),
            Call::Expired => Err(SendError::retryable(format!(
                "{what}: ExpiredToken after refresh"
            ))),
            Call::Failed(e) => Err(e),
        }
    }

    /// The post an earlier attempt of this delivery made, if it landed.
    async fn existing(
        &self,
        rkey: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StrongRef>, SendError> {
        let r = self
            .authed("getRecord", now, |s| {
                self.http
                    .get(self.xrpc("com.atproto.repo.getRecord"))
                    .query(&[
                        ("repo", s.did.as_str()),
                        ("collection", COLLECTION),
                        ("rkey", rkey),
                    ])
            })
            .await;
        match r {
            Ok(v) => Ok(serde_json::from_value(v).ok()),
            // "RecordNotFound" (HTTP 400): the earlier attempt did not land.
            Err(SendError::Permanent { reason }) if reason.contains("RecordNotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn sent(r: &StrongRef) -> Sent {
    Sent {
        remote_id: Some(remote_id(r)),
        remote_url: web_url(&r.uri),
    }
}

#[async_trait]
impl Channel for BlueskyChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn preview(&self, msg: &Message) -> Option<Preview> {
        let text = self.text(msg).ok()?;
        Some(Preview {
            kind: "bluesky",
            length: Counter::Graphemes.count(&text),
            text,
            limit: Some(LIMIT),
        })
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let rkey = record_key(msg.posted_at, ctx.delivery_id);
        if ctx.attempt > 1 {
            if let Some(r) = self.existing(&rkey, ctx.now).await? {
                tracing::info!(uri = %r.uri, "an earlier attempt had posted; not posting again");
                return Ok(sent(&r));
            }
        }
        let text = self.text(msg)?;
        let mut record = json!({
            "$type": COLLECTION,
            "text": text,
            "createdAt": msg.posted_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        if let Some(start) = text
            .rfind(&msg.incident_url)
            .filter(|_| !msg.incident_url.is_empty())
        {
            record["facets"] = json!([{
                "index": { "byteStart": start, "byteEnd": start + msg.incident_url.len() },
                "features": [{ "$type": "app.bsky.richtext.facet#link", "uri": msg.incident_url }],
            }]);
        }
        let root = ctx.thread_root.as_deref().and_then(strong_ref);
        let parent = ctx
            .thread_parent
            .as_deref()
            .and_then(strong_ref)
            .or(root.clone());
        if let (Some(root), Some(parent)) = (root, parent) {
            record["reply"] = json!({ "root": root, "parent": parent });
        }
        self.create(&rkey, record, ctx).await
    }

    /// A reply in a customer's thread: `reply.root` = the thread's root, `reply.parent` = their
    /// post, at most 300 graphemes; the record key is the delivery's, as for updates.
    async fn reply(&self, r: &Reply, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let length = Counter::Graphemes.count(&r.text);
        if length > LIMIT {
            return Err(SendError::permanent(format!(
                "the reply is {length} graphemes long; Bluesky allows {LIMIT}"
            )));
        }
        let (Some(parent), Some(root)) = (
            strong_ref(&r.to),
            strong_ref(r.root.as_deref().unwrap_or(&r.to)),
        ) else {
            return Err(SendError::permanent(format!(
                "`{}` is not a post's uri and cid",
                r.to
            )));
        };
        let rkey = record_key(r.posted_at, ctx.delivery_id);
        if ctx.attempt > 1 {
            if let Some(r) = self.existing(&rkey, ctx.now).await? {
                return Ok(sent(&r));
            }
        }
        let record = json!({
            "$type": COLLECTION,
            "text": r.text,
            "createdAt": r.posted_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "reply": { "root": root, "parent": parent },
        });
        self.create(&rkey, record, ctx).await
    }

    fn listener(&self) -> Option<&dyn crate::inbox::Listener> {
        Some(self)
    }
}

impl BlueskyChannel {
    /// `com.atproto.repo.createRecord` of one post under `rkey`.
    async fn create(
        &self,
        rkey: &str,
        record: serde_json::Value,
        ctx: &DeliveryContext,
    ) -> Result<Sent, SendError> {
        let v = self
            .authed("createRecord", ctx.now, |s| {
                self.http
                    .post(self.xrpc("com.atproto.repo.createRecord"))
                    .json(&json!({
                        "repo": s.did,
                        "collection": COLLECTION,
                        "rkey": rkey,
                        "record": record,
                    }))
            })
            .await?;
        let r: StrongRef = serde_json::from_value(v)
            .map_err(|e| SendError::retryable(format!("createRecord: unreadable answer: {e}")))?;
        Ok(sent(&r))
    }

    /// An authenticated XRPC query (`GET /xrpc/METHOD?query`) with the kept session, and the
    /// rate-limit headers it came back with: the inbox reads notifications with it.
    pub(crate) async fn query(
        &self,
        method: &str,
        query: &[(&str, String)],
        now: DateTime<Utc>,
    ) -> Result<(serde_json::Value, crate::domain::inbox::Rate), SendError> {
        let v = self
            .authed(method, now, |_| {
                self.http.get(self.xrpc(method)).query(query)
            })
            .await?;
        let rate = *self.rate.lock().expect("rate lock");
        Ok((v, rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn tids_encode_like_the_reference_codec() {
        // @atcute/tid: TID.create(1724171495793000, 512) -> "3l25zusnsfck2".
        assert_eq!(tid(1_724_171_495_793_000, 512), "3l25zusnsfck2");
        assert_eq!(tid(0, 0), "2222222222222");
    }

    #[test]
    fn record_keys_are_stable_per_delivery_and_distinct_between_them() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        assert_eq!(record_key(at, 41), record_key(at, 41));
        let keys: std::collections::BTreeSet<String> =
            (1..5000).map(|d| record_key(at, d)).collect();
        assert_eq!(keys.len(), 4999);
        let k = record_key(at, 41);
        assert_eq!(k.len(), 13);
        assert!(matches!(k.as_bytes()[0], b'2'..=b'7'), "top bit 0: {k}");
    }

    #[test]
    fn web_urls_from_at_uris() {
        assert_eq!(
            web_url("at://did:plc:abc/app.bsky.feed.post/3l25zusnsfck2").as_deref(),
            Some("https://bsky.app/profile/did:plc:abc/post/3l25zusnsfck2")
        );
    }
}
