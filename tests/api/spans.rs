//! The spans a failing test's logs (and production's) are read by: one per command, naming its
//! actor and incident, and one per delivery attempt, naming the delivery, channel and kind.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::helpers::*;

/// A log writer into memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn commands_and_delivery_attempts_run_in_spans_naming_who_and_what() {
    // The test's runtime polls every task (the server's too) on this thread, so a subscriber
    // set for this thread sees the app's spans, and no other test's.
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_env_filter("candor=info")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let t = spawn_app().await;
    let id = t
        .declare(
            json!({ "title": "Slow logins", "impact": "major", "message": "Looking.",
                         "components": { "web": "degraded_performance" } }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "Found it.", "status": "identified" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    t.dispatch_all().await;
    t.advance_to(30); // the promised next update is due: the scheduler posts a holding update
    assert_eq!(t.tick().await, 1);
    t.dispatch_all().await;

    let text = logs.text();
    for span in [
        "declare{actor=token:ci-script}".to_string(),
        format!("post_update{{actor=token:ci-script incident.id={id}}}"),
        format!("scheduled{{actor=\"candor\" incident.id={id} action=\"holding\"}}"),
        format!(
            "deliver{{delivery.id=1 incident.id={id} channel=\"log\" attempt=1 kind=Operator}}"
        ),
        format!("incident.id={id} channel=\"log\" attempt=1 kind=Scheduled}}"),
    ] {
        assert!(text.contains(&span), "no span {span} in:\n{text}");
    }
    t.finish().await;
}
