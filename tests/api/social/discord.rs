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

// ---------------------------------------------------------------------------------------------
// Forum channels and threads: Execute Webhook's `thread_name` (JSON) and `thread_id` (query).

/// A forum channel's webhook as Discord runs it: a message must start a post (`thread_name`
/// in the body) or go into one (`?thread_id=`), else 400 with code 220001.
async fn mount_forum(server: &MockServer) {
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path("/api/webhooks/1234567890/tok-en"))
        .and(query_param("wait", "true"))
        .and(header("content-type", "application/json"))
        .respond_with(move |r: &Request| {
            let body = json_of(r);
            let thread_id = r
                .url
                .query_pairs()
                .find(|(k, _)| k == "thread_id")
                .map(|(_, v)| v.to_string());
            let id = format!("11800000000000000{:02}", n.fetch_add(1, Ordering::SeqCst));
            match (body.get("thread_name"), thread_id) {
                // A new post: the thread's id is its starter message's.
                (Some(_), None) => ResponseTemplate::new(200).set_body_json(json!({
                    "id": id, "type": 0, "channel_id": id, "content": "..."
                })),
                (None, Some(thread)) => ResponseTemplate::new(200).set_body_json(json!({
                    "id": id, "type": 0, "channel_id": thread, "content": "..."
                })),
                _ => ResponseTemplate::new(400).set_body_json(json!({
                    "message": "Webhooks posted to forum channels must have a thread_name or thread_id",
                    "code": 220001
                })),
            }
        })
        .mount(server)
        .await;
}

/// A forum channel's webhook used to answer 400 and every delivery died. With `forum: true`
/// the incident's first message starts a post named after it; later ones go into that post.
#[tokio::test]
async fn discord_forum_starts_a_post_per_incident_and_replies_in_it() {
    let m = MockServer::start().await;
    mount_forum(&m).await;
    let t = app(format!(
        "  disc: {{ type: discord, forum: true, webhook_url: \"{}/api/webhooks/1234567890/tok-en\" }}\n",
        m.uri()
    ))
    .await;
    // Each time here and in the log.
    let id = declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.delivered, 2);
    update(&t, id, "Sign-ins are recovering.").await;
    update(&t, id, "Fixed.").await;
    assert_eq!(t.dispatch_all().await.delivered, 4);
    // Another incident gets its own post, its name cut to Discord's 100 characters.
    let long_title = "Login failures ".repeat(10);
    t.declare(
        json!({ "title": long_title, "impact": "minor", "message": "Slow.",
                      "components": { "web": "degraded_performance" } }),
    )
    .await;
    assert_eq!(t.dispatch_all().await.delivered, 2);

    let reqs = requests_to(&m, "/api/webhooks/1234567890/tok-en").await;
    assert_eq!(reqs.len(), 4);
    let first = json_of(&reqs[0]);
    assert_eq!(first["thread_name"], "Login failures");
    assert_eq!(first["allowed_mentions"], json!({ "parse": [] }));
    assert!(first["content"]
        .as_str()
        .unwrap()
        .ends_with(&incident_url(id)));
    assert_eq!(reqs[0].url.query(), Some("wait=true"));
    for r in &reqs[1..3] {
        assert_eq!(
            r.url.query(),
            Some("wait=true&thread_id=1180000000000000000")
        );
        assert!(json_of(r).get("thread_name").is_none());
    }
    let other = json_of(&reqs[3]);
    let name = other["thread_name"].as_str().unwrap();
    assert_eq!(name.chars().count(), 100, "{name}");
    assert!(long_title.starts_with(name.trim_end_matches('…')), "{name}");
    assert_eq!(reqs[3].url.query(), Some("wait=true"));
    let ds = deliveries_of(&t, "disc").await;
    assert_eq!(ds[0].remote_id.as_deref(), Some("1180000000000000000"));
    t.finish().await;
}

/// `thread_id` sends every message into one existing thread (of a text channel, or a forum
/// post made by hand).
#[tokio::test]
async fn discord_thread_id_sends_every_message_into_that_thread() {
    let m = MockServer::start().await;
    mount_forum(&m).await;
    let t = app(format!(
        "  disc: {{ type: discord, thread_id: \"987654321098765432\", webhook_url: \"{}/api/webhooks/1234567890/tok-en\" }}\n",
        m.uri()
    ))
    .await;
    let id = declare(&t, "Some users cannot log in.").await;
    update(&t, id, "Fixed.").await;
    assert_eq!(t.dispatch_all().await.delivered, 4, "here and in the log");
    for r in requests_to(&m, "/api/webhooks/1234567890/tok-en").await {
        assert_eq!(
            r.url.query(),
            Some("wait=true&thread_id=987654321098765432")
        );
        assert!(json_of(&r).get("thread_name").is_none());
    }
    t.finish().await;
}
