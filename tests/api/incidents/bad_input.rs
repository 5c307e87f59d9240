//! Bad input gets a clear 4xx naming what was wrong, never a 500.

use serde_json::{json, Value};

use super::*;

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
    let e = r.json::<Value>().await.unwrap();
    assert_eq!(e["error"]["code"], "payload_too_large");
    // The answer names the limit, so the caller knows how far to cut.
    let limit = t.app.config.server.max_body_bytes.to_string();
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.contains(&limit) && m.contains("server.max_body_bytes"),
        "{m}"
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
