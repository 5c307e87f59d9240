//! The command line's own writes (tokens, operators) are audited under the system user who ran
//! them, and `channel test` / `check-config` handle the email channel as they say they do.

use std::io::Write;
use std::process::{Command, Stdio};

use candor::store::{audit, Db};

use crate::email::start_sink;
use crate::helpers::*;

fn candor(database_url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_candor"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("CANDOR_CONFIG")
        .env("DATABASE_URL", database_url)
        .env("USER", "alice")
        .env("LOGNAME", "alice");
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The audit log, oldest first, as (actor, action, detail).
async fn audit_log(database_url: &str) -> Vec<(String, String, serde_json::Value)> {
    let db = Db::connect(database_url, 1).await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let mut rows: Vec<_> = audit::recent(&mut conn, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.detail))
        .collect();
    rows.reverse();
    drop(conn);
    db.close().await;
    rows
}

#[tokio::test]
async fn token_create_and_revoke_are_audited_under_the_system_user() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;

    let (code, out, err) = run(candor(&db).args(["token", "create", "--name", "deploy"]));
    assert_eq!(code, 0, "{err}");
    let token = out.lines().last().unwrap();
    assert!(token.starts_with("candor_"), "{out}");
    // A second token of the same name is refused, naming it; nothing more is audited.
    let (code, _, err) = run(candor(&db).args(["token", "create", "--name", "deploy"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("a token named `deploy` already exists"),
        "{err}"
    );
    let (code, _, err) = run(candor(&db).args([
        "token",
        "create",
        "--name",
        "x",
        "--scope",
        "read,incidents",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("--scope: unknown scope `incidents`"), "{err}");
    let (code, _, err) = run(candor(&db).args(["token", "create", "--name", " "]));
    assert_eq!(code, 1);
    assert!(err.contains("--name must be 1-100 characters"), "{err}");

    let (code, out, err) = run(candor(&db).args(["token", "revoke", "--name", "deploy"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "revoked `deploy`");
    let (code, _, err) = run(candor(&db).args(["token", "revoke", "--name", "deploy"]));
    assert_eq!(code, 1);
    assert!(err.contains("no active token named `deploy`"), "{err}");

    let log = audit_log(&db).await;
    let actions: Vec<(&str, &str, &serde_json::Value)> = log
        .iter()
        .map(|(a, b, d)| (a.as_str(), b.as_str(), d))
        .collect();
    assert_eq!(
        actions,
        vec![
            (
                "cli:alice",
                "token.create",
                &serde_json::json!({ "name": "deploy",
                    "scopes": ["read", "incidents:write", "maintenance:write", "alerts:write"] })
            ),
            (
                "cli:alice",
                "token.revoke",
                &serde_json::json!({ "name": "deploy" })
            ),
        ]
    );
    assert!(
        !log.iter().any(|(_, _, d)| d.to_string().contains(token)),
        "the token itself is never audited"
    );
}

#[tokio::test]
async fn operator_add_and_reset_are_audited_under_the_system_user() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;
    let add = |role: &str, password: &str| {
        let mut child = candor(&db)
            .args([
                "operator",
                "add",
                "--email",
                "Ops@Acme.test",
                "--role",
                role,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = add("responder", "correct horse battery");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "added operator ops@acme.test (responder)");
    let (code, out, err) = add("admin", "another long password");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("updated operator ops@acme.test (admin)"),
        "{out}"
    );
    let (code, _, err) = add("admin", "short");
    assert_eq!(code, 1);
    assert!(
        err.contains("the password must be at least 12 characters"),
        "{err}"
    );

    let (code, out, _) = run(candor(&db).args(["operator", "list"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("ops@acme.test\tadmin\tadded "), "{out}");

    let log = audit_log(&db).await;
    let rows: Vec<(&str, &str, &serde_json::Value)> = log
        .iter()
        .map(|(a, b, d)| (a.as_str(), b.as_str(), d))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "cli:alice",
                "operator.add",
                &serde_json::json!({ "email": "ops@acme.test", "role": "responder" })
            ),
            (
                "cli:alice",
                "operator.reset",
                &serde_json::json!({ "email": "ops@acme.test", "role": "admin" })
            ),
        ]
    );
    assert!(
        !log.iter().any(|(_, _, d)| d.to_string().contains("horse")),
        "passwords are never audited"
    );
}

/// The shipped config with an email channel added (after `log:`), in a file of `dir`.
fn config_with_email(dir: &tempfile::TempDir, email: &str) -> std::path::PathBuf {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/candor.yaml"))
            .unwrap();
    let text = shipped.replacen(
        "\nchannels:\n",
        &format!("\nchannels:\n  mail:\n    type: email\n{email}"),
        1,
    );
    assert_ne!(text, shipped, "the shipped config has a `channels:` key");
    let path = dir.path().join("email.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const TOKEN_SECRET: &str = "test-secret-that-is-long-enough-0123456789";

/// `candor channel test` on an email channel panicked (exit 101, "every configured channel is
/// built"): email channels are built by the app, not by `channels::build`. It now sends one
/// mail to the channel's own From address, never to subscribers, and says so.
#[tokio::test]
async fn channel_test_on_an_email_channel_mails_the_sender_address_instead_of_panicking() {
    let Some(sink) = start_sink() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;
    let config = config_with_email(
        &dir,
        &format!(
            "    smtp_url: \"smtp://127.0.0.1:{}\"\n    from: \"Acme Status <status@acme.test>\"\n    token_secret: \"{TOKEN_SECRET}\"\n",
            sink.port
        ),
    );
    let (code, out, err) = run(candor(&db)
        .arg("--config")
        .arg(&config)
        .args(["channel", "test", "mail"]));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("sent through `mail` (email"), "{out}");
    assert!(out.contains("To: status@acme.test\n"), "{out}");
    assert!(out.contains("subscribers were not"), "{out}");
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to(), "status@acme.test");
}

/// `check-config` accepted a password without a user in `smtp_url`, which `serve` then
/// refused; it now refuses it too, naming the key.
#[test]
fn check_config_refuses_an_smtp_password_without_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let email = |url: &str| {
        format!(
            "    smtp_url: \"{url}\"\n    password: \"hunter2-secret\"\n    from: \"Acme Status <status@acme.test>\"\n    token_secret: \"{TOKEN_SECRET}\"\n"
        )
    };
    let config = config_with_email(&dir, &email("smtp://mail.acme.test:587?tls=required"));
    let (code, out, err) = run(candor("sqlite://unused.db")
        .arg("--config")
        .arg(&config)
        .arg("check-config"));
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("channels.mail.password"), "{err}");
    assert!(err.contains("smtp://USER@host"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    let config = config_with_email(&dir, &email("smtp://bot@mail.acme.test:587?tls=required"));
    let (code, out, err) = run(candor("sqlite://unused.db")
        .arg("--config")
        .arg(&config)
        .arg("check-config"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("OK"), "{out}");
}
