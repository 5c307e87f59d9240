//! The social and chat channels against local stand-ins (wiremock) for Mastodon, Bluesky, X,
//! Slack, Discord and a Standard Webhooks receiver: each checks the method, path, headers,
//! signature and body the platform documents, for a first post, a threaded reply, a 429, a
//! permanent refusal and a retry after an attempt whose answer was lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use candor::channels::fit::Counter;
use candor::store::deliveries::{self, Delivery};
use candor::{Clock, SystemClock};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Plumbing shared by the channels' tests.

async fn app(channels_yaml: String) -> TestApp {
    spawn_app_with(Options {
        extra_channels: Some(channels_yaml),
        ..Default::default()
    })
    .await
}

fn incident(body: &str) -> Value {
    json!({ "title": "Login failures", "impact": "major", "message": body,
            "components": { "web": "partial_outage" }, "eta_in": "1h" })
}

async fn declare(t: &TestApp, body: &str) -> i64 {
    t.declare(incident(body)).await["id"].as_i64().unwrap()
}

async fn update(t: &TestApp, id: i64, message: &str) {
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": message }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Every delivery of `channel`, oldest first.
async fn deliveries_of(t: &TestApp, channel: &str) -> Vec<Delivery> {
    let list: Value = t
        .get("/api/v1/incidents?state=all")
        .await
        .json()
        .await
        .unwrap();
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let mut all = Vec::new();
    for i in list["incidents"].as_array().unwrap() {
        all.extend(
            deliveries::for_incident(&mut conn, i["id"].as_i64().unwrap())
                .await
                .unwrap()
                .into_iter()
                .filter(|d| d.channel == channel),
        );
    }
    all.sort_by_key(|d| d.id);
    all
}

async fn requests_to(server: &MockServer, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .collect()
}

fn json_of(r: &Request) -> Value {
    serde_json::from_slice(&r.body).expect("JSON body")
}

fn form_of(r: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

fn incident_url(id: i64) -> String {
    format!("https://status.acme.test/incidents/{id}")
}

fn at(t: &TestApp, secs: i64) -> DateTime<Utc> {
    t.clock_now() + chrono::Duration::seconds(secs)
}

const LONG: &str = "Some customers cannot sign in because the session store is refusing \
    connections after a failover; we are moving traffic to the standby region, draining the \
    old primary and warming caches so that sign-ins recover without forcing anyone to log in \
    again, and we will keep this page updated as each step completes and the error rate falls \
    back to its usual level across every region we serve.";

// ---------------------------------------------------------------------------------------------
// Mastodon

fn mastodon_yaml(server: &MockServer) -> String {
    format!(
        "  masto: {{ type: mastodon, instance: \"{}\", access_token: \"masto-token\" }}\n",
        server.uri()
    )
}

async fn mount_instance(server: &MockServer, max: usize) {
    Mock::given(method("GET"))
        .and(path("/api/v2/instance"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "domain": "social.acme.test",
            "configuration": { "urls": {}, "statuses": {
                "max_characters": max, "max_media_attachments": 4,
                "characters_reserved_per_url": 23 } }
        })))
        .expect(1)
        .mount(server)
        .await;
}

fn status_json(id: usize) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": id.to_string(), "url": format!("https://social.acme.test/@acme/{id}"),
        "content": "<p>...</p>", "visibility": "public"
    }))
}

/// Statuses made, by Idempotency-Key.
type Made = Arc<Mutex<HashMap<String, usize>>>;

/// `POST /api/v1/statuses` honouring Idempotency-Key as Mastodon does: a key it has seen gets
/// the status it made then. The first sight of a key makes status `id` and answers `first`
/// (an answer that never arrives, in these tests), telling `arrived`.
async fn mount_idempotent_statuses(
    server: &MockServer,
    id: usize,
    first: ResponseTemplate,
    arrived: Arc<tokio::sync::Notify>,
) -> Made {
    let made: Made = Arc::default();
    let seen = made.clone();
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(move |r: &Request| {
            let key = r.headers["idempotency-key"].to_str().unwrap().to_string();
            let mut made = seen.lock().unwrap();
            match made.get(&key) {
                Some(id) => status_json(*id),
                None => {
                    made.insert(key, id);
                    arrived.notify_one();
                    first.clone()
                }
            }
        })
        .expect(2)
        .mount(server)
        .await;
    made
}

