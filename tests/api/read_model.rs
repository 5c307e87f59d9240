//! The incremental read model renders exactly what a full rebuild renders: after every kind of
//! public change (and as time moves incidents out of the 90-day window), every document the
//! page cache serves is byte-for-byte the one a fresh read of the whole database gives.

use std::time::Duration;

use candor::status_page::{pages, snapshot};
use serde_json::{json, Value};

use crate::helpers::*;

/// Rebuilds the app's pages incrementally, renders a full rebuild beside them at the same
/// moment, and compares every document.
async fn same_as_full_rebuild(t: &TestApp, step: &str) {
    t.app.rebuild_pages().await.unwrap();
    let incremental = t.app.pages.current();
    let full = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        let snap = snapshot::build(&mut conn, &t.app.config, t.clock_now())
            .await
            .unwrap();
        pages::build(snap, &t.app.config, &t.app.renderer, t.clock_now(), None).unwrap()
    };
    let mut a: Vec<&String> = incremental.assets.keys().collect();
    let mut b: Vec<&String> = full.assets.keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "after {step}: the same documents");
    for (path, asset) in &full.assets {
        let mine = &incremental.assets[path];
        assert!(
            mine.identity == asset.identity,
            "after {step}: {path} differs from a full rebuild:\n--- incremental\n{}\n--- full\n{}",
            String::from_utf8_lossy(&mine.identity),
            String::from_utf8_lossy(&asset.identity)
        );
        assert_eq!(mine.etag, asset.etag, "after {step}: {path}'s ETag");
    }
    assert_eq!(
        incremental.snapshot.revision, full.snapshot.revision,
        "after {step}"
    );
}

async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{status}: {v}");
    v
}

