//! `candor maintenance ...` as scripts run it.

use serde_json::{json, Value};

use super::*;

async fn cli(t: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
        .env_remove("CANDOR_URL")
        .env_remove("CANDOR_TOKEN")
        .env("CANDOR_URL", t.url(""))
        .env("CANDOR_TOKEN", &t.token)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `candor maintenance ...` as a script runs it: CANDOR_URL/CANDOR_TOKEN, text or --json, and
/// exit codes to branch on.
#[tokio::test]
async fn maintenance_scripts_use_the_cli_and_branch_on_exit_codes() {
    let t = spawn_app_with(Options {
        extra: Some(
            "maintenance:\n  peak_hours:\n    - { name: \"Business hours\", days: [all], from: \"08:00\", to: \"20:00\", time_zone: UTC }\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    let (code, out, err) = cli(
        &t,
        &[
            "maintenance",
            "schedule",
            "--title",
            "Kernel patching",
            "--starts-at",
            "2026-11-24T09:00:00Z",
            "--duration",
            "1h",
            "--component",
            "api",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "#1 Kernel patching [scheduled] 2026-11-24T09:00:00Z to 2026-11-24T10:00:00Z"
        ),
        "{out}"
    );
    assert!(
        err.contains("warning:") && err.contains("Business hours"),
        "{err}"
    );

    // Moved out of business hours: no warning.
    let (code, _, err) = cli(
        &t,
        &[
            "maintenance",
            "update",
            "1",
            "--starts-at",
            "2026-11-24T02:00:00Z",
            "--ends-at",
            "2026-11-24T03:00:00Z",
            "--version",
            "1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    // The same version again is stale: exit 5.
    let (code, _, _) = cli(
        &t,
        &[
            "maintenance",
            "update",
            "1",
            "--title",
            "x",
            "--version",
            "1",
        ],
    )
    .await;
    assert_eq!(code, 5);
    // Bad input: exit 3, naming the field.
    let (code, _, err) = cli(
        &t,
        &[
            "maintenance",
            "schedule",
            "--title",
            "x",
            "--starts-at",
            "soon",
            "--duration",
            "1h",
        ],
    )
    .await;
    assert_eq!(code, 3);
    assert!(err.contains("starts_at"), "{err}");
    // No such window: exit 4.
    let (code, _, _) = cli(&t, &["maintenance", "show", "99"]).await;
    assert_eq!(code, 4);

    t.clock.set(at(24, 2, 0));
    assert_eq!(t.tick().await, 1);
    let (code, out, _) = cli(&t, &["--json", "maintenance", "list", "--state", "active"]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["maintenances"][0]["status"], "in_progress");
    // Statuspage's `verifying`, told to customers; other statuses have their own actions.
    let (code, _, err) = cli(&t, &["maintenance", "update", "1", "--status", "verifying"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&t, &["maintenance", "update", "1", "--status", "completed"]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("status"), "{err}");
    let active = page_json(&t, "/api/v2/scheduled-maintenances/active.json").await;
    assert_eq!(active["scheduled_maintenances"][0]["status"], "verifying");
    // Cancelling a started window is refused as invalid (exit 3); extending needs a reason.
    let (code, _, err) = cli(&t, &["maintenance", "cancel", "1"]).await;
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = cli(
        &t,
        &[
            "maintenance",
            "extend",
            "1",
            "--by",
            "30m",
            "--reason",
            "Reboots are slow today.",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&t, &["maintenance", "complete", "1"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("[completed]"), "{out}");
    let (code, _, _) = cli(&t, &["maintenance", "complete", "1"]).await;
    assert_eq!(code, 5, "already completed");
    let (code, out, _) = cli(&t, &["maintenance", "show", "1"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("Reboots are slow today."), "{out}");
    assert!(out.contains("checking that everything works"), "{out}");
    t.dispatch_all().await;
    t.finish().await;
}

/// A retried change carries the same Idempotency-Key (PATCH too), so the server does it once.
#[tokio::test]
async fn the_maintenance_cli_retries_with_the_same_idempotency_key() {
    use wiremock::{MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    mount_flaky(
        &server,
        "PATCH",
        "/api/v1/maintenances/7",
        ResponseTemplate::new(200).set_body_json(json!({
            "id": 7, "title": "T", "status": "scheduled", "version": 2,
            "scheduled_for": "2026-11-25T02:00:00Z", "scheduled_until": "2026-11-25T04:00:00Z",
            "warnings": [] })),
    )
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
        .env_remove("CANDOR_URL")
        .env_remove("CANDOR_TOKEN")
        .args([
            "--url",
            &server.uri(),
            "--token",
            "t",
            "maintenance",
            "update",
            "7",
            "--title",
            "T",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_retried_with_one_key(&server).await;
    let reqs = server.received_requests().await.unwrap();
    let sent: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(sent, json!({ "title": "T" }), "only what was given is sent");
}