#[tokio::test]
async fn mastodon_posts_within_the_instance_limit_then_replies_in_the_thread() {
    let m = MockServer::start().await;
    mount_instance(&m, 200).await;
    let next = AtomicUsize::new(1000);
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .and(header("authorization", "Bearer masto-token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(move |_: &Request| status_json(next.fetch_add(1, Ordering::SeqCst) + 1))
        .expect(2)
        .mount(&m)
        .await;
    let t = app(mastodon_yaml(&m)).await;
    let id = declare(&t, LONG).await;
    t.dispatch_all().await;
    update(&t, id, "Sign-ins are recovering.").await;
    t.dispatch_all().await;

    let reqs = requests_to(&m, "/api/v1/statuses").await;
    let ds = deliveries_of(&t, "masto").await;
    assert_eq!((reqs.len(), ds.len()), (2, 2));
    let first = form_of(&reqs[0]);
    let status = &first["status"];
    // The instance's 200, with the link counted as 23: the body was cut at a word, the link kept.
    let counter = Counter::GraphemesShortLinks { url: 23 };
    assert!(counter.count(status) <= 200, "{status}");
    assert!(
        counter.count(status) > 150,
        "uses the room it has: {status}"
    );
    // The story was cut, never the estimate, the next-update line or the link.
    assert!(
        status.contains("…\n\nWe expect this fixed by Mon 23 Nov, 13:00 UTC. Next update by Mon 23 Nov, 12:30 UTC.")
            && status.ends_with(&format!("UTC.\n\n{}", incident_url(id))),
        "{status}"
    );
    assert!(status.starts_with("Investigating: Login failures"));
    assert!(!first.contains_key("in_reply_to_id"));
    assert_eq!(
        reqs[0].headers["idempotency-key"],
        format!("candor-delivery-{}-{}", ds[0].id, t0().timestamp_millis()).as_str()
    );
    assert_eq!(ds[0].remote_id.as_deref(), Some("1001"));
    assert_eq!(
        ds[0].remote_url.as_deref(),
        Some("https://social.acme.test/@acme/1001")
    );

    let reply = form_of(&reqs[1]);
    assert_eq!(reply["in_reply_to_id"], "1001");
    assert!(reply["status"].contains("Sign-ins are recovering."));
    assert_eq!(
        reqs[1].headers["idempotency-key"],
        format!("candor-delivery-{}-{}", ds[1].id, t0().timestamp_millis()).as_str()
    );
    assert_eq!(ds[1].remote_id.as_deref(), Some("1002"));
    t.finish().await;
}

#[tokio::test]
async fn mastodon_429_waits_for_retry_after_then_for_the_iso_8601_reset() {
    let m = MockServer::start().await;
    mount_instance(&m, 500).await;
    let t = app(mastodon_yaml(&m)).await;
    let limited = Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "120")
                .set_body_json(json!({ "error": "Too many requests" })),
        )
        .mount_as_scoped(&m)
        .await;
    declare(&t, "Some users cannot log in.").await;
    let r = t.dispatch_all().await;
    assert_eq!(r.retrying, 1);
    let d = &deliveries_of(&t, "masto").await[0];
    assert_eq!(d.next_attempt_at, Some(at(&t, 120)));
    assert!(d
        .last_error
        .as_deref()
        .unwrap()
        .contains("Too many requests"));
    drop(limited);

    // Mastodon's own header: X-RateLimit-Reset, an ISO 8601 time.
    t.advance(std::time::Duration::from_secs(120));
    let reset = at(&t, 300);
    let limited = Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-limit", "300")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header(
                    "x-ratelimit-reset",
                    reset
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                        .as_str(),
                )
                .set_body_json(json!({ "error": "Too many requests" })),
        )
        .mount_as_scoped(&m)
        .await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "masto").await[0];
    assert_eq!(d.next_attempt_at, Some(reset));
    drop(limited);

    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(status_json(7))
        .expect(1)
        .mount(&m)
        .await;
    t.advance(std::time::Duration::from_secs(299));
    assert_eq!(t.dispatch_all().await.claimed, 0, "not before the reset");
    t.advance(std::time::Duration::from_secs(1));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    assert_eq!(
        deliveries_of(&t, "masto").await[0].remote_id.as_deref(),
        Some("7")
    );
    t.finish().await;
}

#[tokio::test]
async fn mastodon_5xx_backs_off_instead_of_waiting_for_the_rate_limit_window() {
    let m = MockServer::start().await;
    mount_instance(&m, 500).await;
    let t = app(mastodon_yaml(&m)).await;
    // Mastodon sends its rate-limit headers on every answer; an hour-away reset on a 503 is
    // not a reason to wait an hour.
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("x-ratelimit-remaining", "299")
                .insert_header("x-ratelimit-reset", at(&t, 3600).to_rfc3339().as_str()),
        )
        .mount(&m)
        .await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "masto").await[0];
    assert!(d.next_attempt_at.unwrap() <= at(&t, 60), "{d:?}");
    t.expect_leftover("the instance keeps answering 503: the retry within a minute stays due");
    t.finish().await;
}

#[tokio::test]
async fn mastodon_422_is_dead_with_mastodons_words() {
    let m = MockServer::start().await;
    mount_instance(&m, 500).await;
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({ "error": "Validation failed: Text character limit of 500 exceeded" }),
        ))
        .expect(1)
        .mount(&m)
        .await;
    let t = app(mastodon_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.dead, 1);
    let d = &deliveries_of(&t, "masto").await[0];
    assert_eq!(d.state.as_str(), "dead");
    assert_eq!(
        d.last_error.as_deref(),
        Some("HTTP 422: Validation failed: Text character limit of 500 exceeded")
    );
    t.finish().await;
}

