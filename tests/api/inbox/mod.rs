//! The inbox against local stand-ins for Mastodon and Bluesky that implement the documented
//! endpoints: Mastodon's `GET /api/v1/notifications` (types[], limit, min_id, the `Link`
//! header, `X-RateLimit-*`), `GET /api/v1/statuses/:id/context` and `POST /api/v1/statuses`;
//! Bluesky's `app.bsky.notification.listNotifications` (limit, cursor, `RateLimit-*`) and
//! `com.atproto.repo.createRecord`. Posts appear once across restarts, claims are exclusive,
//! answers and "it is fixed" replies are the documented reply requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::*;

mod bluesky;
mod claims;
mod mastodon;

pub const MASTO_TOKEN: &str = "masto-token";
pub const DID: &str = "did:plc:acmestatus";

/// Config for an app listening on `masto` and/or `sky`.
pub async fn app_with(masto: Option<&MockServer>, sky: Option<&MockServer>) -> TestApp {
    let mut channels = String::new();
    let mut listen = Vec::new();
    if let Some(m) = masto {
        channels += &format!(
            "  masto: {{ type: mastodon, instance: \"{}\", access_token: \"{MASTO_TOKEN}\" }}\n",
            m.uri()
        );
        listen.push("masto");
    }
    if let Some(s) = sky {
        channels += &format!(
            "  sky: {{ type: bluesky, service: \"{}\", identifier: \"acme.test\", app_password: \"abcd-efgh-ijkl-mnop\" }}\n",
            s.uri()
        );
        listen.push("sky");
    }
    spawn_app_with(Options {
        extra_channels: Some(channels),
        extra: Some(format!(
            "inbox: {{ channels: [{}], poll_every: 60s, unclaimed_after: 15m, max_items_per_incident: 200 }}\n",
            listen.join(", ")
        )),
        ..Default::default()
    })
    .await
}

pub async fn declare(t: &TestApp) -> i64 {
    t.declare(json!({ "title": "Login failures", "impact": "major",
        "message": "Some customers cannot sign in.", "components": { "web": "partial_outage" },
        "eta_in": "1h" }))
        .await["id"]
        .as_i64()
        .unwrap()
}

