//! Retention: finished history is deleted past its age, in bounded batches, by the scheduler's
//! sweep; what is still needed (an open incident's deliveries) stays.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const DAY: u64 = 24 * 3600;

async fn count(t: &TestApp, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn old_deliveries_audit_sessions_and_sign_in_failures_are_swept_in_batches() {
    let t = spawn_app_with(Options {
        // A small batch: the sweep must repeat until everything past its age is gone.
        extra: Some("retention: { batch: 2 }\n".into()),
        ..Default::default()
    })
    .await;
    let mut resolved = Vec::new();
    for n in 0..3 {
        let id = t
            .declare(json!({ "title": format!("Outage {n}"), "impact": "minor",
                             "message": "Looking.", "components": { "api": "degraded_performance" } }))
            .await["id"]
            .as_i64()
            .unwrap();
        let r = t
            .post(
                &format!("/api/v1/incidents/{id}/resolve"),
                &json!({ "message": "Fixed." }),
            )
            .await;
        assert_eq!(r.status(), 200);
        resolved.push(id);
    }
    let open = t
        .declare(
            json!({ "title": "Still open", "impact": "minor", "message": "Looking.",
                         "components": { "web": "degraded_performance" } }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    t.dispatch_all().await;
    let t0_ms = t0().timestamp_millis();
    for sql in [
        format!("INSERT INTO console_sessions (id, data, expires_at) VALUES ('s1', '{{}}', {t0_ms})"),
        format!("INSERT INTO login_throttle (throttle_key, attempts, delay_ms, next_at, last_at) VALUES ('client:10.0.0.1', 3, 0, {t0_ms}, {t0_ms})"),
    ] {
        sqlx::query(&sql).execute(t.app.db.pool()).await.unwrap();
    }
    let finished_of_resolved = format!(
        "SELECT COUNT(*) FROM deliveries WHERE incident_id IN ({})",
        resolved
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let open_deliveries = format!("SELECT COUNT(*) FROM deliveries WHERE incident_id = {open}");
    assert!(count(&t, &finished_of_resolved).await >= 6);
    let open_before = count(&t, &open_deliveries).await;
    let old_audit = format!("SELECT COUNT(*) FROM audit_log WHERE created_at <= {t0_ms}");
    let audit_before = count(&t, &old_audit).await;
    assert!(audit_before >= 7);

    // A week later: expired sessions and old sign-in failures go; deliveries stay.
    t.advance(Duration::from_secs(8 * DAY));
    t.tick().await;
    assert_eq!(count(&t, "SELECT COUNT(*) FROM console_sessions").await, 0);
    assert_eq!(count(&t, "SELECT COUNT(*) FROM login_throttle").await, 0);
    assert!(count(&t, &finished_of_resolved).await >= 6);

    // After 90 days the resolved incidents' deliveries go (more than one batch of 2); the open
    // incident's stay (its first post is the thread later updates reply to), and so does audit.
    t.advance(Duration::from_secs(83 * DAY));
    t.tick().await;
    assert_eq!(count(&t, &finished_of_resolved).await, 0);
    assert!(count(&t, &open_deliveries).await >= open_before);
    assert_eq!(count(&t, &old_audit).await, audit_before);

    // After a year the audit entries go too.
    t.advance(Duration::from_secs(275 * DAY));
    t.tick().await;
    assert_eq!(count(&t, &old_audit).await, 0);
    t.dispatch_all().await;
    t.finish().await;
}