#[tokio::test]
async fn mastodon_retry_after_a_lost_answer_reuses_the_idempotency_key_and_posts_once() {
    let m = MockServer::start().await;
    mount_instance(&m, 500).await;
    // The first answer is lost on the way back (a 502 from a proxy after the post was made).
    let made = mount_idempotent_statuses(
        &m,
        4242,
        ResponseTemplate::new(502).set_body_string("Bad Gateway"),
        Arc::default(),
    )
    .await;
    let t = app(mastodon_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    t.advance(std::time::Duration::from_secs(600));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    let reqs = requests_to(&m, "/api/v1/statuses").await;
    assert_eq!(
        reqs[0].headers["idempotency-key"],
        reqs[1].headers["idempotency-key"]
    );
    assert_eq!(made.lock().unwrap().len(), 1, "one status was made");
    let d = &deliveries_of(&t, "masto").await[0];
    assert_eq!((d.attempts, d.remote_id.as_deref()), (2, Some("4242")));
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Bluesky

const DID: &str = "did:plc:acmestatus";

fn bluesky_yaml(server: &MockServer) -> String {
    format!(
        "  sky: {{ type: bluesky, service: \"{}\", identifier: \"acme.test\", app_password: \"abcd-efgh-ijkl-mnop\" }}\n",
        server.uri()
    )
}

fn session(access: &str, refresh: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "accessJwt": access, "refreshJwt": refresh, "handle": "acme.test", "did": DID
    }))
}

async fn mount_session(server: &MockServer, times: u64) {
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .and(body_json(
            json!({ "identifier": "acme.test", "password": "abcd-efgh-ijkl-mnop" }),
        ))
        .respond_with(session("access-1", "refresh-1"))
        .expect(times)
        .mount(server)
        .await;
}

/// A PDS's createRecord: the record lands under the key asked for.
fn created(r: &Request, n: usize) -> ResponseTemplate {
    let body = json_of(r);
    let rkey = body["rkey"].as_str().unwrap();
    ResponseTemplate::new(200).set_body_json(json!({
        "uri": format!("at://{DID}/app.bsky.feed.post/{rkey}"),
        "cid": format!("bafyreicid{n}"),
        "commit": { "cid": "bafyreicommit", "rev": "3l25zusnsfck2" },
        "validationStatus": "valid"
    }))
}

/// createRecord that stores the record under its key, tells `arrived`, and answers with
/// `answer(request)` (in these tests an answer that never arrives). Returns the store.
async fn mount_storing_create_record(
    server: &MockServer,
    answer: fn(&Request) -> ResponseTemplate,
    arrived: Arc<tokio::sync::Notify>,
) -> Stored {
    let stored: Stored = Arc::default();
    let s1 = stored.clone();
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .respond_with(move |r: &Request| {
            let body = json_of(r);
            s1.lock().unwrap().insert(
                body["rkey"].as_str().unwrap().into(),
                body["record"].clone(),
            );
            arrived.notify_one();
            answer(r)
        })
        .expect(1)
        .mount(server)
        .await;
    stored
}

/// Records stored by key, as the PDS keeps them.
type Stored = Arc<Mutex<HashMap<String, Value>>>;

/// A PDS's getRecord over `stored`: the record if an earlier createRecord stored it, else
/// `RecordNotFound`.
async fn mount_get_record(server: &MockServer, stored: Stored) {
    Mock::given(method("GET"))
        .and(path("/xrpc/com.atproto.repo.getRecord"))
        .and(query_param("repo", DID))
        .and(query_param("collection", "app.bsky.feed.post"))
        .and(header("authorization", "Bearer access-1"))
        .respond_with(move |r: &Request| {
            let rkey = r
                .url
                .query_pairs()
                .find(|(k, _)| k == "rkey")
                .unwrap()
                .1
                .to_string();
            match stored.lock().unwrap().get(&rkey) {
                Some(v) => ResponseTemplate::new(200).set_body_json(json!({
                    "uri": format!("at://{DID}/app.bsky.feed.post/{rkey}"),
                    "cid": "bafyreistored", "value": v
                })),
                None => ResponseTemplate::new(400).set_body_json(
                    json!({ "error": "RecordNotFound", "message": "Could not locate record" }),
                ),
            }
        })
        .expect(1)
        .mount(server)
        .await;
}

fn is_tid(s: &str) -> bool {
    s.len() == 13
        && s.bytes()
            .all(|b| b"234567abcdefghijklmnopqrstuvwxyz".contains(&b))
        && (b'2'..=b'j').contains(&s.as_bytes()[0])
}

