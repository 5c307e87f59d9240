//! The v1 API: declare, update, resolve; idempotency; stale writes; bad input.

use serde_json::{json, Value};

use crate::helpers::*;

fn declare_body() -> Value {
    json!({
        "title": "Elevated API error rates",
        "impact": "major",
        "status": "investigating",
        "message": "About 20% of API requests fail with 502. We're looking into it.",
        "components": { "api": "partial_outage" },
        "eta_in": "45m"
    })
}

#[tokio::test]
async fn declare_update_and_resolve_over_http_with_a_token() {
    let t = spawn_app().await;

    // No token, or a wrong one: 401 with a JSON error.
    let r = t
        .http
        .post(t.url("/api/v1/incidents"))
        .json(&declare_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );
    let r = t
        .http
        .get(t.url("/api/v1/incidents"))
        .bearer_auth("candor_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Declare.
    let r = t.post("/api/v1/incidents", &declare_body()).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = t.post("/api/v1/incidents", &declare_body()).await; // a second, separate incident
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/api/v1/incidents/{}", id + 1)
    );
    let inc = t.incident(id).await;
    assert_eq!(inc["title"], "Elevated API error rates");
    assert_eq!(inc["status"], "investigating");
    assert_eq!(inc["version"], 1);
    assert_eq!(inc["eta"], "2026-11-23T12:45:00Z");
    // A major incident promises its next update within the policy's 30 minutes.
    assert_eq!(inc["next_update_at"], "2026-11-23T12:30:00Z");
    assert_eq!(
        inc["components"],
        json!([{ "id": "api", "name": "Public API", "status": "partial_outage" }])
    );
    assert_eq!(inc["updates"][0]["kind"], "operator");
    assert_eq!(inc["updates"][0]["author"], "token:ci-script");
    assert_eq!(inc["eta_revisions"][0]["new_eta"], "2026-11-23T12:45:00Z");
    assert_eq!(inc["eta_revisions"][0]["old_eta"], Value::Null);
    // One delivery per public channel, pending until a worker runs.
    let ds = inc["updates"][0]["deliveries"].as_array().unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0]["channel"], "log");
    assert_eq!(ds[0]["state"], "pending");

    // Update with a revised estimate, 10 minutes later.
    t.advance_to(10);
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "A bad deploy; rolling back now.", "status": "identified",
                     "eta_in": "1h", "eta_reason": "rollback takes longer than a restart",
                     "components": { "api": "degraded_performance", "web": "degraded_performance" } }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let inc: Value = r.json().await.unwrap();
    assert_eq!(inc["status"], "identified");
    assert_eq!(inc["version"], 2);
    assert_eq!(inc["eta"], "2026-11-23T13:10:00Z");
    assert_eq!(inc["next_update_at"], "2026-11-23T12:40:00Z");
    let revs = inc["eta_revisions"].as_array().unwrap();
    assert_eq!(revs.len(), 2);
    assert_eq!(revs[1]["old_eta"], "2026-11-23T12:45:00Z");
    assert_eq!(revs[1]["new_eta"], "2026-11-23T13:10:00Z");
    assert_eq!(revs[1]["reason"], "rollback takes longer than a restart");
    assert_eq!(inc["components"].as_array().unwrap().len(), 2);

    // Resolve.
    t.advance_to(35);
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Rolled back; all good." }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let inc: Value = r.json().await.unwrap();
    assert_eq!(inc["status"], "resolved");
    assert_eq!(inc["resolved_at"], "2026-11-23T12:35:00Z");
    assert_eq!(inc["next_update_at"], Value::Null);
    assert!(inc["components"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "operational"));
    assert_eq!(inc["updates"][2]["kind"], "resolution");

    // Nothing more can be posted to a resolved incident.
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "hm" }),
        )
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "incident_resolved"
    );

    // Listing by state.
    let open: Value = t
        .get("/api/v1/incidents?state=open")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["incidents"].as_array().unwrap().len(), 1);
    let resolved: Value = t
        .get("/api/v1/incidents?state=resolved")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["incidents"][0]["id"], id);
    assert_eq!(
        resolved["incidents"][0]["latest_update"]["kind"],
        "resolution"
    );

    // The workers deliver every update to the log channel, with the same facts.
    t.dispatch_all().await;
    let lines = t.public_log();
    assert_eq!(lines.len(), 4);
    let ours: Vec<&Value> = lines.iter().filter(|l| l["incident_id"] == id).collect();
    assert_eq!(ours.len(), 3);
    assert!(ours[0]["text"]
        .as_str()
        .unwrap()
        .contains("We expect this fixed by Mon 23 Nov, 12:45 UTC."));
    assert!(ours[0]["text"]
        .as_str()
        .unwrap()
        .contains("Next update by Mon 23 Nov, 12:30 UTC."));
    assert!(ours[1]["text"].as_str().unwrap().contains("rolling back"));
    assert!(ours[2]["text"]
        .as_str()
        .unwrap()
        .starts_with("Resolved: Elevated API error rates"));
    let inc = t.incident(id).await;
    for u in inc["updates"].as_array().unwrap() {
        assert_eq!(u["deliveries"][0]["state"], "delivered", "{u}");
    }
    t.finish().await;
}

