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