#[tokio::test]
async fn bluesky_posts_with_a_link_facet_then_threads_with_root_and_parent() {
    let m = MockServer::start().await;
    mount_session(&m, 1).await;
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .and(header("authorization", "Bearer access-1"))
        .and(header("content-type", "application/json"))
        .respond_with(move |r: &Request| created(r, n.fetch_add(1, Ordering::SeqCst) + 1))
        .expect(3)
        .mount(&m)
        .await;
    let t = app(bluesky_yaml(&m)).await;
    let id = declare(&t, LONG).await;
    t.dispatch_all().await;
    update(&t, id, "Sign-ins are recovering.").await;
    t.dispatch_all().await;
    update(&t, id, "All regions are back to normal.").await;
    t.dispatch_all().await;

    let reqs = requests_to(&m, "/xrpc/com.atproto.repo.createRecord").await;
    assert_eq!(reqs.len(), 3);
    let bodies: Vec<Value> = reqs.iter().map(json_of).collect();
    let url = incident_url(id);
    let first = &bodies[0];
    assert_eq!(first["repo"], DID);
    assert_eq!(first["collection"], "app.bsky.feed.post");
    let rkeys: Vec<&str> = bodies.iter().map(|b| b["rkey"].as_str().unwrap()).collect();
    assert!(rkeys.iter().all(|k| is_tid(k)), "{rkeys:?}");
    assert!(rkeys[0] != rkeys[1] && rkeys[1] != rkeys[2]);
    let rec = &first["record"];
    assert_eq!(rec["$type"], "app.bsky.feed.post");
    assert_eq!(rec["createdAt"], "2026-11-23T12:00:00.000Z");
    let text = rec["text"].as_str().unwrap();
    assert!(Counter::Graphemes.count(text) <= 300, "{text}");
    assert!(
        text.contains("…\n\nWe expect this fixed by Mon 23 Nov, 13:00 UTC. Next update by Mon 23 Nov, 12:30 UTC.")
            && text.ends_with(&format!("UTC.\n\n{url}")),
        "{text}"
    );
    // The facet covers the link exactly, in UTF-8 bytes.
    let facet = &rec["facets"][0];
    let (s, e) = (
        facet["index"]["byteStart"].as_u64().unwrap() as usize,
        facet["index"]["byteEnd"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text.as_bytes()[s..e], url.as_bytes());
    assert_eq!(
        facet["features"][0],
        json!({ "$type": "app.bsky.richtext.facet#link", "uri": url })
    );
    assert!(rec.get("reply").is_none());

    let uri = |i: usize| format!("at://{DID}/app.bsky.feed.post/{}", rkeys[i]);
    let root = json!({ "uri": uri(0), "cid": "bafyreicid1" });
    assert_eq!(
        bodies[1]["record"]["reply"],
        json!({ "root": root, "parent": root })
    );
    assert_eq!(
        bodies[2]["record"]["reply"],
        json!({ "root": root, "parent": { "uri": uri(1), "cid": "bafyreicid2" } })
    );
    let ds = deliveries_of(&t, "sky").await;
    assert_eq!(
        ds[0].remote_url.as_deref(),
        Some(format!("https://bsky.app/profile/{DID}/post/{}", rkeys[0]).as_str())
    );
    t.finish().await;
}

#[tokio::test]
async fn bluesky_keeps_its_session_and_refreshes_it_when_it_expires() {
    let m = MockServer::start().await;
    mount_session(&m, 1).await;
    let n = Arc::new(AtomicUsize::new(0));
    let n1 = n.clone();
    let fresh = Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .and(header("authorization", "Bearer access-1"))
        .respond_with(move |r: &Request| created(r, n1.fetch_add(1, Ordering::SeqCst) + 1))
        .mount_as_scoped(&m)
        .await;
    let t = app(bluesky_yaml(&m)).await;
    let id = declare(&t, "Some users cannot log in.").await;
    update(&t, id, "Still working on it.").await;
    assert_eq!(
        t.dispatch_all().await.delivered,
        4,
        "two to the log, two posts"
    );
    drop(fresh);

    // The access token expires: refreshSession with the refresh token, then the new token.
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .and(header("authorization", "Bearer access-1"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({ "error": "ExpiredToken", "message": "Token has expired" })),
        )
        .expect(1)
        .mount(&m)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.refreshSession"))
        .and(header("authorization", "Bearer refresh-1"))
        .respond_with(session("access-2", "refresh-2"))
        .expect(1)
        .mount(&m)
        .await;
    let n2 = n.clone();
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .and(header("authorization", "Bearer access-2"))
        .respond_with(move |r: &Request| created(r, n2.fetch_add(1, Ordering::SeqCst) + 1))
        .expect(2)
        .mount(&m)
        .await;
    update(&t, id, "Fixed.").await;
    update(&t, id, "Really fixed.").await;
    t.dispatch_all().await;
    let ds = deliveries_of(&t, "sky").await;
    assert!(ds.iter().all(|d| d.state.as_str() == "delivered"), "{ds:?}");
    assert_eq!(ds.len(), 4);
    // createSession once in all (its .expect(1) is checked when the server drops).
    t.finish().await;
}

#[tokio::test]
async fn bluesky_429_waits_for_retry_after() {
    let m = MockServer::start().await;
    mount_session(&m, 1).await;
    let limited = Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "90")
                .insert_header("ratelimit-limit", "5000")
                .insert_header("ratelimit-remaining", "0")
                .set_body_json(
                    json!({ "error": "RateLimitExceeded", "message": "Rate Limit Exceeded" }),
                ),
        )
        .mount_as_scoped(&m)
        .await;
    let t = app(bluesky_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "sky").await[0];
    assert_eq!(d.next_attempt_at, Some(at(&t, 90)));
    assert!(d
        .last_error
        .as_deref()
        .unwrap()
        .contains("RateLimitExceeded: Rate Limit Exceeded"));
    drop(limited);
    // The retry asks first whether the refused attempt landed after all.
    Mock::given(method("GET"))
        .and(path("/xrpc/com.atproto.repo.getRecord"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({ "error": "RecordNotFound", "message": "Could not locate record" }),
        ))
        .expect(1)
        .mount(&m)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .respond_with(|r: &Request| created(r, 1))
        .expect(1)
        .mount(&m)
        .await;
    t.advance(std::time::Duration::from_secs(90));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    t.finish().await;
}

