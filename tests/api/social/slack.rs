//! Slack incoming webhooks: escaped text, backing off on 429, refusals in Slack's words.

use super::*;

fn slack_yaml(server: &MockServer) -> String {
    format!(
        "  team: {{ type: slack, webhook_url: \"{}/services/T0001/B0001/XXXXXXXX\" }}\n",
        server.uri()
    )
}

#[tokio::test]
async fn slack_posts_escaped_text_and_backs_off_on_429() {
    let m = MockServer::start().await;
    let limited = Mock::given(method("POST"))
        .and(path("/services/T0001/B0001/XXXXXXXX"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_string("rate_limited"),
        )
        .mount_as_scoped(&m)
        .await;
    let t = app(slack_yaml(&m)).await;
    let id = t
        .declare(json!({ "title": "Login <failures> & timeouts", "impact": "minor",
                         "message": "Some users cannot log in.", "components": { "web": "degraded_performance" } }))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "team").await[0];
    assert_eq!(d.next_attempt_at, Some(at(&t, 30)));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 429: rate_limited"));
    drop(limited);
    Mock::given(method("POST"))
        .and(path("/services/T0001/B0001/XXXXXXXX"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&m)
        .await;
    t.advance(std::time::Duration::from_secs(30));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    let reqs = requests_to(&m, "/services/T0001/B0001/XXXXXXXX").await;
    let body = json_of(reqs.last().unwrap());
    assert_eq!(body.as_object().unwrap().len(), 1);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("Investigating: Login &lt;failures&gt; &amp; timeouts"),
        "{text}"
    );
    assert!(text.ends_with(&incident_url(id)));
    t.finish().await;
}

#[tokio::test]
async fn slack_refusal_is_dead_with_slacks_error_word() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .expect(1)
        .mount(&m)
        .await;
    let t = app(slack_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.dead, 1);
    assert_eq!(
        deliveries_of(&t, "team").await[0].last_error.as_deref(),
        Some("HTTP 404: no_service")
    );
    t.finish().await;
}

// ---------------------------------------------------------------------------------------------
// The Web API's `chat.postMessage` with a bot token: one thread per incident.

const BOT: &str = "xoxb-1111-2222-abcdefABCDEF";

fn slack_bot_yaml(server: &MockServer) -> String {
    format!(
        "  team: {{ type: slack, bot_token: \"{BOT}\", channel: \"C0123456789\", api_url: \"{}/api\" }}\n",
        server.uri()
    )
}

/// Slack's answer to a posted message (always HTTP 200 when it was read).
fn slack_ok(ts: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "ok": true, "channel": "C0123456789", "ts": ts,
        "message": { "type": "message", "subtype": "bot_message", "text": "...", "ts": ts }
    }))
}

fn slack_error(word: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": word }))
}

/// Incoming webhooks cannot thread, so an incident used to become unrelated messages. With a
/// bot token, the first message's `ts` is kept and every later one is posted with it as
/// `thread_ts` (the parent's, never a reply's, as Slack asks).
#[tokio::test]
async fn slack_bot_posts_the_first_message_then_replies_in_its_thread() {
    let m = MockServer::start().await;
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(header("authorization", format!("Bearer {BOT}").as_str()))
        .and(header("content-type", "application/json; charset=utf-8"))
        .respond_with(move |_: &Request| {
            slack_ok(&format!(
                "1503435956.00024{}",
                n.fetch_add(1, Ordering::SeqCst)
            ))
        })
        .expect(3)
        .mount(&m)
        .await;
    let t = app(slack_bot_yaml(&m)).await;
    let id = t
        .declare(json!({ "title": "Login <failures> & timeouts", "impact": "minor",
                         "message": "Some users cannot log in.", "components": { "web": "degraded_performance" } }))
        .await["id"]
        .as_i64()
        .unwrap();
    // Each time here and in the log.
    assert_eq!(t.dispatch_all().await.delivered, 2);
    update(&t, id, "Sign-ins are recovering.").await;
    assert_eq!(t.dispatch_all().await.delivered, 2);
    update(&t, id, "Fixed.").await;
    assert_eq!(t.dispatch_all().await.delivered, 2);

    let reqs = requests_to(&m, "/api/chat.postMessage").await;
    let first = json_of(&reqs[0]);
    assert_eq!(
        first.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["channel", "text"]
    );
    assert_eq!(first["channel"], "C0123456789");
    let text = first["text"].as_str().unwrap();
    assert!(
        text.starts_with("Investigating: Login &lt;failures&gt; &amp; timeouts")
            && text.ends_with(&incident_url(id)),
        "{text}"
    );
    for r in &reqs[1..] {
        let reply = json_of(r);
        assert_eq!(reply["channel"], "C0123456789");
        assert_eq!(
            reply["thread_ts"], "1503435956.000240",
            "the thread's parent, never a reply"
        );
    }
    assert!(json_of(&reqs[1])["text"]
        .as_str()
        .unwrap()
        .contains("Sign-ins are recovering."));
    let ds = deliveries_of(&t, "team").await;
    assert_eq!(ds[0].remote_id.as_deref(), Some("1503435956.000240"));
    assert_eq!(ds[1].remote_id.as_deref(), Some("1503435956.000241"));
    t.finish().await;
}

/// Slack's Web API answers HTTP 200 with `{"ok": false, "error": ...}` for most failures: they
/// used to count as delivered. `ratelimited` (and an HTTP 429) waits for `Retry-After`; Slack's
/// own trouble is retried; a bad token or channel is dead at once, in Slack's words.
#[tokio::test]
async fn slack_bot_ok_false_answers_are_classified() {
    let m = MockServer::start().await;
    let limited = Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(slack_error("ratelimited").insert_header("retry-after", "30"))
        .mount_as_scoped(&m)
        .await;
    let t = app(slack_bot_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "team").await[0];
    assert_eq!(d.next_attempt_at, Some(at(&t, 30)));
    assert_eq!(d.last_error.as_deref(), Some("Slack: ratelimited"));
    drop(limited);
    t.advance(std::time::Duration::from_secs(30));
    let limited = Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "45")
                .set_body_json(json!({ "ok": false, "error": "ratelimited" })),
        )
        .mount_as_scoped(&m)
        .await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "team").await[0];
    assert_eq!(d.next_attempt_at, Some(at(&t, 45)));
    drop(limited);
    t.advance(std::time::Duration::from_secs(45));
    let broken = Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(slack_error("internal_error"))
        .mount_as_scoped(&m)
        .await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "team").await[0];
    assert_eq!(d.last_error.as_deref(), Some("Slack: internal_error"));
    drop(broken);
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(slack_error("channel_not_found"))
        .expect(1)
        .mount(&m)
        .await;
    t.clock.set(d.next_attempt_at.unwrap());
    assert_eq!(t.dispatch_all().await.dead, 1);
    let d = &deliveries_of(&t, "team").await[0];
    assert_eq!(d.last_error.as_deref(), Some("Slack: channel_not_found"));

    // A revoked or mistyped token is dead at once too.
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(slack_error("invalid_auth"))
        .expect(1)
        .mount(&m)
        .await;
    let t2 = app(slack_bot_yaml(&m)).await;
    declare(&t2, "Some users cannot log in.").await;
    assert_eq!(t2.dispatch_all().await.dead, 1);
    assert_eq!(
        deliveries_of(&t2, "team").await[0].last_error.as_deref(),
        Some("Slack: invalid_auth")
    );
    t2.finish().await;
    t.finish().await;
}
