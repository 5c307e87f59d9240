//! Scheduled maintenance: announced in advance, reminded, started, ended, and honest when it
//! runs over. Driven by the manual clock (t0 is Monday 23 Nov 2026 12:00 UTC).

use candor::store::incidents;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use crate::helpers::*;

fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
}

/// The public messages sent for one window, as (kind, text), in order.
fn public_for(t: &TestApp, id: i64) -> Vec<(String, String)> {
    t.public_log()
        .into_iter()
        .filter(|l| l["incident_id"] == id)
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn component_status(t: &TestApp, id: &str) -> String {
    // Answered from the status page's snapshot: rebuilt as the refresher does after a change.
    t.app.rebuild_pages().await.unwrap();
    let v: Value = t.get("/api/v1/components").await.json().await.unwrap();
    v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn page_text(t: &TestApp, path: &str) -> String {
    t.page(path).await.text().await.unwrap()
}

async fn page_json(t: &TestApp, path: &str) -> Value {
    t.page(path).await.json().await.unwrap()
}

async fn schedule(t: &TestApp, body: Value) -> Value {
    let r = t.post("/api/v1/maintenances", &body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v
}

/// Ticks every scheduler at once (the app's and two more instances') and returns the total.
async fn tick_all(t: &TestApp, others: &[candor::App]) -> usize {
    let mut schedulers = vec![t.app.scheduler()];
    schedulers.extend(others.iter().map(|a| a.scheduler()));
    let results = futures::future::join_all(schedulers.iter().map(|s| s.tick())).await;
    results.into_iter().map(|r| r.unwrap()).sum()
}

#[tokio::test]
async fn a_window_is_announced_reminded_started_overrun_extended_and_completed_once_each() {
    let t = spawn_app().await;
    let others = [
        t.another_instance(vec![]).await,
        t.another_instance(vec![]).await,
    ];
    let w = schedule(
        &t,
        json!({
            "title": "Database upgrade",
            "description": "Moving to PostgreSQL 17.",
            "components": ["api", "web"],
            "starts_at": "2026-11-25T02:00:00Z",
            "ends_at": "2026-11-25T04:00:00Z"
        }),
    )
    .await;
    let id = w["id"].as_i64().unwrap();
    assert_eq!(w["status"], "scheduled");
    assert_eq!(w["warnings"], json!([]));
    assert_eq!(w["scheduled_for"], "2026-11-25T02:00:00Z");
    // A window that has not started changes nothing yet.
    assert_eq!(component_status(&t, "api").await, "operational");
    let open: Value = t.get("/api/v1/incidents").await.json().await.unwrap();
    assert_eq!(open["incidents"].as_array().unwrap().len(), 0, "{open}");
    assert_eq!(t.snapshot().await.active.len(), 0);
    assert_eq!(tick_all(&t, &others).await, 0);

    // 24 h before, then 1 h before: one reminder each, however many schedulers tick.
    t.clock.set(at(24, 2, 0));
    assert_eq!(tick_all(&t, &others).await, 1);
    assert_eq!(tick_all(&t, &others).await, 0);
    t.clock.set(at(25, 1, 0));
    assert_eq!(tick_all(&t, &others).await, 1);
    assert_eq!(tick_all(&t, &others).await, 0);

    // Meanwhile an unrelated incident already has the website degraded.
    let inc = t
        .declare(json!({
            "title": "Slow pages", "impact": "minor", "message": "Pages are slow.",
            "components": { "web": "degraded_performance" }, "next_update_in": "24h"
        }))
        .await["id"]
        .as_i64()
        .unwrap();

    // The start: components go under maintenance (the degraded website stays degraded).
    t.clock.set(at(25, 2, 0));
    assert_eq!(tick_all(&t, &others).await, 1);
    assert_eq!(tick_all(&t, &others).await, 0);
    assert_eq!(component_status(&t, "api").await, "under_maintenance");
    assert_eq!(component_status(&t, "web").await, "degraded_performance");
    let shown: Value = t
        .get(&format!("/api/v1/maintenances/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "in_progress");

    // The planned end passes with nobody closing it: one apology, one request to the team.
    t.clock.set(at(25, 4, 0));
    let n = tick_all(&t, &others).await;
    assert!(n >= 1, "the overrun is acted on");
    assert_eq!(tick_all(&t, &others).await, 0);
    let overdue = t.updates_of_kind(id, "overdue").await;
    assert_eq!(overdue.len(), 1);
    assert_eq!(
        component_status(&t, "api").await,
        "under_maintenance",
        "still under maintenance"
    );
    let page = page_text(&t, &format!("/incidents/{id}")).await;
    assert!(
        page.contains("is running over"),
        "the page says so too: {page}"
    );
    let home = page_text(&t, "/").await;
    assert!(home.contains("running over its planned end"), "{home}");

    // Its next-update promise is kept like an incident's (impact none: every 2 h by default).
    t.clock.set(at(25, 6, 0));
    tick_all(&t, &others).await;
    assert_eq!(t.updates_of_kind(id, "scheduled").await.len(), 1);

    // Extending needs a reason, and says it.
    let r = t
        .post(
            &format!("/api/v1/maintenances/{id}/extend"),
            &json!({ "extend_by": "1h", "reason": "" }),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("reason"));
    t.clock.set(at(25, 6, 10));
    let r = t
        .post(
            &format!("/api/v1/maintenances/{id}/extend"),
            &json!({ "ends_at": "2026-11-25T07:00:00Z", "reason": "The index rebuild is slower than in staging." }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v = t.incident(id).await;
    assert_eq!(v["eta"], "2026-11-25T07:00:00Z", "{v}");
    let revisions = v["eta_revisions"].as_array().unwrap();
    assert_eq!(
        revisions.last().unwrap()["reason"],
        "The index rebuild is slower than in staging."
    );

    // Completed before the new end: the components return to what they were.
    t.clock.set(at(25, 6, 40));
    let r = t
        .post(&format!("/api/v1/maintenances/{id}/complete"), &json!({}))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(component_status(&t, "api").await, "operational");
    assert_eq!(component_status(&t, "web").await, "degraded_performance");
    assert_eq!(tick_all(&t, &others).await, 0);

    t.dispatch_all().await;
    let sent = public_for(&t, id);
    let kinds: Vec<&str> = sent.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "maintenance_scheduled",
            "maintenance_reminder",
            "maintenance_reminder",
            "maintenance_started",
            "overdue",
            "scheduled",
            "maintenance_updated",
            "maintenance_completed",
        ],
        "each message exactly once, in order"
    );
    assert!(
        sent[0].1.contains("Database upgrade") && sent[0].1.contains("Public API"),
        "{}",
        sent[0].1
    );
    assert!(sent[1].1.contains("starts in 1 day"), "{}", sent[1].1);
    assert!(sent[2].1.contains("starts in 1 hour"), "{}", sent[2].1);
    assert!(sent[3].1.contains("under maintenance"), "{}", sent[3].1);
    assert!(sent[4].1.contains("running over"), "{}", sent[4].1);
    assert!(
        sent[6].1.contains("slower than in staging"),
        "{}",
        sent[6].1
    );
    assert!(sent[7].1.contains("earlier than planned"), "{}", sent[7].1);
    let ops: Vec<Value> = t
        .ops_log()
        .into_iter()
        .filter(|l| l["incident_id"] == id && l["kind"] == "ops_eta_passed")
        .collect();
    assert_eq!(ops.len(), 1);
    assert!(
        ops[0]["text"].as_str().unwrap().contains("new end time"),
        "{}",
        ops[0]["text"]
    );
    // The unrelated incident is untouched.
    assert_eq!(t.incident(inc).await["status"], "investigating");
    t.finish().await;
}

#[tokio::test]
async fn a_cancelled_window_is_announced_and_never_starts() {
    let t = spawn_app().await;
    let id = schedule(
        &t,
        json!({ "title": "Network switch swap", "components": ["api"],
                "starts_at": "2026-11-23T14:00:00Z", "duration": "30m" }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    // Not an incident yet: the incident API refuses to update it, and says where to go.
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "x" }),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("/api/v1/maintenances"));
    // Scheduled two hours ahead: the 24 h notice had passed already and is not sent late.
    t.clock.set(at(23, 12, 30));
    assert_eq!(t.tick().await, 0);
    let r = t
        .post(
            &format!("/api/v1/maintenances/{id}/cancel"),
            &json!({ "message": "We no longer need this window." }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
    t.clock.set(at(23, 14, 0));
    assert_eq!(t.tick().await, 0);
    assert_eq!(component_status(&t, "api").await, "operational");
    // A second cancel, or completing it, is refused.
    let r = t
        .post(&format!("/api/v1/maintenances/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status(), 409);
    t.dispatch_all().await;
    let kinds: Vec<String> = public_for(&t, id).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["maintenance_scheduled", "maintenance_cancelled"]);
    t.finish().await;
}

#[tokio::test]
async fn a_window_can_become_an_incident() {
    let t = spawn_app().await;
    let id = schedule(
        &t,
        json!({ "title": "Storage migration", "components": ["api"],
                "starts_at": "2026-11-23T13:00:00Z", "ends_at": "2026-11-23T14:00:00Z" }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    t.clock.set(at(23, 13, 0));
    assert_eq!(t.tick().await, 1);
    let r = t
        .post(
            &format!("/api/v1/maintenances/{id}/incident"),
            &json!({ "message": "The migration broke writes.", "impact": "major",
                     "components": { "api": "major_outage" } }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v = t.incident(id).await;
    assert_eq!(v["status"], "investigating");
    assert_eq!(component_status(&t, "api").await, "major_outage");
    // It is an incident now: it resolves like one.
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Writes are back." }),
        )
        .await;
    assert_eq!(r.status(), 200);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn bad_maintenance_input_gets_a_clear_4xx() {
    let t = spawn_app_with(Options {
        extra: Some(
            "maintenance:\n  peak_hours:\n    - { name: \"Monday rush\", days: [mon], from: \"09:00\", to: \"17:00\", time_zone: Europe/Paris }\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    for (body, field) in [
        (
            json!({ "title": "x", "starts_at": "tomorrow", "duration": "1h" }),
            "starts_at",
        ),
        (
            json!({ "title": "x", "starts_at": "2026-11-20T02:00:00Z", "duration": "1h" }),
            "starts_at",
        ),
        (
            json!({ "title": "x", "starts_at": "2026-11-25T02:00:00Z", "ends_at": "2026-11-25T01:00:00Z" }),
            "ends_at",
        ),
        (
            json!({ "title": "x", "starts_at": "2026-11-25T02:00:00Z" }),
            "ends_at",
        ),
        (
            json!({ "title": "x", "starts_at": "2026-11-25T02:00:00Z", "duration": "1h", "components": ["db"] }),
            "components.db",
        ),
        (
            json!({ "title": "", "starts_at": "2026-11-25T02:00:00Z", "duration": "1h" }),
            "title",
        ),
    ] {
        let r = t.post("/api/v1/maintenances", &body).await;
        assert_eq!(r.status(), 422, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(field), "names `{field}`: {text}");
    }
    let r = t
        .post(
            "/api/v1/maintenances",
            &json!({ "title": "x", "colour": "red" }),
        )
        .await;
    assert!(r.status().is_client_error());
    let r = t.get("/api/v1/maintenances/999").await;
    assert_eq!(r.status(), 404);
    let r = t.get("/api/v1/maintenances?state=soon").await;
    assert_eq!(r.status(), 400);

    // Inside Monday's peak hours (Paris): scheduled, with a warning.
    let w = schedule(
        &t,
        json!({ "title": "Cache flush", "components": ["web"],
                "starts_at": "2026-11-30T10:00:00Z", "duration": "1h" }),
    )
    .await;
    let warnings = w["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{w}");
    assert!(warnings[0].as_str().unwrap().contains("Monday rush"));
    // At night: no warning.
    let w = schedule(
        &t,
        json!({ "title": "Cache flush", "components": ["web"],
                "starts_at": "2026-11-30T23:00:00Z", "duration": "1h" }),
    )
    .await;
    assert_eq!(w["warnings"], json!([]));
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn a_recurring_window_follows_its_zone_across_a_dst_change() {
    // Every Sunday 02:00 Europe/London for 2h; materialised 21 days ahead. Start the clock on
    // Monday 12 October 2026 (BST); clocks go back on Sunday 25 October.
    let t = spawn_app_with(Options {
        extra: Some(
            "maintenance:\n  horizon: 21d\n  recurring:\n    - { id: weekly-db, title: \"Weekly database maintenance\", components: [api], cron: \"0 2 * * SUN\", time_zone: Europe/London, duration: 2h }\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    t.clock
        .set(Utc.with_ymd_and_hms(2026, 10, 12, 12, 0, 0).unwrap());
    let others = [t.another_instance(vec![]).await];
    assert_eq!(
        tick_all(&t, &others).await,
        3,
        "three windows, each made once"
    );
    assert_eq!(tick_all(&t, &others).await, 0);
    let v: Value = t
        .get("/api/v1/maintenances?state=upcoming")
        .await
        .json()
        .await
        .unwrap();
    let got: Vec<(&str, &str)> = v["maintenances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["scheduled_for"].as_str().unwrap(),
                m["scheduled_until"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("2026-10-18T01:00:00Z", "2026-10-18T03:00:00Z"), // 02:00 BST
            ("2026-10-25T02:00:00Z", "2026-10-25T04:00:00Z"), // 02:00 GMT, the day clocks go back
            ("2026-11-01T02:00:00Z", "2026-11-01T04:00:00Z"), // 02:00 GMT
        ]
    );
    // A week later one more is materialised, and the first has started.
    t.clock
        .set(Utc.with_ymd_and_hms(2026, 10, 19, 12, 0, 0).unwrap());
    tick_all(&t, &others).await;
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let all = incidents::windows(&mut conn, incidents::WindowFilter::All, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        all[0].scheduled_for,
        Some(Utc.with_ymd_and_hms(2026, 11, 8, 2, 0, 0).unwrap())
    );
    t.dispatch_all().await;
    t.finish().await;
}

mod cli;
mod documents;
