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

/// `candor completions bash | head`: the reader stops early (the script is larger than a pipe's
/// buffer, so the writer meets the closed pipe); that is a normal end, not a panic.
#[test]
fn completions_into_a_pipe_closed_early_exit_cleanly() {
    use std::io::Read;
    let mut child = candor()
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn shell_completions_are_generated() {
    let out = candor().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("incident"));
}

/// Runs the `candor` client against a test app with its token, as a script would.
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

mod scripts;
mod serve;
