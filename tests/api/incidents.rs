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
async fn an_idempotent_retry_returns_the_first_response_and_does_nothing_again() {
    let t = spawn_app().await;
    let send = |key: &'static str, body: Value| {
        t.http
            .post(t.url("/api/v1/incidents"))
            .bearer_auth(&t.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send("deploy-42", declare_body()).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let again = send("deploy-42", declare_body()).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);

    let list: Value = t
        .get("/api/v1/incidents?state=all")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["incidents"].as_array().unwrap().len(),
        1,
        "the retry must not declare twice"
    );
    assert_eq!(
        t.unfinished_deliveries().await,
        1,
        "nor queue a second message"
    );

    // The same key with another body is refused.
    let mut other = declare_body();
    other["title"] = json!("Something else");
    let r = send("deploy-42", other).await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "idempotency_key_reused"
    );

    // Updates are idempotent too.
    let id = first["id"].as_i64().unwrap();
    for _ in 0..2 {
        let r = t
            .http
            .post(t.url(&format!("/api/v1/incidents/{id}/updates")))
            .bearer_auth(&t.token)
            .header("Idempotency-Key", "update-1")
            .json(&json!({ "message": "Still on it." }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(t.incident(id).await["updates"].as_array().unwrap().len(), 2);

    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_declare_once() {
    let t = spawn_app().await;
    let sends = (0..6).map(|_| {
        t.http
            .post(t.url("/api/v1/incidents"))
            .bearer_auth(&t.token)
            .header("Idempotency-Key", "alert-group-7")
            .json(&declare_body())
            .send()
    });
    let responses = futures::future::join_all(sends).await;
    let mut ids = Vec::new();
    for r in responses {
        let r = r.unwrap();
        assert_eq!(r.status(), 201);
        ids.push(r.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the same incident");
    let list: Value = t
        .get("/api/v1/incidents?state=all")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1);
    t.dispatch_all().await;
    assert_eq!(t.public_log().len(), 1, "and one message went out");
    t.finish().await;
}

#[tokio::test]
async fn a_stale_write_gets_409_and_changes_nothing() {
    let t = spawn_app().await;
    let id = t.declare(declare_body()).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/incidents/{id}/updates");

    // Alice posts against version 1.
    let r = t
        .post(
            &path,
            &json!({ "message": "Alice: found it.", "version": 1 }),
        )
        .await;
    assert_eq!(r.status(), 200);

    // Bob's form still says version 1: refused, in the body or as If-Match.
    let r = t
        .post(&path, &json!({ "message": "Bob: looking.", "version": 1 }))
        .await;
    assert_eq!(r.status(), 409);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "stale_version");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 2"),
        "{e}"
    );
    let r = t
        .http
        .post(t.url(&path))
        .bearer_auth(&t.token)
        .header("If-Match", "\"1\"")
        .json(&json!({ "message": "Bob: looking." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = t
        .http
        .post(t.url(&format!("/api/v1/incidents/{id}/resolve")))
        .bearer_auth(&t.token)
        .header("If-Match", "\"1\"")
        .json(&json!({ "message": "Bob: fixed?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    let inc = t.incident(id).await;
    assert_eq!(inc["version"], 2);
    assert_eq!(inc["updates"].as_array().unwrap().len(), 2);
    assert_eq!(inc["status"], "investigating");

    // With the current version it goes through.
    let r = t
        .http
        .post(t.url(&path))
        .bearer_auth(&t.token)
        .header("If-Match", "\"2\"")
        .json(&json!({ "message": "Bob: confirmed." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_naming_what_was_wrong_and_never_a_500() {
    let t = spawn_app().await;
    let id = t.declare(declare_body()).await["id"].as_i64().unwrap();

    let with = |patch: Value| {
        let mut b = declare_body();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    // (body, expected status, error code, words the message must contain)
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            with(json!({ "components": { "billing": "major_outage" } })),
            422,
            "invalid_field",
            "components.billing",
        ),
        (
            with(json!({ "impact": "severe" })),
            422,
            "invalid_field",
            "impact",
        ),
        (
            with(json!({ "components": { "api": "down" } })),
            422,
            "invalid_field",
            "components.api",
        ),
        (
            with(json!({ "eta": "2026-11-23T11:00:00Z", "eta_in": null })),
            422,
            "invalid_field",
            "future",
        ),
        (
            with(json!({ "eta": "tomorrow", "eta_in": null })),
            422,
            "invalid_field",
            "RFC 3339",
        ),
        (
            with(json!({ "eta": "2026-11-23T13:00:00Z" })),
            422,
            "invalid_field",
            "not both",
        ),
        (
            with(json!({ "eta_in": "soon" })),
            422,
            "invalid_field",
            "45m",
        ),
        (
            with(json!({ "next_update_in": "3d" })),
            422,
            "invalid_field",
            "next_update_in",
        ),
        (
            with(json!({ "title": "   " })),
            422,
            "invalid_field",
            "title",
        ),
        (
            with(json!({ "title": "x".repeat(201) })),
            422,
            "invalid_field",
            "title",
        ),
        (
            with(json!({ "status": "resolved" })),
            422,
            "invalid_field",
            "resolve",
        ),
        (
            with(json!({ "colour": "red" })),
            422,
            "invalid_field",
            "colour",
        ),
        (
            json!({ "title": "no message" }),
            422,
            "invalid_field",
            "message",
        ),
        (json!([1, 2]), 400, "invalid_json", "object"),
    ];
    for (body, status, code, words) in cases {
        let r = t.post("/api/v1/incidents", &body).await;
        let got = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        assert_eq!(got, status, "{body} -> {e}");
        assert_eq!(e["error"]["code"], code, "{body} -> {e}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(words),
            "{body}: message `{msg}` should mention `{words}`"
        );
    }

    let raw = |path: &str, body: &'static str, ct: &'static str| {
        t.http
            .post(t.url(path))
            .bearer_auth(&t.token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = raw("/api/v1/incidents", "{\"title\": ", "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );
    let r = raw("/api/v1/incidents", "", "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = raw(
        "/api/v1/incidents",
        "title=x",
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("application/json"));

    // Oversized body.
    let big = json!({ "title": "big", "message": "x".repeat(100_000) });
    let r = t.post("/api/v1/incidents", &big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );

    // Paths and queries.
    for (path, status) in [
        ("/api/v1/incidents/abc", 404),
        ("/api/v1/incidents/999999", 404),
        ("/api/v1/incidents/-1", 404),
        ("/api/v1/nothing", 404),
        ("/api/v1/incidents?state=closed", 400),
        ("/api/v1/incidents?limit=0", 400),
        ("/api/v1/incidents?limit=x", 400),
    ] {
        let r = t.get(path).await;
        assert_eq!(r.status(), status, "{path}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"]["message"].is_string(), "{path}: {e}");
    }
    let r = t
        .post(
            "/api/v1/incidents/999999/updates",
            &json!({ "message": "x" }),
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = t
        .http
        .delete(t.url("/api/v1/incidents"))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );

    // Headers.
    let r = t
        .http
        .post(t.url(&format!("/api/v1/incidents/{id}/updates")))
        .bearer_auth(&t.token)
        .header("If-Match", "yesterday")
        .json(&json!({ "message": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = t
        .http
        .post(t.url("/api/v1/incidents"))
        .bearer_auth(&t.token)
        .header("Idempotency-Key", "")
        .json(&declare_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // None of that changed anything.
    assert_eq!(t.incident(id).await["version"], 1);
    t.dispatch_all().await;
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