#[tokio::test]
async fn components_show_the_worst_status_across_open_incidents() {
    let t = spawn_app().await;
    t.declare(json!({ "title": "Slow API", "message": "Slow.", "components": { "api": "degraded_performance" }, "eta_in": "1h" }))
        .await;
    let b = t
        .declare(json!({ "title": "API down", "message": "Down.", "impact": "critical",
                         "components": { "api": "major_outage", "web": "partial_outage" }, "eta_in": "1h" }))
        .await;
    // Answered from the status page's snapshot: rebuilt as the refresher does after a change.
    t.app.rebuild_pages().await.unwrap();
    let comps: Value = t
        .http
        .get(t.url("/api/v1/components"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = |id: &str| {
        comps["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("api"), "major_outage");
    assert_eq!(status("web"), "partial_outage");
    assert_eq!(status("email"), "operational");

    t.post(
        &format!("/api/v1/incidents/{}/resolve", b["id"]),
        &json!({ "message": "Fixed." }),
    )
    .await;
    // Answered from the status page's snapshot: rebuilt as the refresher does after a change.
    t.app.rebuild_pages().await.unwrap();
    let comps: Value = t
        .http
        .get(t.url("/api/v1/components"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api = comps["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api["status"], "degraded_performance");
    t.dispatch_all().await;
    t.finish().await;
}

/// A later estimate needs a reason, which every channel publishes with it; an earlier one
/// needs none.
#[tokio::test]
async fn a_later_estimate_says_why_and_an_earlier_one_may_not() {
    let t = spawn_app().await;
    let id = t
        .declare(
            json!({ "title": "API errors", "impact": "major", "message": "Looking into it.",
                         "eta_in": "2h" }),
        )
        .await["id"]
        .as_i64()
        .unwrap(); // ETA 14:00
    let path = format!("/api/v1/incidents/{id}/updates");
    t.advance_to(10);
    let r = t
        .post(
            &path,
            &json!({ "message": "Slower than hoped.", "eta_in": "2h50m" }),
        )
        .await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_field");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("eta_reason: "), "{msg}");
    assert!(
        msg.contains("from Mon 23 Nov, 14:00 UTC to Mon 23 Nov, 15:00 UTC"),
        "{msg}"
    );
    // A blank reason is no reason.
    let r = t
        .post(
            &path,
            &json!({ "message": "Slower than hoped.", "eta_in": "2h50m", "eta_reason": " " }),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(t.incident(id).await["version"], 1, "nothing was written");

    let r = t
        .post(
            &path,
            &json!({ "message": "Slower than hoped.", "eta_in": "2h50m",
                     "eta_reason": "The rollback takes longer than a restart." }),
        )
        .await;
    assert_eq!(r.status(), 200);
    // Earlier needs no reason.
    t.advance_to(20);
    let r = t
        .post(
            &path,
            &json!({ "message": "Going faster now.", "eta_in": "2h" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let inc: Value = r.json().await.unwrap();
    let revs = inc["eta_revisions"].as_array().unwrap();
    assert_eq!(
        revs[1]["reason"],
        "The rollback takes longer than a restart."
    );
    assert_eq!(revs[2]["reason"], Value::Null);

    t.dispatch_all().await;
    let posts: Vec<String> = t
        .public_log()
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        posts[1].contains(
            "We now expect Mon 23 Nov, 15:00 UTC instead of 14:00: the rollback takes longer than a restart."
        ),
        "{}",
        posts[1]
    );
    assert!(
        posts[2].contains("We now expect Mon 23 Nov, 14:20 UTC instead of 15:00."),
        "{}",
        posts[2]
    );
    // The status page lists the estimate's history with its reasons.
    let page = t
        .page(&format!("/incidents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("the rollback takes longer than a restart"),
        "the status page gives the reason"
    );
    t.finish().await;
}

mod bad_input;
mod idempotency;
