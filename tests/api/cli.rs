//! The `candor` binary as a newcomer runs it: check-config, token create, serve, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use candor::Clock;
use serde_json::{json, Value};

use crate::helpers::*;

/// Kills the server if the test fails before stopping it, so no process outlives its test.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    fn get(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("child present")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn candor() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_candor"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DATABASE_URL")
        .env_remove("CANDOR_CONFIG");
    c
}

#[test]
fn check_config_accepts_the_shipped_file() {
    let out = candor().args(["check-config"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/candor.yaml"))
            .unwrap();
    let cases = [
        (
            shipped.replace("  tick: 1s", "  tick: 1s\n  tock: 2s"),
            "scheduler",
            "tock",
        ),
        (
            shipped.replace(
                "major: { update_every: 30m }",
                "major: { update_every: often }",
            ),
            "policies.major.update_every",
            "often",
        ),
        (
            shipped.replace("group: platform", "group: plaform"),
            "components[0].group",
            "plaform",
        ),
        (
            shipped.replace("time_zone: \"UTC\"", "time_zone: \"Mars/Olympus\""),
            "site.time_zone",
            "Mars/Olympus",
        ),
        (
            shipped.replace("channels: [ops-log]", "channels: [pager]"),
            "ops.channels[0]",
            "pager",
        ),
    ];
    for (text, key, word) in cases {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, text).unwrap();
        let out = candor()
            .arg("--config")
            .arg(&path)
            .arg("check-config")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(key) && err.contains(word),
            "expected `{key}` and `{word}` in: {err}"
        );
    }
    let out = candor()
        .args(["--config", "/nonexistent/candor.yaml", "check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/candor.yaml"));
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["check-config", "--help"],
        vec!["token", "create", "--help"],
    ] {
        let out = candor().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

/// The README's first command: `serve` with the shipped config (here on a fresh database and a
/// free port), a token from `token create`, one incident declared over HTTP, its line on the
/// log channel (stdout), then a clean exit on SIGTERM.
#[tokio::test]
async fn serve_with_the_shipped_config_shows_a_declared_incident_through_the_api_and_the_log_channel(
) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");

    let out = candor()
        .env("DATABASE_URL", &db)
        .args(["token", "create", "--name", "readme"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_string();
    assert!(
        token.starts_with("candor_"),
        "token on the last line: {stdout}"
    );

    let mut child = KillOnDrop(Some(
        candor()
            .env("DATABASE_URL", &db)
            .args(["serve", "--listen", &listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let stdout = child.get().stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    // Wait (bounded) for the server to answer.
    let mut up = false;
    for _ in 0..100 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not become ready");

    let r = http
        .post(format!("{base}/api/v1/incidents"))
        .bearer_auth(&token)
        .json(&json!({ "title": "Website down", "impact": "critical", "message": "The site returns 503.",
                       "components": { "web": "major_outage" }, "eta_in": "30m" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = rx.recv().await {
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["channel"] == "log" && v["incident_id"] == id {
                return v;
            }
        }
        panic!("stdout closed");
    })
    .await
    .expect("the log channel printed the incident");
    assert_eq!(line["kind"], "operator");
    assert!(line["text"]
        .as_str()
        .unwrap()
        .starts_with("Investigating: Website down"));

    // The line is written before the outcome is recorded; wait (bounded) for the record.
    let mut state = Value::Null;
    for _ in 0..100 {
        let shown: Value = http
            .get(format!("{base}/api/v1/incidents/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = shown["updates"][0]["deliveries"][0]["state"].clone();
        if state == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "delivered");

    // The status page shows it too (rebuilt after the commit, well within a second).
    let mut page = String::new();
    for _ in 0..100 {
        page = http
            .get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("Website down") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        page.contains("Website down") && page.contains("Major Service Outage"),
        "{page}"
    );

    // SIGTERM: a clean, prompt exit.
    let pid = child.get().id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut child = child.0.take().unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    outbox_settles(&db).await;
}

/// The outbox check of a test that runs `candor serve` itself: waits (bounded) until the server
/// has recorded what it sent (a real process records the outcome just after sending), then
/// fails if anything is left that a worker would still send.
async fn outbox_settles(db: &str) {
    let mut left = Vec::new();
    for _ in 0..100 {
        left = leftover_deliveries(db, candor::SystemClock.now()).await;
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the server left deliveries it would still send:\n{}",
        left.join("\n")
    );
}

/// `--role web` serves pages and the API but sends nothing; `--role worker` on the same database
/// sends what the web instance queued, and answers only health checks.
#[tokio::test]
async fn web_and_worker_roles_split_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;
    let out = candor()
        .env("DATABASE_URL", &db)
        .args(["token", "create", "--name", "roles"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let http = reqwest::Client::new();

    let start = |role: &str| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = candor()
            .env("DATABASE_URL", &db)
            .args([
                "serve",
                "--role",
                role,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (KillOnDrop(Some(child)), format!("http://127.0.0.1:{port}"))
    };
    let ready = |base: String| {
        let http = http.clone();
        async move {
            for _ in 0..100 {
                if http
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("{base} did not become ready");
        }
    };

    let (_web, web) = start("web");
    ready(web.clone()).await;
    let r = http
        .post(format!("{web}/api/v1/incidents"))
        .bearer_auth(&token)
        .json(&json!({ "title": "Search is slow", "message": "Looking.", "eta_in": "1h" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let (mut worker, worker_base) = start("worker");
    ready(worker_base.clone()).await;
    assert_eq!(
        http.get(format!("{worker_base}/"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "a worker serves no pages"
    );
    let stdout = worker.get().stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("\"channel\":\"log\""))
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .expect("worker delivered")
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        v["incident_id"], id,
        "the worker sent what the web instance queued"
    );
    outbox_settles(&db).await;
}

pub(crate) async fn client(t: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
        .env_remove("CANDOR_URL")
        .env_remove("CANDOR_TOKEN")
        .arg("--url")
        .arg(t.url(""))
        .arg("--token")
        .arg(&t.token)
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

#[test]
fn shell_completions_are_generated() {
    let out = candor().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("incident"));
}
