//! A day's bar on the status page names a few incidents and counts the rest, so a bad day of
//! many incidents does not weigh the page down.

use serde_json::json;
use std::time::Duration;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_day_with_many_incidents_names_three_and_counts_the_rest() {
    let t = spawn_app().await;
    for n in 1..=5 {
        let id = t
            .declare(
                json!({ "title": format!("Outage number {n}"), "impact": "minor",
                "message": "Looking.", "components": { "api": "partial_outage" } }),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        t.advance(Duration::from_secs(60));
        let r = t
            .post(
                &format!("/api/v1/incidents/{id}/resolve"),
                &json!({ "message": "Fixed." }),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let body = t.page("/").await.text().await.unwrap();
    let label = body
        .split("aria-label=\"Today, ")
        .nth(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .expect("today's bar links its incidents");
    assert!(
        label.contains("Outage number 1, Outage number 2, Outage number 3 and 2 more incidents;"),
        "{label}"
    );
    assert!(!label.contains("Outage number 4"), "{label}");
    t.dispatch_all().await;
    t.finish().await;
}
