//! What the console shows when something goes wrong: every error is the console's problem page
//! (with the operator's header), with a status and words that say whose fault it was. A broken
//! template is ours, not the database's; nothing half-done is kept.

use std::sync::Arc;

use candor::store::operators;
use candor::{App, ManualClock};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{config_yaml, fresh_database_url, parse_config, serve_app, t0, TestApp};

const PASSWORD: &str = "correct horse battery staple";
const OPERATOR: &str = "ana@acme.test";

/// The test app with `templates` (name, text) in its `site.templates_dir`.
async fn spawn_with_templates(templates: &[(&str, &str)]) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let database_url = fresh_database_url(&dir).await;
    let yaml = config_yaml(&dir, &database_url, None, None);
    let mut config = parse_config(&yaml);
    let overrides = dir.path().join("templates");
    for (name, text) in templates {
        let path = overrides.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    config.site.templates_dir = overrides;
    let clock = Arc::new(ManualClock::new(t0()));
    let app = App::builder(config)
        .clock(clock.clone())
        .build()
        .await
        .expect("app builds");
    serve_app(app, clock, dir, database_url, None, yaml).await
}

/// A signed-in browser: keeps cookies, follows no redirects.
struct Console<'a> {
    t: &'a TestApp,
    http: reqwest::Client,
    csrf: String,
}

fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker).expect("the page has a CSRF field") + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

impl<'a> Console<'a> {
    async fn sign_in(t: &'a TestApp) -> Self {
        let hash = operators::hash_password(PASSWORD).unwrap();
        let mut unit = candor::commands::Unit::begin(&t.app.db, None)
            .await
            .unwrap();
        operators::upsert(
            unit.tx(),
            OPERATOR,
            operators::Role::Responder,
            &hash,
            t.clock_now(),
        )
        .await
        .unwrap();
        unit.commit().await.unwrap();
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let html = http
            .get(t.url("/admin/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let form = [
            ("email", OPERATOR),
            ("password", PASSWORD),
            ("csrf", &csrf_in(&html)),
        ];
        let r = http
            .post(t.url("/admin/login"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in");
        let mut c = Console {
            t,
            http,
            csrf: String::new(),
        };
        c.csrf = csrf_in(&c.get("/admin/maintenance/new").await.1);
        c
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self.http.get(self.t.url(path)).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let mut all = form.to_vec();
        all.push(("csrf", &self.csrf));
        let r = self
            .http
            .post(self.t.url(path))
            .form(&all)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

/// The console's problem page: its layout with the operator, the title, a way back.
fn assert_problem_page(html: &str, title: &str) {
    assert!(html.contains(&format!("<h1>{title}</h1>")), "{html}");
    assert!(html.contains(OPERATOR), "the console's header: {html}");
    assert!(html.contains("Back to the dashboard"), "{html}");
}

#[tokio::test]
async fn a_broken_message_template_is_our_error_not_the_databases() {
    // Parses (so the app starts), fails when rendered.
    let t = spawn_with_templates(&[("messages/maintenance.txt.j2", "{{ no_such.thing }}")]).await;
    let c = Console::sign_in(&t).await;
    let (status, html) = c
        .post(
            "/admin/maintenance/new",
            &[
                ("title", "Cache flush"),
                ("starts_at", "2026-11-30T10:00"),
                ("end_mode", "duration"),
                ("duration", "1h"),
                ("action", "schedule"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_problem_page(&html, "Something went wrong");
    assert!(!html.contains("The database is unavailable"), "{html}");
    assert!(!html.contains("no_such"), "the cause is logged, not shown");
    // Nothing half-done: no window, nothing to deliver.
    let windows: Value = t.get("/api/v1/maintenances").await.json().await.unwrap();
    assert_eq!(windows["maintenances"], json!([]));
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn a_broken_console_page_is_the_problem_page() {
    let broken =
        "{% extends \"admin/base.html\" %}{% block main %}{{ no_such.thing }}{% endblock %}";
    let t = spawn_with_templates(&[("admin/audit.html", broken)]).await;
    let c = Console::sign_in(&t).await;
    let (status, html) = c.get("/admin/audit").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_problem_page(&html, "Something went wrong");
    assert!(!html.contains("The database is unavailable"), "{html}");
    // The other pages still work.
    assert_eq!(c.get("/admin").await.0, StatusCode::OK);
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn a_failing_write_is_the_problem_page_and_changes_nothing() {
    let t = spawn_with_templates(&[]).await;
    let c = Console::sign_in(&t).await;
    let id = t
        .declare(json!({ "title": "Slow API", "message": "Looking.", "impact": "minor" }))
        .await["id"]
        .as_i64()
        .unwrap();
    // The audit entry cannot be written, so the whole ownership change is rolled back.
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    sqlx::Executor::execute(&mut *conn, "ALTER TABLE audit_log RENAME TO audit_log_gone")
        .await
        .unwrap();
    drop(conn);
    let (status, html) = c.post(&format!("/admin/incidents/{id}/own"), &[]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_problem_page(&html, "Something went wrong");
    assert!(
        !html.contains("audit_log"),
        "the cause is logged, not shown"
    );
    assert_eq!(t.incident(id).await["owner"], Value::Null);
    t.dispatch_all().await;
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn ids_that_name_nothing_get_the_page_for_what_the_route_names() {
    let t = spawn_with_templates(&[]).await;
    let c = Console::sign_in(&t).await;
    for (path, title) in [
        ("/admin/incidents/abc", "No such incident"),
        ("/admin/incidents/0", "No such incident"),
        ("/admin/incidents/99", "No such incident"),
        ("/admin/maintenance/-3", "No such window"),
        ("/admin/maintenance/99", "No such window"),
    ] {
        let (status, html) = c.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_problem_page(&html, title);
    }
    let (status, html) = c.post("/admin/deliveries/x/retry", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem_page(&html, "No such delivery");
    t.assert_outbox_empty().await;
    t.finish().await;
}

/// `take_ownership` committed without waking this instance's workers; the unit wakes them.
#[tokio::test]
async fn taking_ownership_wakes_the_workers() {
    let t = spawn_with_templates(&[]).await;
    let c = Console::sign_in(&t).await;
    let id = t
        .declare(json!({ "title": "Slow API", "message": "Looking.", "impact": "minor" }))
        .await["id"]
        .as_i64()
        .unwrap();
    let before = *t.app.changes.borrow();
    let (status, _) = c.post(&format!("/admin/incidents/{id}/own"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(t.incident(id).await["owner"], OPERATOR);
    assert_ne!(*t.app.changes.borrow(), before, "the workers were woken");
    t.dispatch_all().await;
    t.assert_outbox_empty().await;
    t.finish().await;
}
