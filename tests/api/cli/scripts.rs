//! `candor incident ...` as scripts run it.

use super::*;

/// The script's view: `candor incident ...` with exit codes it can branch on.
#[tokio::test]
async fn incident_scripts_use_the_cli_and_branch_on_exit_codes() {
    let t = spawn_app().await;
    let (code, out, err) = client(
        &t,
        &[
            "incident",
            "open",
            "--title",
            "Backups failing",
            "--message",
            "Nightly backups did not run.",
            "--impact",
            "minor",
            "--component",
            "api=degraded_performance",
            "--eta-in",
            "2h",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("#1 Backups failing [minor impact, investigating]"),
        "{out}"
    );
    assert!(out.contains("estimate: 2026-11-23T14:00:00Z"), "{out}");

    let (code, out, _) = client(&t, &["--json", "incident", "show", "1"]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["components"][0]["status"], "degraded_performance");

    let (code, _, err) = client(
        &t,
        &[
            "incident",
            "update",
            "1",
            "--message",
            "Storage quota hit; raising it.",
            "--status",
            "identified",
            "--eta-in",
            "1h",
            "--eta-reason",
            "quota fix is quick",
            "--version",
            "1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    // The same version again is stale now: exit 5.
    let (code, _, err) = client(
        &t,
        &[
            "incident",
            "update",
            "1",
            "--message",
            "x",
            "--version",
            "1",
        ],
    )
    .await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("version 2"), "{err}");
    // Invalid input: exit 3, with the server's words.
    let (code, _, err) = client(
        &t,
        &[
            "incident",
            "update",
            "1",
            "--message",
            "x",
            "--impact",
            "severe",
        ],
    )
    .await;
    assert_eq!(code, 3);
    assert!(err.contains("impact"), "{err}");
    // No such incident: exit 4. Bad arguments: exit 2.
    assert_eq!(client(&t, &["incident", "show", "999"]).await.0, 4);
    assert_eq!(
        client(
            &t,
            &[
                "incident",
                "update",
                "1",
                "--message",
                "x",
                "--component",
                "api"
            ]
        )
        .await
        .0,
        2
    );

    let (code, _, _) = client(
        &t,
        &["incident", "resolve", "1", "--message", "Backups ran."],
    )
    .await;
    assert_eq!(code, 0);
    let (code, out, _) = client(&t, &["incident", "list", "--state", "resolved"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("#1 Backups failing") && out.contains("resolved: 2026-11-23T12:00:00Z"),
        "{out}"
    );
    let (_, out, _) = client(&t, &["incident", "list"]).await;
    assert_eq!(out.trim(), "no incidents");

    // A wrong token: exit 6.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
        .args([
            "--url",
            &t.url(""),
            "--token",
            "candor_wrong",
            "incident",
            "list",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    t.dispatch_all().await;
    t.finish().await;
}

/// A retried write carries the same Idempotency-Key, so the server does it once.
#[tokio::test]
async fn the_cli_retries_with_the_same_idempotency_key() {
    use wiremock::{MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    mount_flaky(
        &server,
        "POST",
        "/api/v1/incidents",
        ResponseTemplate::new(201).set_body_json(json!({ "id": 7, "title": "T", "impact": "minor",
            "status": "investigating", "version": 1, "eta": null, "next_update_at": null, "resolved_at": null })),
    )
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
        .args([
            "--url",
            &server.uri(),
            "--token",
            "t",
            "incident",
            "open",
            "--title",
            "T",
            "--message",
            "M",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_retried_with_one_key(&server).await;

    // Nobody listening: exit 8 after its retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "incident",
            "list",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
}