pub async fn poll(t: &TestApp) -> candor::inbox::PassReport {
    t.app.inbox().run_once().await.expect("inbox pass")
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Every inbound post kept, as (channel, remote id, author handle, text), oldest first.
pub async fn kept(t: &TestApp, incident: i64) -> Vec<(String, String, String)> {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let cs = candor::store::inbox::conversations(&mut conn, incident)
        .await
        .unwrap();
    candor::store::inbox::items(&mut conn, incident)
        .await
        .unwrap()
        .into_iter()
        .map(|i| {
            let c = cs.iter().find(|c| c.id == i.conversation_id).unwrap();
            (i.remote_id, c.author_handle.clone(), i.body)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Mastodon.

/// A Mastodon server's state: notifications (oldest first), threads, statuses made.
#[derive(Default)]
pub struct Masto {
    pub notes: Vec<Value>,
    /// Status id → its ancestors' ids, oldest first.
    pub ancestors: HashMap<String, Vec<String>>,
    /// Statuses posted: (Idempotency-Key, form).
    pub posted: Vec<(String, HashMap<String, String>)>,
    /// Answers to hand out before the real ones (errors, 429s).
    pub failures: Vec<ResponseTemplate>,
    /// X-RateLimit-Remaining of the next answer.
    pub remaining: i64,
    pub reset: Option<DateTime<Utc>>,
    /// Notification requests answered so far; `fail_call[n]` answers the n-th (from 1) instead.
    pub calls: usize,
    pub fail_call: HashMap<usize, ResponseTemplate>,
}

pub type MastoState = Arc<Mutex<Masto>>;

/// A status notification `id` from `acct`, replying to `parent` (if any).
pub fn mention(id: u64, acct: &str, parent: Option<&str>, html: &str, at: DateTime<Utc>) -> Value {
    let account = json!({ "id": format!("acc-{acct}"), "acct": acct, "username": acct.split('@').next().unwrap(),
        "display_name": format!("{} (customer)", acct.split('@').next().unwrap()),
        "url": format!("https://far.example/@{acct}") });
    json!({
        "id": id.to_string(), "type": "mention", "created_at": iso(at), "account": account,
        "status": { "id": format!("9{id:04}"), "created_at": iso(at), "in_reply_to_id": parent,
            "content": html, "visibility": "public", "uri": format!("https://far.example/users/x/statuses/9{id:04}"),
            "url": format!("https://far.example/@{acct}/9{id:04}"), "account": account }
    })
}

/// Mounts Mastodon's endpoints over `state`.
pub async fn mount_mastodon(server: &MockServer) -> MastoState {
    let state: MastoState = Arc::new(Mutex::new(Masto {
        remaining: 299,
        ..Default::default()
    }));
    Mock::given(method("GET"))
        .and(path("/api/v2/instance"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "domain": "social.acme.test",
            "configuration": { "statuses": { "max_characters": 500, "characters_reserved_per_url": 23 } }
        })))
        .mount(server)
        .await;
    let base = server.uri();
    let s = state.clone();
    Mock::given(method("GET"))
        .and(path("/api/v1/notifications"))
        .respond_with(move |r: &Request| {
            let mut st = s.lock().unwrap();
            if r.headers.get("authorization").map(|v| v.to_str().unwrap())
                != Some(&format!("Bearer {MASTO_TOKEN}"))
            {
                return ResponseTemplate::new(401).set_body_json(json!({ "error": "The access token is invalid" }));
            }
            st.calls += 1;
            let call = st.calls;
            if let Some(f) = st.fail_call.remove(&call) {
                return f;
            }
            if !st.failures.is_empty() {
                return st.failures.remove(0);
            }
            let q: HashMap<String, String> = r.url.query_pairs().into_owned().collect();
            assert_eq!(q.get("types[]").map(String::as_str), Some("mention"), "{}", r.url);
            let limit: usize = q.get("limit").map_or(40, |l| l.parse().unwrap());
            let id = |n: &Value| n["id"].as_str().unwrap().parse::<u64>().unwrap();
            let mut page: Vec<Value> = match q.get("min_id") {
                Some(min) => {
                    let min: u64 = min.parse().unwrap();
                    st.notes.iter().filter(|n| id(n) > min).take(limit).cloned().collect()
                }
                None => {
                    let n = st.notes.len();
                    st.notes[n.saturating_sub(limit)..].to_vec()
                }
            };
            page.reverse();
            let mut resp = ResponseTemplate::new(200).set_body_json(&page);
            if let (Some(newest), Some(oldest)) = (page.first(), page.last()) {
                resp = resp.insert_header(
                    "link",
                    format!(
                        "<{base}/api/v1/notifications?max_id={}&types%5B%5D=mention>; rel=\"next\", \
                         <{base}/api/v1/notifications?min_id={}&types%5B%5D=mention>; rel=\"prev\"",
                        id(oldest), id(newest)
                    ),
                );
            }
            let remaining = st.remaining;
            st.remaining -= 1;
            let reset = st.reset.map_or_else(|| "2026-11-23T12:05:00.000Z".to_string(), iso);
            resp.insert_header("x-ratelimit-limit", "300")
                .insert_header("x-ratelimit-remaining", remaining.to_string())
                .insert_header("x-ratelimit-reset", reset)
        })
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v1/statuses/[0-9]+/context$"))
        .respond_with(move |r: &Request| {
            let id = r.url.path().split('/').nth(4).unwrap().to_string();
            let st = s.lock().unwrap();
            let ancestors: Vec<Value> = st
                .ancestors
                .get(&id)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|a| json!({ "id": a, "content": "<p>earlier</p>" }))
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({ "ancestors": ancestors, "descendants": [] }))
                .insert_header("x-ratelimit-limit", "300")
                .insert_header("x-ratelimit-remaining", "250")
                .insert_header("x-ratelimit-reset", "2026-11-23T12:05:00.000Z")
        })
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(move |r: &Request| {
            assert_eq!(
                r.headers["authorization"].to_str().unwrap(),
                format!("Bearer {MASTO_TOKEN}")
            );
            let key = r.headers["idempotency-key"].to_str().unwrap().to_string();
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(&r.body).into_owned().collect();
            let mut st = s.lock().unwrap();
            let existing = st.posted.iter().position(|(k, _)| *k == key);
            let n = match existing {
                Some(i) => i,
                None => {
                    st.posted.push((key, form));
                    st.posted.len() - 1
                }
            };
            let id = 1001 + n;
            ResponseTemplate::new(200).set_body_json(json!({
                "id": id.to_string(), "url": format!("https://social.acme.test/@acme/{id}")
            }))
        })
        .mount(server)
        .await;
    state
}

