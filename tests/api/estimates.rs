//! Estimate accuracy has one definition: the estimates API (what the console's declare form
//! shows) and the `/metrics` gauges agree, and maintenance windows never count as incidents.

use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;
use crate::metrics::{sample, scrape};

async fn estimates(t: &TestApp, impact: &str) -> Value {
    let r = t
        .get(&format!("/api/v1/estimates?impact={impact}&eta_in=1h"))
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn cancelled_maintenance_windows_are_not_past_incidents() {
    let t = spawn_app().await;
    // Three windows (impact `none`, as every window is), each cancelled two days before it was due to start: a
    // "resolution" 2,880 minutes before the start, which once gave a median of -2,880 minutes.
    for n in 0..3 {
        let r = t
            .post(
                "/api/v1/maintenances",
                &json!({ "title": format!("Disk swap {n}"), "components": ["api"],
                         "starts_at": "2026-11-25T12:00:00Z", "duration": "30m" }),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let r = t
            .post(&format!("/api/v1/maintenances/{id}/cancel"), &json!({}))
            .await;
        assert_eq!(r.status(), 200);
    }
    let e = estimates(&t, "none").await;
    assert_eq!(e["sample_size"], 0, "{e}");
    assert_eq!(e["median_minutes"], Value::Null, "{e}");
    assert_eq!(e["scope"], "none");
    t.dispatch_all().await;
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn the_api_and_the_metrics_measure_a_late_first_estimate_the_same_way() {
    let t = spawn_app().await;
    // Three incidents declared without an estimate; 30 minutes in, the team says "fixed within
    // the hour" (12:30 → 13:30); resolved at 14:00: 90 minutes for a promised 60, 1.5×.
    // Counted from the start instead (120 for 90), it would read 1.33.
    for n in 0..3 {
        let start = n * 240;
        t.advance_to(start);
        let id = t
            .declare(
                json!({ "title": format!("Queue backlog {n}"), "impact": "major",
                             "message": "Jobs are delayed.",
                             "components": { "api": "degraded_performance" } }),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        t.advance_to(start + 30);
        let r = t
            .post(
                &format!("/api/v1/incidents/{id}/updates"),
                &json!({ "message": "Found it; draining.", "eta_in": "60m" }),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        t.advance_to(start + 120);
        let r = t
            .post(
                &format!("/api/v1/incidents/{id}/resolve"),
                &json!({ "message": "All caught up." }),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let e = estimates(&t, "major").await;
    assert_eq!(e["estimated_sample_size"], 3, "{e}");
    assert_eq!(e["median_overrun_ratio"], 1.5, "{e}");
    assert_eq!(e["median_minutes"], 120.0, "{e}");
    let text = scrape(&t).await;
    assert_eq!(
        sample(&text, "candor_estimate_accuracy_incidents"),
        Some("3")
    );
    assert_eq!(
        sample(&text, "candor_estimate_accuracy_median_ratio"),
        Some("1.5")
    );
    t.advance(Duration::from_secs(1));
    t.dispatch_all().await;
    t.assert_outbox_empty().await;
    t.finish().await;
}