#[tokio::test]
async fn bluesky_bad_app_password_is_dead_with_the_servers_words() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "AuthenticationRequired", "message": "Invalid identifier or password"
        })))
        .expect(1)
        .mount(&m)
        .await;
    let t = app(bluesky_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.dead, 1);
    let d = &deliveries_of(&t, "sky").await[0];
    assert_eq!(
        d.last_error.as_deref(),
        Some("HTTP 401: createSession: AuthenticationRequired: Invalid identifier or password")
    );
    t.finish().await;
}

#[tokio::test]
async fn bluesky_retry_after_a_lost_answer_finds_the_record_and_posts_once() {
    let m = MockServer::start().await;
    mount_session(&m, 1).await;
    // The record is written, then the answer is lost.
    let stored = mount_storing_create_record(
        &m,
        |_| ResponseTemplate::new(502).set_body_string("Bad Gateway"),
        Arc::default(),
    )
    .await;
    mount_get_record(&m, stored.clone()).await;
    let t = app(bluesky_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    t.advance(std::time::Duration::from_secs(600));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    let rkey = stored.lock().unwrap().keys().next().unwrap().clone();
    let d = &deliveries_of(&t, "sky").await[0];
    assert_eq!(
        d.remote_id.as_deref(),
        Some(format!("at://{DID}/app.bsky.feed.post/{rkey} bafyreistored").as_str())
    );
    assert_eq!(d.attempts, 2);
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// X

fn x_yaml(server: &MockServer) -> String {
    format!(
        "  xcom: {{ type: x, api_url: \"{}\", consumer_key: \"ck-123\", consumer_secret: \"cs-456\", access_token: \"at-789\", access_token_secret: \"ats-000\" }}\n",
        server.uri()
    )
}

/// RFC 3986 percent-encoding, as OAuth 1.0a's "Percent encoding parameters" describes it.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn unpct(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Checks an `Authorization: OAuth ...` header the way X does: rebuild the signature base
/// string from the method, URL and oauth_* parameters (a JSON body is not signed) and compare
/// HMAC-SHA1 under "consumer_secret&token_secret".
fn assert_oauth_signed(r: &Request) {
    let h = r.headers["authorization"].to_str().unwrap();
    let params: HashMap<String, String> = h
        .strip_prefix("OAuth ")
        .expect("OAuth scheme")
        .split(',')
        .map(|p| {
            let (k, v) = p.trim().split_once('=').unwrap();
            (k.to_string(), unpct(v.trim_matches('"')))
        })
        .collect();
    assert_eq!(params["oauth_consumer_key"], "ck-123");
    assert_eq!(params["oauth_token"], "at-789");
    assert_eq!(params["oauth_signature_method"], "HMAC-SHA1");
    assert_eq!(params["oauth_version"], "1.0");
    assert!(params["oauth_nonce"].len() >= 8);
    params["oauth_timestamp"].parse::<u64>().unwrap();
    let mut signed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| *k != "oauth_signature")
        .map(|(k, v)| (pct(k), pct(v)))
        .collect();
    signed.sort();
    let param_string = signed
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    // The URL the client signed: scheme, the Host it sent, the path (wiremock's own `url`
    // names its host differently).
    let base_url = format!(
        "http://{}{}",
        r.headers["host"].to_str().unwrap(),
        r.url.path()
    );
    let base = format!("POST&{}&{}", pct(&base_url), pct(&param_string));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"cs-456&ats-000").unwrap();
    mac.update(base.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(params["oauth_signature"], expected, "base string: {base}");
}

/// X's 403 as the API v2 writes it (RFC 7807 problem details).
fn x_forbidden(detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(403).set_body_json(json!({
        "detail": detail, "type": "about:blank", "title": "Forbidden", "status": 403
    }))
}

fn tweet(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "data": { "id": id, "text": "...", "edit_history_tweet_ids": [id] }
    }))
}

#[tokio::test]
async fn x_posts_a_signed_tweet_within_280_weighted_then_replies() {
    let m = MockServer::start().await;
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(header("content-type", "application/json"))
        .respond_with(move |_: &Request| {
            tweet(&format!(
                "18000000000000000{}",
                n.fetch_add(1, Ordering::SeqCst)
            ))
        })
        .expect(2)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    let id = declare(&t, LONG).await;
    t.dispatch_all().await;
    update(&t, id, "Sign-ins are recovering.").await;
    t.dispatch_all().await;

    let reqs = requests_to(&m, "/2/tweets").await;
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_oauth_signed(r);
    }
    let first = json_of(&reqs[0]);
    let text = first["text"].as_str().unwrap();
    assert!(Counter::Weighted.count(text) <= 280, "{text}");
    assert!(Counter::Weighted.count(text) > 240, "{text}");
    assert!(
        text.contains("…\n\nWe expect this fixed by Mon 23 Nov, 13:00 UTC. Next update by Mon 23 Nov, 12:30 UTC.")
            && text.ends_with(&format!("UTC.\n\n{}", incident_url(id))),
        "{text}"
    );
    assert_eq!(first.as_object().unwrap().len(), 1, "text only: {first}");
    let reply = json_of(&reqs[1]);
    assert_eq!(
        reply["reply"],
        json!({ "in_reply_to_tweet_id": "180000000000000000" })
    );
    let ds = deliveries_of(&t, "xcom").await;
    assert_eq!(ds[0].remote_id.as_deref(), Some("180000000000000000"));
    assert_eq!(
        ds[0].remote_url.as_deref(),
        Some("https://x.com/i/web/status/180000000000000000")
    );
    t.finish().await;
}

