//! Staying up when parts fail: rate limits across instances, panics in channels and loops,
//! long outages of a remote, freshness across instances.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use candor::channels::{Channel, DeliveryContext, Message, SendError, Sent};
use candor::commands::{self, Actor, PostUpdate};
use candor::store::deliveries;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

fn incident(n: usize) -> Value {
    json!({ "title": format!("Incident {n}"), "impact": "major", "message": format!("Message {n}"),
            "components": { "web": "partial_outage" } })
}

async fn channel_deliveries(t: &TestApp, channel: &str) -> Vec<deliveries::Delivery> {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let list: Value = t
        .get("/api/v1/incidents?state=all")
        .await
        .json()
        .await
        .unwrap();
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

#[tokio::test]
async fn three_instances_on_a_rate_limited_channel_post_each_delivery_exactly_once() {
    let remote = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&remote)
        .await;
    let t = spawn_app_with(Options {
        extra_channels: Some(format!(
            "  slow: {{ type: webhook, url: \"{}/slow\", limits: {{ per_minute: 2, concurrency: 4 }} }}\n",
            remote.uri()
        )),
        ..Default::default()
    })
    .await;
    for n in 0..10 {
        t.declare(incident(n)).await;
    }
    // Three instances, each with its own workers (and its own limiter, kept across passes).
    let b = t.another_instance(vec![]).await;
    let c = t.another_instance(vec![]).await;
    let outboxes = [
        Arc::new(t.app.outbox()),
        Arc::new(b.outbox()),
        Arc::new(c.outbox()),
    ];
    let mut sent_per_round = Vec::new();
    for _round in 0..20 {
        let before = remote.received_requests().await.unwrap().len();
        let passes = futures::future::join_all(outboxes.iter().map(|o| o.drain()));
        // A pass takes its permits before it claims: it never sits on a lease waiting for
        // the limit (which is how a lease ran out and a second instance posted again).
        let results = tokio::time::timeout(Duration::from_secs(10), passes)
            .await
            .expect("a pass never waits for the rate limit while holding deliveries");
        for r in results {
            r.unwrap();
        }
        sent_per_round.push(remote.received_requests().await.unwrap().len() - before);
        if t.unfinished_deliveries().await == 0 {
            break;
        }
        t.advance(Duration::from_secs(30));
    }
    t.assert_outbox_empty().await;
    let requests = remote.received_requests().await.unwrap();
    assert_eq!(
        requests.len(),
        10,
        "one request per delivery: {sent_per_round:?}"
    );
    let mut keys: Vec<String> = requests
        .iter()
        .map(|r| r.headers["idempotency-key"].to_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10, "no delivery was posted twice");
    // Each instance: a burst of two, then one every 30 s.
    assert_eq!(sent_per_round[0], 6, "{sent_per_round:?}");
    assert!(
        sent_per_round[1..].iter().all(|n| *n <= 3),
        "{sent_per_round:?}"
    );
    let ds = channel_deliveries(&t, "slow").await;
    assert!(ds.iter().all(|d| d.attempts == 1), "{ds:?}");
    t.finish().await;
}

/// Panics on its first send, then delivers.
struct PanicsOnce {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Channel for PanicsOnce {
    fn id(&self) -> &str {
        "hook"
    }
    async fn deliver(&self, _msg: &Message, _ctx: &DeliveryContext) -> Result<Sent, SendError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("index out of bounds in the hook channel");
        }
        Ok(Sent::default())
    }
}

#[tokio::test]
async fn a_channel_that_panics_fails_that_delivery_and_the_lane_goes_on() {
    let ch = Arc::new(PanicsOnce {
        calls: AtomicUsize::new(0),
    });
    let t = spawn_app_with(Options {
        webhook: true,
        channels: vec![ch.clone()],
        ..Default::default()
    })
    .await;
    t.declare(incident(1)).await;
    t.declare(incident(2)).await;
    let report = t.dispatch_all().await;
    assert_eq!(report.retrying, 1, "{report:?}");
    // The two deliveries go out concurrently: either may be the one that met the panic.
    let ds = channel_deliveries(&t, "hook").await;
    let mut states: Vec<&str> = ds.iter().map(|d| d.state.as_str()).collect();
    states.sort();
    assert_eq!(
        states,
        ["delivered", "pending"],
        "the other delivery still went out"
    );
    let panicked = ds.iter().find(|d| d.state.as_str() == "pending").unwrap();
    let why = panicked.last_error.as_deref().unwrap();
    assert!(
        why.contains("panicked") && why.contains("index out of bounds in the hook channel"),
        "{why}"
    );
    assert!(t.app.loops.down().is_empty(), "{:?}", t.app.loops.down());
    // And the panicked one is retried after its backoff.
    t.advance(Duration::from_secs(30));
    t.dispatch_all().await;
    let ds = channel_deliveries(&t, "hook").await;
    assert!(ds.iter().all(|d| d.state.as_str() == "delivered"), "{ds:?}");
    assert_eq!(ch.calls.load(Ordering::SeqCst), 3);
    t.finish().await;
}

async fn readyz(t: &TestApp) -> (u16, Value) {
    let r = t.http.get(t.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn readyz_names_a_background_loop_that_is_down_until_it_recovers() {
    let t = spawn_app().await;
    assert_eq!(readyz(&t).await.0, 200);
    // The scheduler's reads fail (as they would with a broken schema or database).
    let exec = |sql: &'static str| {
        let db = t.app.db.clone();
        async move { sqlx::query(sql).execute(db.pool()).await.unwrap() }
    };
    exec("ALTER TABLE incidents RENAME TO incidents_away").await;
    let scheduler = t.app.scheduler();
    assert!(scheduler.supervised_tick(&t.app.loops).await.is_err());
    let (status, body) = readyz(&t).await;
    assert_eq!(status, 503);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("`scheduler` is down"), "{detail}");
    // The loop's next pass succeeds: ready again.
    exec("ALTER TABLE incidents_away RENAME TO incidents").await;
    scheduler.supervised_tick(&t.app.loops).await.unwrap();
    assert_eq!(
        readyz(&t).await,
        (200, json!({ "status": "ok", "detail": "ok" }))
    );
    t.finish().await;
}

