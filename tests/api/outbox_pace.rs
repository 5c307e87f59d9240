//! The outbox keeps pace with writes: a pass claims as many deliveries as the channel takes,
//! records their outcomes in one batch, and concurrent claims never share a delivery (a shared
//! one is what "lease was lost … another worker owns this delivery" meant).

use std::collections::BTreeMap;

use candor::store::{deliveries, Backend};
use serde_json::json;

use crate::helpers::*;

async fn declare_many(t: &TestApp, n: usize) {
    for i in 0..n {
        t.declare(json!({ "title": format!("Outage {i}"), "impact": "minor",
                          "message": "Some requests fail.", "eta_in": "1h" }))
            .await;
    }
}

#[tokio::test]
async fn one_pass_takes_as_many_log_lines_as_the_channel_takes_and_records_them_all() {
    let t = spawn_app().await;
    declare_many(&t, 70).await;
    // The public `log` channel takes 64 at once by default; the ops channel 64 as well.
    let first = t.app.outbox().run_once().await.unwrap();
    assert_eq!(first.claimed, first.delivered, "{first:?}");
    assert!(
        first.claimed >= 64,
        "a pass claims up to the channel's concurrency (64 for log), not 4: {first:?}"
    );
    let rest = t.dispatch_all().await;
    assert_eq!(t.public_log().len(), 70);
    assert_eq!(rest.dead + first.dead, 0);
    // Every outcome was recorded: nothing is left in flight.
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    assert_eq!(deliveries::unfinished(&mut conn).await.unwrap(), 0);
    drop(conn);
    t.finish().await;
}

/// Eight workers claim from one channel at the same moment, each on its own connection. Each
/// delivery must be handed to exactly one of them, and the row must name that one as its
/// owner: a delivery returned to two claimers is one whose first owner later finds its lease
/// "lost" although no lease ran out. On PostgreSQL this is the `FOR UPDATE SKIP LOCKED`
/// claim under real concurrency.
#[tokio::test]
async fn concurrent_claims_never_hand_one_delivery_to_two_workers() {
    let t = spawn_app().await;
    declare_many(&t, 60).await;
    let now = t.clock_now();
    let backend = t.app.db.backend();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let db = t.app.db.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            let mut conn = db.write_conn().await.unwrap();
            let got = deliveries::claim(
                &mut conn,
                backend,
                "log",
                &owner,
                now,
                now + chrono::Duration::minutes(1),
                5,
            )
            .await
            .unwrap();
            (owner, got.into_iter().map(|c| c.id).collect::<Vec<_>>())
        }));
    }
    let mut handed: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for task in tasks {
        let (owner, ids) = task.await.unwrap();
        assert!(
            ids.len() <= 5,
            "{owner} got more than it asked for: {ids:?}"
        );
        for id in ids {
            handed.entry(id).or_default().push(owner.clone());
        }
    }
    assert_eq!(handed.len(), 40, "8 workers × 5 each, 60 waiting");
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    for (id, owners) in &handed {
        assert_eq!(owners.len(), 1, "delivery {id} handed to {owners:?}");
        let (owner,): (Option<String>,) =
            sqlx::query_as("SELECT lease_owner FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert_eq!(owner.as_deref(), Some(owners[0].as_str()));
    }
    if backend == Backend::Postgres {
        // The claims really overlapped: they were not served one after another by a lock.
        assert!(
            handed
                .values()
                .flatten()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 1
        );
    }
    drop(conn);
    // The claimers never report back: once their leases run out, a worker sends everything,
    // each line once.
    t.advance(std::time::Duration::from_secs(120));
    t.dispatch_all().await;
    assert_eq!(t.public_log().len(), 60);
    t.finish().await;
}

/// On PostgreSQL the delivery workers have connections of their own: while requests hold every
/// connection of the pool (a flood), a pass still claims, sends and records at once. Before,
/// the workers queued for the same connections as the requests, and under 32 clients the log
/// line trailed the answer by about 100 ms at the median.
#[tokio::test]
async fn the_delivery_workers_are_not_queued_behind_requests_holding_every_connection() {
    let t = spawn_app().await;
    if t.app.db.backend() != Backend::Postgres {
        // SQLite's write turn puts the workers first instead (src/store/turn.rs).
        t.finish().await;
        return;
    }
    declare_many(&t, 3).await;
    let mut held = Vec::new();
    for _ in 0..t.app.config.database.max_connections {
        held.push(t.app.db.pool().acquire().await.unwrap());
    }
    let pass = tokio::time::timeout(std::time::Duration::from_secs(3), t.app.outbox().run_once())
        .await
        .expect("the workers do not wait for a request's connection")
        .unwrap();
    assert!(pass.delivered >= 3, "{pass:?}");
    assert_eq!(pass.claimed, pass.delivered, "{pass:?}");
    drop(held);
    assert_eq!(t.public_log().len(), 3);
    t.finish().await;
}
