//! The spans a failing test's logs (and production's) are read by: one per command, naming its
//! actor and incident, and one per delivery attempt, naming the delivery, channel and kind.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn commands_and_delivery_attempts_run_in_spans_naming_who_and_what() {
    let logs = capture_logs();
    let t = spawn_app().await;
    let id = t
        .declare(
            json!({ "title": "Slow logins", "impact": "major", "message": "Looking.",
                         "components": { "web": "degraded_performance" } }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "Found it.", "status": "identified" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    t.dispatch_all().await;
    t.advance_to(30); // the promised next update is due: the scheduler posts a holding update
    assert_eq!(t.tick().await, 1);
    t.dispatch_all().await;

    let text = logs.text();
    for span in [
        "declare{actor=token:ci-script}".to_string(),
        format!("post_update{{actor=token:ci-script incident.id={id}}}"),
        format!("scheduled{{actor=\"candor\" incident.id={id} action=\"holding\"}}"),
        format!(
            "deliver{{delivery.id=1 incident.id={id} channel=\"log\" attempt=1 kind=Operator}}"
        ),
        format!("incident.id={id} channel=\"log\" attempt=1 kind=Scheduled}}"),
    ] {
        assert!(text.contains(&span), "no span {span} in:\n{text}");
    }
    t.finish().await;
}