#[tokio::test]
async fn readyz_fails_when_the_database_takes_no_writes() {
    if on_postgres() {
        return; // The write refusal below is SQLite's; PostgreSQL refuses writes differently.
    }
    let t = spawn_app().await;
    assert_eq!(readyz(&t).await.0, 200);
    // A trigger stands in for a full disk: reads work, the heartbeat write is refused.
    sqlx::query(
        "CREATE TRIGGER no_writes BEFORE UPDATE ON heartbeat BEGIN SELECT RAISE(FAIL, 'disk full'); END",
    )
    .execute(t.app.db.pool())
    .await
    .unwrap();
    let (status, body) = readyz(&t).await;
    assert_eq!(status, 503);
    assert_eq!(body["detail"], "database takes no writes");
    t.finish().await;
}

#[tokio::test]
async fn a_remote_down_for_six_hours_gets_every_delivery_afterwards_in_order() {
    let t = spawn_app_with(Options {
        webhook: true,
        outbox: Some("lease: 60s, backoff_min: 10s, backoff_max: 10m".into()),
        ..Default::default()
    })
    .await;
    let mock = t.mock.as_ref().unwrap();
    let down = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(mock)
        .await;
    let id = t.declare(incident(1)).await["id"].as_i64().unwrap();
    for n in 1..=2 {
        t.post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": format!("Still down {n}") }),
        )
        .await;
    }
    // Six hours of 503s, with the workers polling every five minutes.
    for _ in 0..72 {
        t.dispatch_all().await;
        t.advance(Duration::from_secs(300));
    }
    let ds = channel_deliveries(&t, "hook").await;
    assert!(ds.iter().all(|d| d.state.as_str() == "pending"), "{ds:?}");
    assert!(ds[0].attempts > 10, "retried all along: {}", ds[0].attempts);
    drop(down);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(mock)
        .await;
    for _ in 0..4 {
        t.advance(Duration::from_secs(600));
        t.dispatch_all().await;
    }
    let delivered: Vec<String> = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            let v: Value = serde_json::from_slice(&r.body).ok()?;
            Some(v["message"]["body"].as_str()?.to_string())
        })
        .collect();
    let after: Vec<&String> = delivered.iter().skip(delivered.len() - 3).collect();
    assert_eq!(after, vec!["Message 1", "Still down 1", "Still down 2"]);
    t.finish().await;
}

#[tokio::test]
async fn retries_stop_once_a_delivery_is_outbox_retry_for_old() {
    let t = spawn_app_with(Options {
        webhook: true,
        outbox: Some("lease: 60s, backoff_min: 10s, backoff_max: 10m, retry_for: 1h".into()),
        ..Default::default()
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(t.mock.as_ref().unwrap())
        .await;
    t.declare(incident(1)).await;
    for _ in 0..30 {
        t.dispatch_all().await;
        t.advance(Duration::from_secs(300));
    }
    let d = &channel_deliveries(&t, "hook").await[0];
    assert_eq!(d.state.as_str(), "dead");
    let why = d.last_error.as_deref().unwrap();
    assert!(
        why.contains("HTTP 503") && why.contains("gave up after"),
        "{why}"
    );
    t.finish().await;
}

#[tokio::test]
async fn an_update_committed_after_a_higher_id_is_still_noticed_by_other_instances() {
    if !on_postgres() {
        return; // SQLite has one writer: commits cannot overtake each other there.
    }
    let t = spawn_app().await;
    let a = t.declare(incident(1)).await["id"].as_i64().unwrap();
    let b = t.declare(incident(2)).await["id"].as_i64().unwrap();
    let other = t.another_instance(vec![]).await;
    other.refresh_pages().await.unwrap();
    let env = t.app.env();
    let now = t.clock_now();
    let update = |text: &str| PostUpdate {
        message: text.into(),
        ..Default::default()
    };
    // The first transaction takes the lower update id and commits last.
    let mut first = t.app.db.begin_write().await.unwrap();
    let u1 = update("Lower id, committed late");
    commands::post_update(&env, &mut first, &Actor::token("ci"), a, u1, now)
        .await
        .unwrap();
    let db = t.app.db.clone();
    let env2 = env.clone();
    let mut second = tokio::spawn(async move {
        let mut tx = db.begin_write().await.unwrap();
        let u2 = PostUpdate {
            message: "Higher id, committed first".into(),
            ..Default::default()
        };
        commands::post_update(&env2, &mut tx, &Actor::token("ci"), b, u2, now)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    // (With the change counter the second waits for the first; without it, it commits now.)
    let _ = tokio::time::timeout(Duration::from_millis(500), &mut second).await;
    other.refresh_pages().await.unwrap();
    first.commit().await.unwrap();
    second.await.unwrap();
    assert!(
        other.refresh_pages().await.unwrap(),
        "the late commit is noticed"
    );
    let page = other.pages.current();
    let text = format!("{:?}", page.snapshot);
    assert!(text.contains("Lower id, committed late"), "{text}");
    assert!(text.contains("Higher id, committed first"));
    t.dispatch_all().await;
    t.finish().await;
}