#[tokio::test]
async fn every_kind_of_change_renders_the_same_bytes_as_a_full_rebuild() {
    let t = spawn_app().await;
    same_as_full_rebuild(&t, "start").await;

    // Declare, update (status, components, estimate later with a reason), resolve.
    let a = t
        .declare(json!({ "title": "Login failures", "impact": "major",
                         "message": "Some users cannot log in.",
                         "components": { "web": "partial_outage" }, "eta_in": "1h" }))
        .await["id"]
        .as_i64()
        .unwrap();
    same_as_full_rebuild(&t, "declare").await;
    let b = t
        .declare(
            json!({ "title": "Slow API", "impact": "minor", "message": "Requests are slow.",
                         "components": { "api": "degraded_performance" } }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    same_as_full_rebuild(&t, "a second incident").await;
    t.advance(Duration::from_secs(600));
    ok(t.post(&format!("/api/v1/incidents/{a}/updates"), &json!({
        "message": "We found the cause.", "status": "identified", "title": "Login failures in EU",
        "impact": "critical", "components": { "web": "major_outage", "api": "partial_outage" },
        "eta_in": "2h", "eta_reason": "The fix needs a database migration."
    })).await).await;
    same_as_full_rebuild(&t, "an update").await;
    t.advance(Duration::from_secs(600));
    ok(t.post(
        &format!("/api/v1/incidents/{b}/resolve"),
        &json!({ "message": "Fixed." }),
    )
    .await)
    .await;
    same_as_full_rebuild(&t, "a resolution").await;
    let shown: Value = t
        .get(&format!("/api/v1/incidents/{a}"))
        .await
        .json()
        .await
        .unwrap();
    let first_update = shown["updates"][0]["id"]
        .as_i64()
        .expect("the first update's id");
    ok(t.post(
        &format!("/api/v1/incidents/{a}/updates/{first_update}/corrections"),
        &json!({
            "message": "Some users in the EU cannot log in.", "reason": "It is only the EU.",
            "meaning_changed": true
        }),
    )
    .await)
    .await;
    same_as_full_rebuild(&t, "a correction").await;

    // The scheduler's own updates (a holding update, an apology when the estimate passes).
    t.advance(Duration::from_secs(3 * 3600));
    t.app.scheduler().tick().await.unwrap();
    same_as_full_rebuild(&t, "the scheduler's updates").await;

    // Maintenance: scheduled, edited, extended, started by the clock, completed; another
    // cancelled; a third turned into an incident.
    let now = t.clock_now();
    let iso = |h: i64| (now + chrono::Duration::hours(h)).to_rfc3339();
    let m = ok(t.post("/api/v1/maintenances", &json!({
        "title": "Database upgrade", "components": ["api"], "starts_at": iso(2), "ends_at": iso(3)
    })).await).await["id"].as_i64().unwrap();
    same_as_full_rebuild(&t, "a window scheduled").await;
    ok(t.patch(
        &format!("/api/v1/maintenances/{m}"),
        &json!({
            "description": "Moving to PostgreSQL 17.", "starts_at": iso(2), "ends_at": iso(4),
            "reason": "More data than planned."
        }),
    )
    .await)
    .await;
    same_as_full_rebuild(&t, "a window edited").await;
    t.advance(Duration::from_secs(2 * 3600 + 60));
    t.app.scheduler().tick().await.unwrap();
    same_as_full_rebuild(&t, "a window started").await;
    ok(t.post(
        &format!("/api/v1/maintenances/{m}/extend"),
        &json!({
            "extend_by": "30m", "reason": "The copy is slow."
        }),
    )
    .await)
    .await;
    same_as_full_rebuild(&t, "a window extended").await;
    ok(
        t.post(&format!("/api/v1/maintenances/{m}/complete"), &json!({}))
            .await,
    )
    .await;
    same_as_full_rebuild(&t, "a window completed").await;
    let now = t.clock_now();
    let iso = |h: i64| (now + chrono::Duration::hours(h)).to_rfc3339();
    let c = ok(t.post("/api/v1/maintenances", &json!({
        "title": "Network work", "components": ["web"], "starts_at": iso(5), "ends_at": iso(6)
    })).await).await["id"].as_i64().unwrap();
    ok(
        t.post(&format!("/api/v1/maintenances/{c}/cancel"), &json!({}))
            .await,
    )
    .await;
    same_as_full_rebuild(&t, "a window cancelled").await;
    let d = ok(t.post("/api/v1/maintenances", &json!({
        "title": "Cache flush", "components": ["web"], "starts_at": iso(1), "ends_at": iso(2)
    })).await).await["id"].as_i64().unwrap();
    t.advance(Duration::from_secs(3600 + 60));
    t.app.scheduler().tick().await.unwrap();
    ok(t.post(
        &format!("/api/v1/maintenances/{d}/incident"),
        &json!({
            "message": "The flush took the site down.", "impact": "major"
        }),
    )
    .await)
    .await;
    same_as_full_rebuild(&t, "a window turned into an incident").await;

    // Time alone: the day bars move at midnight; after 91 days resolved incidents leave the
    // window (and the newest-50 list keeps them while there are fewer than 50).
    t.advance(Duration::from_secs(24 * 3600));
    same_as_full_rebuild(&t, "a day later").await;
    for i in 0..55 {
        t.declare(json!({ "title": format!("Blip {i}"), "impact": "minor", "message": "Short." }))
            .await;
    }
    same_as_full_rebuild(&t, "55 more incidents").await;
    t.advance(Duration::from_secs(92 * 24 * 3600));
    same_as_full_rebuild(&t, "92 days later").await;

    // And it really is incremental: one change reloads one story, not the window.
    t.declare(json!({ "title": "One more", "impact": "minor", "message": "Short." }))
        .await;
    {
        let mut model = t.app.model.lock().await;
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        let r = model
            .refresh(&mut conn, &t.app.config, t.clock_now())
            .await
            .unwrap();
        assert_eq!((r.loaded, r.full), (1, false));
        let r = model
            .refresh(&mut conn, &t.app.config, t.clock_now())
            .await
            .unwrap();
        assert_eq!(
            (r.loaded, r.full),
            (0, false),
            "nothing changed, nothing read"
        );
    }
    same_as_full_rebuild(&t, "one more incident").await;

    t.dispatch_all().await;
    t.finish().await;
}
