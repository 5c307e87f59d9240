//! Retries and races: an Idempotency-Key replays the first answer; a stale version gets 409.

use serde_json::{json, Value};

use super::*;

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
