//! Mastodon: statuses within the instance's own limit, threads, its rate-limit headers,
//! its refusals, and Idempotency-Key across retries and a killed worker.

use super::*;

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

/// Servers older than Mastodon 4.0 (and Pleroma, Akkoma, GoToSocial's older releases) have no
/// `GET /api/v2/instance`: it answers 404. That used to fail every post for good. The limit is
/// then read from `GET /api/v1/instance` (`configuration.statuses.max_characters` on Mastodon
/// 3.x, `max_toot_chars` on Pleroma and its kin), and failing that taken as Mastodon's 500.
#[tokio::test]
async fn mastodon_without_api_v2_instance_reads_v1_then_assumes_500() {
    let v1_mastodon = json!({
        "uri": "social.acme.test", "version": "3.5.3",
        "configuration": { "statuses": {
            "max_characters": 300, "max_media_attachments": 4, "characters_reserved_per_url": 23 } }
    });
    let v1_pleroma = json!({ "uri": "https://social.acme.test", "version": "2.7.2 (compatible; Pleroma 2.5.0)",
                             "max_toot_chars": 300 });
    let not_found =
        || ResponseTemplate::new(404).set_body_json(json!({ "error": "Record not found" }));
    let cases = [
        (ResponseTemplate::new(200).set_body_json(v1_mastodon), 300),
        (ResponseTemplate::new(200).set_body_json(v1_pleroma), 300),
        (not_found(), 500),
    ];
    for (v1, limit) in cases {
        let m = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v2/instance"))
            .respond_with(not_found())
            .expect(1)
            .mount(&m)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/instance"))
            .respond_with(v1)
            .expect(1)
            .mount(&m)
            .await;
        let next = AtomicUsize::new(1);
        Mock::given(method("POST"))
            .and(path("/api/v1/statuses"))
            .and(header("authorization", "Bearer masto-token"))
            .respond_with(move |_: &Request| status_json(next.fetch_add(1, Ordering::SeqCst)))
            .expect(2)
            .mount(&m)
            .await;
        let t = app(mastodon_yaml(&m)).await;
        let id = declare(&t, &format!("{LONG} {LONG}")).await;
        assert_eq!(
            t.dispatch_all().await.delivered,
            2,
            "limit {limit}: here and in the log"
        );
        update(&t, id, "Sign-ins are recovering.").await;
        assert_eq!(t.dispatch_all().await.delivered, 2, "asked once, then kept");
        let reqs = requests_to(&m, "/api/v1/statuses").await;
        let status = &form_of(&reqs[0])["status"];
        let counter = Counter::GraphemesShortLinks { url: 23 };
        assert!(counter.count(status) <= limit, "{limit}: {status}");
        assert!(counter.count(status) > limit - 50, "{limit}: {status}");
        assert_eq!(form_of(&reqs[1])["in_reply_to_id"], "1");
        t.finish().await;
    }
}
