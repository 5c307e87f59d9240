//! The outbox: nothing lost, failing channels back off alone, errors classified.

use std::sync::Arc;
use std::time::Duration;

use candor::store::deliveries;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

fn body() -> Value {
    json!({ "title": "Login failures", "impact": "major", "message": "Some users cannot log in.",
            "components": { "web": "partial_outage" }, "eta_in": "1h" })
}

async fn hook_deliveries(t: &TestApp) -> Vec<deliveries::Delivery> {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let mut all = Vec::new();
    let list: Value = t
        .get("/api/v1/incidents?state=all")
        .await
        .json()
        .await
        .unwrap();
    for i in list["incidents"].as_array().unwrap() {
        all.extend(
            deliveries::for_incident(&mut conn, i["id"].as_i64().unwrap())
                .await
                .unwrap()
                .into_iter()
                .filter(|d| d.channel == "hook"),
        );
    }
    all.sort_by_key(|d| d.id);
    all
}

#[tokio::test]
async fn the_webhook_channel_sends_the_documented_request() {
    let t = spawn_app_with(Options {
        webhook: true,
        ..Default::default()
    })
    .await;
    let mock = t.mock.as_ref().unwrap();
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("authorization", "Bearer s3cret-token"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(mock)
        .await;
    let id = t.declare(body()).await["id"].as_i64().unwrap();
    let report = t.dispatch_all().await;
    assert_eq!(report.delivered, 2); // log + hook
    let reqs = mock.received_requests().await.unwrap();
    let d = &hook_deliveries(&t).await[0];
    assert_eq!(
        reqs[0].headers["idempotency-key"],
        format!("candor-delivery-{}", d.id).as_str()
    );
    let sent: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(sent["message"]["incident_id"], id);
    assert_eq!(
        sent["message"]["eta_line"],
        "We expect this fixed by Mon 23 Nov, 13:00 UTC."
    );
    assert!(sent["text"].as_str().unwrap().contains("Login failures"));
    t.finish().await;
}

#[tokio::test]
async fn a_failing_channel_backs_off_while_the_log_channel_keeps_delivering() {
    let t = spawn_app_with(Options {
        webhook: true,
        ..Default::default()
    })
    .await;
    let mock = t.mock.as_ref().unwrap();
    let down = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream unavailable"))
        .mount_as_scoped(mock)
        .await;

    let a = t.declare(body()).await["id"].as_i64().unwrap();
    let report = t.dispatch_all().await;
    assert_eq!(report.delivered, 1, "the log channel delivered");
    assert_eq!(report.retrying, 1, "the webhook will retry");
    assert_eq!(t.public_log().len(), 1);
    let d = &hook_deliveries(&t).await[0];
    assert_eq!(d.state.as_str(), "pending");
    assert_eq!(d.attempts, 1);
    assert!(
        d.last_error.as_deref().unwrap().contains("HTTP 503"),
        "{:?}",
        d.last_error
    );
    // First retry after backoff_min (10s) with jitter: between 10s and 20s.
    let wait = (d.next_attempt_at.unwrap() - t0()).num_milliseconds();
    assert!(
        (10_000..=20_000).contains(&wait),
        "first backoff was {wait} ms"
    );

    // While it backs off, new updates still reach the log channel at once.
    t.advance(Duration::from_secs(5));
    let b = t.declare(body()).await["id"].as_i64().unwrap();
    let report = t.dispatch_all().await;
    assert_eq!(report.delivered, 1);
    assert_eq!(t.public_log().len(), 2);
    assert_eq!(
        mock.received_requests().await.unwrap().len(),
        2,
        "b tried once; a is still waiting"
    );

    // After the backoff, another attempt, and a longer wait.
    t.advance(Duration::from_secs(20));
    t.dispatch_all().await;
    let d = &hook_deliveries(&t).await[0];
    assert_eq!(d.attempts, 2);
    let second_wait = (d.next_attempt_at.unwrap() - t.clock_now()).num_milliseconds();
    assert!(
        (20_000..=40_000).contains(&second_wait),
        "second backoff was {second_wait} ms"
    );

    // The channel recovers: everything queued is delivered, each incident in order.
    drop(down);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(mock)
        .await;
    t.advance(Duration::from_secs(60));
    t.dispatch_all().await;
    let ds = hook_deliveries(&t).await;
    assert!(ds.iter().all(|d| d.state.as_str() == "delivered"), "{ds:?}");
    assert_eq!(
        ds.iter()
            .filter(|d| d.state.as_str() == "delivered")
            .count(),
        2
    );
    let _ = (a, b);
    t.finish().await;
}

#[tokio::test]
async fn retry_after_from_the_remote_is_honoured() {
    let t = spawn_app_with(Options {
        webhook: true,
        ..Default::default()
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(t.mock.as_ref().unwrap())
        .await;
    t.declare(body()).await;
    t.dispatch_all().await;
    let d = &hook_deliveries(&t).await[0];
    assert_eq!(
        d.next_attempt_at.unwrap(),
        t0() + chrono::Duration::seconds(120)
    );
    assert!(d.last_error.as_deref().unwrap().contains("429"));
    // Not before then.
    t.advance(Duration::from_secs(119));
    assert_eq!(t.dispatch_all().await.claimed, 0);
    assert_eq!(t.unfinished_deliveries().await, 1);
    t.expect_leftover("the remote asked for 120 s and only 119 s have passed");
    t.finish().await;
}

#[tokio::test]
async fn a_permanent_error_parks_the_delivery_as_dead_and_attempts_are_bounded() {
    let t = spawn_app_with(Options {
        webhook: true,
        outbox: Some("lease: 60s, max_attempts: 3, backoff_min: 1s, backoff_max: 4s".into()),
        ..Default::default()
    })
    .await;
    let mock = t.mock.as_ref().unwrap();
    let rejected = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad payload"))
        .mount_as_scoped(mock)
        .await;
    t.declare(body()).await;
    t.dispatch_all().await;
    let d = &hook_deliveries(&t).await[0];
    assert_eq!(d.state.as_str(), "dead");
    assert_eq!(d.attempts, 1, "a permanent error is not retried");
    assert!(d.last_error.as_deref().unwrap().contains("HTTP 400"));
    drop(rejected);

    // Retryable errors give up after max_attempts.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(mock)
        .await;
    t.declare(body()).await;
    for _ in 0..5 {
        t.dispatch_all().await;
        t.advance(Duration::from_secs(10));
    }
    let d = &hook_deliveries(&t).await[1];
    assert_eq!(d.state.as_str(), "dead");
    assert_eq!(d.attempts, 3);
    assert!(d
        .last_error
        .as_deref()
        .unwrap()
        .contains("gave up after 3 attempts"));
    t.finish().await;
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_loses_nothing_and_the_delivery_is_retried() {
    let hanging = Arc::new(HangingChannel {
        id: "hook".into(),
        started: Default::default(),
    });
    let t = spawn_app_with(Options {
        webhook: true,
        channels: vec![hanging.clone()],
        ..Default::default()
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(t.mock.as_ref().unwrap())
        .await;
    t.declare(body()).await;

    // A worker claims the delivery and is killed while sending it.
    let outbox = t.app.outbox();
    let worker = tokio::spawn(async move { outbox.drain().await });
    hanging.started.notified().await;
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    let d = &hook_deliveries(&t).await[0];
    assert_eq!(d.state.as_str(), "in_flight");
    assert_eq!(d.attempts, 1);

    // Its lease still holds: nobody else may send it yet.
    let survivor = t.another_instance(vec![]).await;
    survivor.outbox().drain().await.unwrap();
    let d = &hook_deliveries(&t).await[0];
    assert_eq!((d.state.as_str(), d.attempts), ("in_flight", 1));
    assert!(t
        .mock
        .as_ref()
        .unwrap()
        .received_requests()
        .await
        .unwrap()
        .is_empty());

    // Once the lease (60s) expires, another instance takes it over and delivers it.
    t.advance(Duration::from_secs(61));
    // (The killed worker's log lane was cut off too, so its line may be written again: the
    // outbox delivers at least once, and the webhook's Idempotency-Key lets a remote dedupe.)
    let report = survivor.outbox().drain().await.unwrap();
    assert!(report.delivered >= 1, "{report:?}");
    let d = &hook_deliveries(&t).await[0];
    assert_eq!(d.state.as_str(), "delivered");
    assert_eq!(d.attempts, 2);
    t.finish().await;
}

#[tokio::test]
async fn a_channel_publishes_one_incidents_updates_in_order() {
    let t = spawn_app_with(Options {
        webhook: true,
        ..Default::default()
    })
    .await;
    let mock = t.mock.as_ref().unwrap();
    let down = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(mock)
        .await;
    let id = t.declare(body()).await["id"].as_i64().unwrap();
    t.dispatch_all().await; // first update fails and waits
    for n in 1..=3 {
        t.post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": format!("Update {n}") }),
        )
        .await;
    }
    t.dispatch_all().await;
    // Later updates wait behind the first; none overtook it.
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
    drop(down);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(mock)
        .await;
    t.advance(Duration::from_secs(60));
    t.dispatch_all().await;
    let bodies: Vec<String> = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .skip(1)
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["message"]["body"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        bodies,
        vec![
            "Some users cannot log in.",
            "Update 1",
            "Update 2",
            "Update 3"
        ]
    );
    t.finish().await;
}
