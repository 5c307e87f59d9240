//! What every channel shares: impact and component filters, configuration errors that name
//! the key, `candor channel test`, and a platform that does not answer in time.

use super::discord::discord_yaml;
use super::*;

#[tokio::test]
async fn channels_limited_by_impact_or_component_get_only_those_incidents() {
    let t = spawn_app_with(Options {
        extra_channels: Some(
            "  crit: { type: log, path: \"/dev/null\", only: { impacts: [critical] } }\n  \
             webonly: { type: log, path: \"/dev/null\", only: { components: [web] } }\n"
                .into(),
        ),
        ..Default::default()
    })
    .await;
    t.declare(
        json!({ "title": "Slow API", "impact": "major", "message": "Slow.",
                      "components": { "api": "degraded_performance" } }),
    )
    .await;
    assert!(deliveries_of(&t, "crit").await.is_empty());
    assert!(deliveries_of(&t, "webonly").await.is_empty());
    assert_eq!(deliveries_of(&t, "log").await.len(), 1);
    t.declare(
        json!({ "title": "Site down", "impact": "critical", "message": "Down.",
                      "components": { "web": "major_outage" } }),
    )
    .await;
    assert_eq!(deliveries_of(&t, "crit").await.len(), 1);
    assert_eq!(deliveries_of(&t, "webonly").await.len(), 1);
    t.dispatch_all().await;
    t.finish().await;
}

#[test]
fn channel_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = config_yaml(&dir, "sqlite://x.db", None, None);
    let cases = [
        (
            "  c: { type: log, only: { components: [nope] } }\n",
            "channels.c.only.components[0]",
        ),
        (
            "  c: { type: webhook, url: \"https://h.test\", signing_secret: \"not-whsec\" }\n",
            "channels.c.signing_secret",
        ),
        (
            "  c: { type: mastodon, instance: \"https://m.test\", access_token: \"\" }\n",
            "channels.c.access_token",
        ),
        (
            "  c: { type: discord, webhook_url: \"not a url\" }\n",
            "channels.c.webhook_url",
        ),
        (
            "  c: { type: bluesky, identifier: \"a.test\" }\n",
            "app_password",
        ),
        (
            "  c: { type: discord, webhook_url: \"https://d.test/api/webhooks/1/t\", forum: true, thread_id: \"1\" }\n",
            "channels.c.thread_id",
        ),
        (
            "  c: { type: discord, webhook_url: \"https://d.test/api/webhooks/1/t\", thread_id: \"general\" }\n",
            "channels.c.thread_id",
        ),
        (
            "  c: { type: slack, bot_token: \"xoxb-1\" }\n",
            "channels.c.channel",
        ),
        (
            "  c: { type: slack, webhook_url: \"https://hooks.slack.test/services/X\", bot_token: \"xoxb-1\", channel: \"C1\" }\n",
            "channels.c.bot_token",
        ),
        (
            "  c: { type: slack }\n",
            "channels.c.webhook_url",
        ),
    ];
    for (entry, key) in cases {
        let yaml = base.replace("channels:\n  log:", &format!("channels:\n{entry}  log:"));
        let err = candor::config::Config::from_yaml_with_env(
            &yaml,
            &candor::config::Overrides::default(),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(key), "{entry}: {err}");
        assert!(
            !err.contains("not a url"),
            "webhook URLs are secrets: {err}"
        );
    }
}

#[tokio::test]
async fn channel_test_command_sends_once_and_fails_loudly() {
    let m = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&dir, "sqlite://unused.db", None, None).replace(
        "channels:\n  log:",
        &format!("channels:\n{}  log:", discord_yaml(&m)),
    );
    let cfg = dir.path().join("candor.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let run = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
            .args(["--config", cfg.to_str().unwrap(), "channel", "test", "disc"])
            .env_remove("DATABASE_URL")
            .output()
            .await
            .unwrap()
    };
    let ok = Mock::given(method("POST"))
        .and(path("/api/webhooks/1234567890/tok-en"))
        .and(query_param("wait", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "777" })))
        .expect(1)
        .mount_as_scoped(&m)
        .await;
    let out = run().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("remote id: 777"), "{stdout}");
    assert!(stdout.contains("Test of the disc channel"), "{stdout}");
    drop(ok);

    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({ "message": "401: Unauthorized", "code": 0 })),
        )
        .mount(&m)
        .await;
    let out = run().await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401: Unauthorized"), "{stderr}");
    assert!(
        !stderr.contains("tok-en"),
        "the webhook URL is a secret: {stderr}"
    );
}

#[tokio::test]
async fn a_platform_that_does_not_answer_in_time_is_retried() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "1" }))
                .set_delay(std::time::Duration::from_secs(3600)),
        )
        .mount(&m)
        .await;
    let t = app(format!(
        "  disc: {{ type: discord, webhook_url: \"{}/api/webhooks/1/t\", limits: {{ timeout: 200ms }} }}\n",
        m.uri()
    ))
    .await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    let d = &deliveries_of(&t, "disc").await[0];
    assert_eq!(d.state.as_str(), "pending");
    assert!(
        d.last_error.as_deref().unwrap().contains("timed out"),
        "{d:?}"
    );
    t.expect_leftover("the platform never answers: the retry stays pending");
    t.finish().await;
}

/// `candor channel test` through the threaded kinds: a Slack bot's `chat.postMessage` (no
/// `thread_ts`: a test is no incident's reply) and a Discord forum, where the test starts a
/// post of its own.
#[tokio::test]
async fn channel_test_command_works_for_a_slack_bot_and_a_discord_forum() {
    let m = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let entries = format!(
        "  sbot: {{ type: slack, bot_token: \"xoxb-9\", channel: \"C0123456789\", api_url: \"{u}/api\" }}\n  \
         forum: {{ type: discord, forum: true, webhook_url: \"{u}/api/webhooks/1/t\" }}\n",
        u = m.uri()
    );
    let yaml = config_yaml(&dir, "sqlite://unused.db", None, None)
        .replace("channels:\n  log:", &format!("channels:\n{entries}  log:"));
    let cfg = dir.path().join("candor.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(header("authorization", "Bearer xoxb-9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "ok": true, "channel": "C0123456789", "ts": "1700000000.000100" }),
        ))
        .expect(1)
        .mount(&m)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/webhooks/1/t"))
        .and(query_param("wait", "true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "555", "channel_id": "555", "type": 0 })),
        )
        .expect(1)
        .mount(&m)
        .await;
    for (id, remote) in [("sbot", "1700000000.000100"), ("forum", "555")] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
            .args(["--config", cfg.to_str().unwrap(), "channel", "test", id])
            .env_remove("DATABASE_URL")
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("remote id: {remote}")), "{stdout}");
    }
    let slack = json_of(&requests_to(&m, "/api/chat.postMessage").await[0]);
    assert_eq!(slack["channel"], "C0123456789");
    assert!(slack.get("thread_ts").is_none());
    let discord = json_of(&requests_to(&m, "/api/webhooks/1/t").await[0]);
    assert_eq!(discord["thread_name"], "Test of the forum channel");
}