// ---------------------------------------------------------------------------------------------
// Bluesky.

#[derive(Default)]
pub struct Sky {
    /// Notifications, oldest first.
    pub notes: Vec<Value>,
    /// Records made: the createRecord bodies.
    pub made: Vec<Value>,
    pub failures: Vec<ResponseTemplate>,
    pub remaining: i64,
    pub reset: i64,
    pub calls: usize,
    pub fail_call: HashMap<usize, ResponseTemplate>,
}

pub type SkyState = Arc<Mutex<Sky>>;

/// A post's (uri, cid).
pub type Ref<'a> = (&'a str, &'a str);

/// A reply or mention notification `n` by `handle`, in the thread of `root`, answering
/// `parent` (both (uri, cid); none for a bare mention).
pub fn sky_note(
    n: u64,
    handle: &str,
    reason: &str,
    reply: Option<(Ref<'_>, Ref<'_>)>,
    text: &str,
    at: DateTime<Utc>,
) -> Value {
    let did = format!("did:plc:{}", handle.split('.').next().unwrap());
    let mut record = json!({ "$type": "app.bsky.feed.post", "text": text, "createdAt": iso(at) });
    if let Some(((ru, rc), (pu, pc))) = reply {
        record["reply"] =
            json!({ "root": { "uri": ru, "cid": rc }, "parent": { "uri": pu, "cid": pc } });
    }
    json!({
        "uri": format!("at://{did}/app.bsky.feed.post/3kz{n:010}"), "cid": format!("bafycustomer{n}"),
        "author": { "did": did, "handle": handle, "displayName": format!("{handle} person") },
        "reason": reason, "record": record, "isRead": false, "indexedAt": iso(at)
    })
}

pub async fn mount_bluesky(server: &MockServer) -> SkyState {
    let state: SkyState = Arc::new(Mutex::new(Sky {
        remaining: 2999,
        reset: 1_795_435_500,
        ..Default::default()
    }));
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accessJwt": "access-1", "refreshJwt": "refresh-1", "handle": "acme.test", "did": DID
        })))
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("GET"))
        .and(path("/xrpc/app.bsky.notification.listNotifications"))
        .respond_with(move |r: &Request| {
            assert_eq!(
                r.headers["authorization"].to_str().unwrap(),
                "Bearer access-1"
            );
            let mut st = s.lock().unwrap();
            st.calls += 1;
            let call = st.calls;
            if let Some(f) = st.fail_call.remove(&call) {
                return f;
            }
            if !st.failures.is_empty() {
                return st.failures.remove(0);
            }
            let q: HashMap<String, String> = r.url.query_pairs().into_owned().collect();
            let limit: usize = q.get("limit").map_or(50, |l| l.parse().unwrap());
            let mut older: Vec<&Value> = st
                .notes
                .iter()
                .filter(|n| {
                    q.get("cursor")
                        .is_none_or(|c| n["indexedAt"].as_str().unwrap() < c.as_str())
                })
                .collect();
            older.reverse();
            let more = older.len() > limit;
            let page: Vec<Value> = older.into_iter().take(limit).cloned().collect();
            let mut body = json!({ "notifications": page });
            if more {
                body["cursor"] = page.last().unwrap()["indexedAt"].clone();
            }
            let remaining = st.remaining;
            st.remaining -= 1;
            ResponseTemplate::new(200)
                .set_body_json(body)
                .insert_header("ratelimit-limit", "3000")
                .insert_header("ratelimit-remaining", remaining.to_string())
                .insert_header("ratelimit-reset", st.reset.to_string())
                .insert_header("ratelimit-policy", "3000;w=300")
        })
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .respond_with(move |r: &Request| {
            assert_eq!(r.headers["authorization"].to_str().unwrap(), "Bearer access-1");
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let rkey = body["rkey"].as_str().unwrap().to_string();
            let mut st = s.lock().unwrap();
            st.made.push(body);
            let n = st.made.len();
            ResponseTemplate::new(200).set_body_json(json!({
                "uri": format!("at://{DID}/app.bsky.feed.post/{rkey}"), "cid": format!("bafyours{n}")
            }))
        })
        .mount(server)
        .await;
    state
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
