//! Bluesky: link facets, threads by root and parent, the session and its refresh, 429s,
//! refusals, and a retry or a killed worker that finds the record already made.

use super::*;

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