#[tokio::test]
async fn x_429_waits_for_retry_after_then_for_the_reset_time() {
    let m = MockServer::start().await;
    let t = app(x_yaml(&m)).await;
    let limited = Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "45")
                .set_body_json(json!({ "title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429 })),
        )
        .mount_as_scoped(&m)
        .await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    assert_eq!(
        deliveries_of(&t, "xcom").await[0].next_attempt_at,
        Some(at(&t, 45))
    );
    drop(limited);
    t.advance(std::time::Duration::from_secs(45));
    let reset = at(&t, 900);
    let limited = Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-rate-limit-limit", "100")
                .insert_header("x-rate-limit-remaining", "0")
                .insert_header("x-rate-limit-reset", reset.timestamp().to_string().as_str())
                .set_body_json(json!({ "title": "Too Many Requests", "status": 429 })),
        )
        .mount_as_scoped(&m)
        .await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    assert_eq!(
        deliveries_of(&t, "xcom").await[0].next_attempt_at,
        Some(reset)
    );
    drop(limited);
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(tweet("1"))
        .expect(1)
        .mount(&m)
        .await;
    t.clock.set(reset);
    assert_eq!(t.dispatch_all().await.delivered, 1);
    t.finish().await;
}

#[tokio::test]
async fn x_403_on_a_first_attempt_is_dead_with_xs_words() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(x_forbidden("You are not permitted to perform this action."))
        .expect(1)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.dead, 1);
    assert_eq!(
        deliveries_of(&t, "xcom").await[0].last_error.as_deref(),
        Some("HTTP 403: Forbidden: You are not permitted to perform this action.")
    );
    t.finish().await;
}

#[tokio::test]
async fn x_duplicate_refusal_on_a_retry_counts_as_already_posted() {
    let m = MockServer::start().await;
    // The first attempt posted, but its answer was lost.
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&m)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(x_forbidden(
            "You are not allowed to create a Tweet with duplicate content.",
        ))
        .with_priority(2)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    t.advance(std::time::Duration::from_secs(600));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    let d = &deliveries_of(&t, "xcom").await[0];
    assert_eq!((d.state.as_str(), d.attempts), ("delivered", 2));
    assert_eq!(
        requests_to(&m, "/2/tweets").await.len(),
        2,
        "posted once, asked twice"
    );
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Slack and Discord incoming webhooks

fn slack_yaml(server: &MockServer) -> String {
    format!(
        "  team: {{ type: slack, webhook_url: \"{}/services/T0001/B0001/XXXXXXXX\" }}\n",
        server.uri()
    )
}

#[tokio::test]
async fn slack_posts_escaped_text_and_backs_off_on_429() {
    let m = MockServer::start().await;
    let limited = Mock::given(method("POST"))
        .and(path("/services/T0001/B0001/XXXXXXXX"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_string("rate_limited"),
        )
        .mount_as_scoped(&m)
        .await;
    let t = app(slack_yaml(&m)).await;
    let id = t
        .declare(json!({ "title": "Login <failures> & timeouts", "impact": "minor",
                         "message": "Some users cannot log in.", "components": { "web": "degraded_performance" } }))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "team").await[0];
    assert_eq!(d.next_attempt_at, Some(at(&t, 30)));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 429: rate_limited"));
    drop(limited);
    Mock::given(method("POST"))
        .and(path("/services/T0001/B0001/XXXXXXXX"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&m)
        .await;
    t.advance(std::time::Duration::from_secs(30));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    let reqs = requests_to(&m, "/services/T0001/B0001/XXXXXXXX").await;
    let body = json_of(reqs.last().unwrap());
    assert_eq!(body.as_object().unwrap().len(), 1);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("Investigating: Login &lt;failures&gt; &amp; timeouts"),
        "{text}"
    );
    assert!(text.ends_with(&incident_url(id)));
    t.finish().await;
}

#[tokio::test]
async fn slack_refusal_is_dead_with_slacks_error_word() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .expect(1)
        .mount(&m)
        .await;
    let t = app(slack_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.dead, 1);
    assert_eq!(
        deliveries_of(&t, "team").await[0].last_error.as_deref(),
        Some("HTTP 404: no_service")
    );
    t.finish().await;
}

fn discord_yaml(server: &MockServer) -> String {
    format!(
        "  disc: {{ type: discord, webhook_url: \"{}/api/webhooks/1234567890/tok-en\" }}\n",
        server.uri()
    )
}

#[tokio::test]
async fn discord_waits_for_the_message_and_keeps_its_id() {
    let m = MockServer::start().await;
    let limited = Mock::given(method("POST"))
        .and(path("/api/webhooks/1234567890/tok-en"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .insert_header("x-ratelimit-reset-after", "1.5")
                .set_body_json(json!({ "message": "You are being rate limited.", "retry_after": 1.5, "global": false })),
        )
        .mount_as_scoped(&m)
        .await;
    let t = app(discord_yaml(&m)).await;
    let id = declare(&t, "Some users cannot log in. @everyone").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "disc").await[0];
    assert_eq!(d.next_attempt_at, Some(at(&t, 2)));
    assert_eq!(
        d.last_error.as_deref(),
        Some("HTTP 429: You are being rate limited.")
    );
    drop(limited);
    Mock::given(method("POST"))
        .and(path("/api/webhooks/1234567890/tok-en"))
        .and(query_param("wait", "true"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "1180000000000000001", "type": 0, "channel_id": "99", "content": "..."
        })))
        .expect(1)
        .mount(&m)
        .await;
    t.advance(std::time::Duration::from_secs(2));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    let reqs = requests_to(&m, "/api/webhooks/1234567890/tok-en").await;
    let body = json_of(reqs.last().unwrap());
    assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
    let content = body["content"].as_str().unwrap();
    assert!(content.contains("@everyone") && content.ends_with(&incident_url(id)));
    assert_eq!(
        deliveries_of(&t, "disc").await[0].remote_id.as_deref(),
        Some("1180000000000000001")
    );
    t.finish().await;
}

