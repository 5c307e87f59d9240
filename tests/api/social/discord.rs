//! Discord webhooks: waiting for the message and keeping its id, refusals in Discord's words.

use super::*;

pub(super) fn discord_yaml(server: &MockServer) -> String {
    format!(
        "  disc: {{ type: discord, webhook_url: \"{}/api/webhooks/1234567890/tok-en\" }}\n",
        server.uri()
    )
}

#[tokio::test]
async fn discord_waits_for_the_message_and_keeps_its_id() {
    let m = MockServer::start().await;
    let limited = Mock::given(method("POST"))
        .and(path("/api/webhooks/1234567890/tok-en"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .insert_header("x-ratelimit-reset-after", "1.5")
                .set_body_json(json!({ "message": "You are being rate limited.", "retry_after": 1.5, "global": false })),
        )
        .mount_as_scoped(&m)
        .await;
    let t = app(discord_yaml(&m)).await;
    let id = declare(&t, "Some users cannot log in. @everyone").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "disc").await[0];
    assert_eq!(d.next_attempt_at, Some(at(&t, 2)));
    assert_eq!(
        d.last_error.as_deref(),
        Some("HTTP 429: You are being rate limited.")
    );
    drop(limited);
    Mock::given(method("POST"))
        .and(path("/api/webhooks/1234567890/tok-en"))
        .and(query_param("wait", "true"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "1180000000000000001", "type": 0, "channel_id": "99", "content": "..."
        })))
        .expect(1)
        .mount(&m)
        .await;
    t.advance(std::time::Duration::from_secs(2));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    let reqs = requests_to(&m, "/api/webhooks/1234567890/tok-en").await;
    let body = json_of(reqs.last().unwrap());
    assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
    let content = body["content"].as_str().unwrap();
    assert!(content.contains("@everyone") && content.ends_with(&incident_url(id)));
    assert_eq!(
        deliveries_of(&t, "disc").await[0].remote_id.as_deref(),
        Some("1180000000000000001")
    );
    t.finish().await;
}

#[tokio::test]
async fn discord_unknown_webhook_is_dead_with_discords_words() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({ "message": "Unknown Webhook", "code": 10015 })),
        )
        .expect(1)
        .mount(&m)
        .await;
    let t = app(discord_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.dead, 1);
    assert_eq!(
        deliveries_of(&t, "disc").await[0].last_error.as_deref(),
        Some("HTTP 404: Unknown Webhook")
    );
    t.finish().await;
}
