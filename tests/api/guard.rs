//! The outbox guard every test ends with: `finish()` fails on deliveries the worker would still
//! send unless the test says why, and a test that forgets `finish()` fails too.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use serde_json::json;

use crate::helpers::*;

fn message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

async fn declared() -> TestApp {
    let t = spawn_app().await;
    t.declare(
        json!({ "title": "Slow logins", "impact": "minor", "message": "Looking.",
                      "components": { "web": "degraded_performance" } }),
    )
    .await;
    t
}

#[tokio::test]
async fn a_delivery_left_in_the_outbox_fails_the_test_and_is_named() {
    let t = declared().await;
    let failed = AssertUnwindSafe(t.finish()).catch_unwind().await;
    let msg = message(failed.expect_err("finish() passed with a pending delivery"));
    assert!(
        msg.contains("1 deliveries the worker would still send"),
        "{msg}"
    );
    assert!(
        msg.contains("to log (public): pending, 0 attempts"),
        "{msg}"
    );
    assert!(msg.contains("expect_leftover"), "{msg}");
}

#[tokio::test]
async fn a_test_that_forgets_finish_fails() {
    let t = spawn_app().await;
    let failed = std::panic::catch_unwind(AssertUnwindSafe(|| drop(t)));
    let msg = message(failed.expect_err("dropping an unfinished TestApp passed"));
    assert!(msg.contains("never called `t.finish().await`"), "{msg}");
}

#[tokio::test]
async fn a_stated_reason_lets_a_leftover_pass_and_a_stale_reason_fails() {
    let t = declared().await;
    t.expect_leftover("the worker is not run in this test");
    t.finish().await;

    let t = declared().await;
    t.dispatch_all().await;
    t.expect_leftover("the worker is not run in this test");
    let failed = AssertUnwindSafe(t.finish()).catch_unwind().await;
    let msg = message(failed.expect_err("a stale reason passed"));
    assert!(msg.contains("but the outbox is empty"), "{msg}");
}