#[tokio::test]
async fn discord_unknown_webhook_is_dead_with_discords_words() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({ "message": "Unknown Webhook", "code": 10015 })),
        )
        .expect(1)
        .mount(&m)
        .await;
    let t = app(discord_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.dead, 1);
    assert_eq!(
        deliveries_of(&t, "disc").await[0].last_error.as_deref(),
        Some("HTTP 404: Unknown Webhook")
    );
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Standard Webhooks

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn signed_webhooks_verify_as_a_receiver_checks_them_and_keep_their_id_across_retries() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/signed"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&m)
        .await;
    Mock::given(method("POST"))
        .and(path("/signed"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&m)
        .await;
    let t = app(format!(
        "  signed: {{ type: webhook, url: \"{}/signed\", signing_secret: \"{WHSEC}\" }}\n",
        m.uri()
    ))
    .await;
    // A receiver refuses timestamps more than five minutes from its own clock: send at the
    // real time.
    t.clock.set(SystemClock.now());
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    t.advance(std::time::Duration::from_secs(60));
    assert_eq!(t.dispatch_all().await.delivered, 1);

    let reqs = requests_to(&m, "/signed").await;
    assert_eq!(reqs.len(), 2);
    let receiver = standardwebhooks::Webhook::new(WHSEC).unwrap();
    let d = &deliveries_of(&t, "signed").await[0];
    for r in &reqs {
        receiver
            .verify(&r.body, &r.headers)
            .expect("the receiver accepts the signature");
        assert_eq!(
            r.headers["webhook-id"],
            format!("candor-delivery-{}", d.id).as_str()
        );
        let mut tampered = r.body.clone();
        tampered.push(b' ');
        assert!(receiver.verify(&tampered, &r.headers).is_err());
    }
    let ts = |r: &Request| {
        r.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert_eq!(
        ts(&reqs[1]) - ts(&reqs[0]),
        60,
        "each attempt signs its own time"
    );
    let other = standardwebhooks::Webhook::new("whsec_QWFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB").unwrap();
    assert!(other.verify(&reqs[0].body, &reqs[0].headers).is_err());
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Filters and configuration

#[tokio::test]
async fn channels_limited_by_impact_or_component_get_only_those_incidents() {
    let t = spawn_app_with(Options {
        extra_channels: Some(
            "  crit: { type: log, path: \"/dev/null\", only: { impacts: [critical] } }\n  \
             webonly: { type: log, path: \"/dev/null\", only: { components: [web] } }\n"
                .into(),
        ),
        ..Default::default()
    })
    .await;
    t.declare(
        json!({ "title": "Slow API", "impact": "major", "message": "Slow.",
                      "components": { "api": "degraded_performance" } }),
    )
    .await;
    assert!(deliveries_of(&t, "crit").await.is_empty());
    assert!(deliveries_of(&t, "webonly").await.is_empty());
    assert_eq!(deliveries_of(&t, "log").await.len(), 1);
    t.declare(
        json!({ "title": "Site down", "impact": "critical", "message": "Down.",
                      "components": { "web": "major_outage" } }),
    )
    .await;
    assert_eq!(deliveries_of(&t, "crit").await.len(), 1);
    assert_eq!(deliveries_of(&t, "webonly").await.len(), 1);
    t.dispatch_all().await;
    t.finish().await;
}

#[test]
fn channel_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = config_yaml(&dir, "sqlite://x.db", None, None);
    let cases = [
        (
            "  c: { type: log, only: { components: [nope] } }\n",
            "channels.c.only.components[0]",
        ),
        (
            "  c: { type: webhook, url: \"https://h.test\", signing_secret: \"not-whsec\" }\n",
            "channels.c.signing_secret",
        ),
        (
            "  c: { type: mastodon, instance: \"https://m.test\", access_token: \"\" }\n",
            "channels.c.access_token",
        ),
        (
            "  c: { type: discord, webhook_url: \"not a url\" }\n",
            "channels.c.webhook_url",
        ),
        (
            "  c: { type: bluesky, identifier: \"a.test\" }\n",
            "app_password",
        ),
    ];
    for (entry, key) in cases {
        let yaml = base.replace("channels:\n  log:", &format!("channels:\n{entry}  log:"));
        let err = candor::config::Config::from_yaml_with_env(
            &yaml,
            &candor::config::Overrides::default(),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(key), "{entry}: {err}");
        assert!(
            !err.contains("not a url"),
            "webhook URLs are secrets: {err}"
        );
    }
}

#[tokio::test]
async fn channel_test_command_sends_once_and_fails_loudly() {
    let m = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&dir, "sqlite://unused.db", None, None).replace(
        "channels:\n  log:",
        &format!("channels:\n{}  log:", discord_yaml(&m)),
    );
    let cfg = dir.path().join("candor.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let run = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
            .args(["--config", cfg.to_str().unwrap(), "channel", "test", "disc"])
            .env_remove("DATABASE_URL")
            .output()
            .await
            .unwrap()
    };
    let ok = Mock::given(method("POST"))
        .and(path("/api/webhooks/1234567890/tok-en"))
        .and(query_param("wait", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "777" })))
        .expect(1)
        .mount_as_scoped(&m)
        .await;
    let out = run().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("remote id: 777"), "{stdout}");
    assert!(stdout.contains("Test of the disc channel"), "{stdout}");
    drop(ok);

    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({ "message": "401: Unauthorized", "code": 0 })),
        )
        .mount(&m)
        .await;
    let out = run().await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401: Unauthorized"), "{stderr}");
    assert!(
        !stderr.contains("tok-en"),
        "the webhook URL is a secret: {stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// A worker killed mid-send: the remote has the post, the worker never heard back, its lease
// runs out and the delivery is taken over.

/// Runs one outbox pass in a task, waits until `arrived` says the remote has the request, then
/// kills the task (as a SIGKILL would the worker) and lets the lease run out.
async fn kill_mid_send(t: &TestApp, channel: &str, arrived: Arc<tokio::sync::Notify>) {
    let outbox = t.app.outbox();
    let worker = tokio::spawn(async move { outbox.drain().await });
    arrived.notified().await;
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    let d = &deliveries_of(t, channel).await[0];
    assert_eq!(
        (d.state.as_str(), d.attempts),
        ("in_flight", 1),
        "owner gone"
    );
    t.advance(std::time::Duration::from_secs(61)); // past the 60 s lease
}

#[tokio::test]
async fn bluesky_worker_killed_mid_send_is_taken_over_without_a_second_post() {
    let m = MockServer::start().await;
    mount_session(&m, 1).await;
    let arrived = Arc::new(tokio::sync::Notify::new());
    // The record is committed; the answer never gets back.
    let stored = mount_storing_create_record(
        &m,
        |r| created(r, 1).set_delay(std::time::Duration::from_secs(3600)),
        arrived.clone(),
    )
    .await;
    mount_get_record(&m, stored.clone()).await;
    let t = app(bluesky_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    kill_mid_send(&t, "sky", arrived).await;
    t.dispatch_all().await;
    let d = &deliveries_of(&t, "sky").await[0];
    assert_eq!((d.state.as_str(), d.attempts), ("delivered", 2));
    assert!(d.remote_id.as_deref().unwrap().ends_with(" bafyreistored"));
    assert_eq!(stored.lock().unwrap().len(), 1, "one post");
    t.finish().await;
}

#[tokio::test]
async fn mastodon_worker_killed_mid_send_is_taken_over_under_the_same_idempotency_key() {
    let m = MockServer::start().await;
    mount_instance(&m, 500).await;
    let arrived = Arc::new(tokio::sync::Notify::new());
    let made = mount_idempotent_statuses(
        &m,
        5151,
        status_json(5151).set_delay(std::time::Duration::from_secs(3600)),
        arrived.clone(),
    )
    .await;
    let t = app(mastodon_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    kill_mid_send(&t, "masto", arrived).await;
    t.dispatch_all().await;
    let d = &deliveries_of(&t, "masto").await[0];
    assert_eq!(
        (d.state.as_str(), d.attempts, d.remote_id.as_deref()),
        ("delivered", 2, Some("5151"))
    );
    assert_eq!(made.lock().unwrap().len(), 1, "one status");
    t.finish().await;
}

#[tokio::test]
async fn x_worker_killed_mid_send_is_taken_over_and_the_duplicate_refusal_ends_it() {
    let m = MockServer::start().await;
    let arrived = Arc::new(tokio::sync::Notify::new());
    let a1 = arrived.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let c1 = calls.clone();
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(move |_: &Request| {
            if c1.fetch_add(1, Ordering::SeqCst) == 0 {
                a1.notify_one();
                tweet("1").set_delay(std::time::Duration::from_secs(3600))
            } else {
                x_forbidden("You are not allowed to create a Tweet with duplicate content.")
            }
        })
        .expect(2)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    kill_mid_send(&t, "xcom", arrived).await;
    t.dispatch_all().await;
    let d = &deliveries_of(&t, "xcom").await[0];
    assert_eq!((d.state.as_str(), d.attempts), ("delivered", 2));
    t.finish().await;
}

#[tokio::test]
async fn a_platform_that_does_not_answer_in_time_is_retried() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "1" }))
                .set_delay(std::time::Duration::from_secs(3600)),
        )
        .mount(&m)
        .await;
    let t = app(format!(
        "  disc: {{ type: discord, webhook_url: \"{}/api/webhooks/1/t\", limits: {{ timeout: 200ms }} }}\n",
        m.uri()
    ))
    .await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "disc").await[0];
    assert_eq!(d.state.as_str(), "pending");
    assert!(
        d.last_error.as_deref().unwrap().contains("timed out"),
        "{d:?}"
    );
    t.expect_leftover("the platform never answers: the retry stays pending");
    t.finish().await;
}
