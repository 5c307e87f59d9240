//! The operator console over HTTP, as a browser uses it: a cookie-keeping client, forms with
//! CSRF tokens, redirects looked at rather than followed.

use std::time::Duration;

use candor::http::admin::{OPEN_ROUTES, PROTECTED_ROUTES};
use candor::store::{audit, operators};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Options, TestApp};

const PASSWORD: &str = "correct horse battery staple";

pub(crate) async fn add_operator(t: &TestApp, email: &str, role: operators::Role) {
    let hash = operators::hash_password(PASSWORD).unwrap();
    let mut tx = t.app.db.begin_write().await.unwrap();
    operators::upsert(&mut tx, email, role, &hash, t.clock_now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// A browser: keeps cookies, does not follow redirects (the tests look at them).
pub(crate) struct Browser<'a> {
    t: &'a TestApp,
    http: reqwest::Client,
}

fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a CSRF field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

impl<'a> Browser<'a> {
    pub(crate) fn new(t: &'a TestApp) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { t, http }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.t.url(path)).send().await.unwrap()
    }

    pub(crate) async fn page(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.unwrap()
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.t.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Posts `form` with the CSRF token of the page at `from`.
    pub(crate) async fn submit(
        &self,
        from: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = csrf_in(&self.page(from).await);
        let mut all = form.to_vec();
        all.push(("csrf", &csrf));
        self.post(path, &all).await
    }

    async fn login_with(&self, email: &str, password: &str) -> reqwest::Response {
        let csrf = csrf_in(&self.page("/admin/login").await);
        self.post(
            "/admin/login",
            &[("email", email), ("password", password), ("csrf", &csrf)],
        )
        .await
    }

    pub(crate) async fn login(&self, email: &str) {
        let r = self.login_with(email, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in as {email}");
        assert_eq!(r.headers()["location"], "/admin");
    }
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn audit_actions(t: &TestApp) -> Vec<(String, String)> {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    audit::recent(&mut conn, 500)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.actor, e.action))
        .collect()
}

pub(crate) async fn declare_form<'a>(b: &Browser<'a>, title: &str, eta_in: &str) -> i64 {
    let r = b
        .submit(
            "/admin/incidents/new",
            "/admin/incidents/new",
            &[
                ("title", title),
                ("impact", "major"),
                ("status", "investigating"),
                ("component.api", "partial_outage"),
                ("component.web", ""),
                ("message", "Some API calls fail; we are looking into it."),
                ("eta_mode", "in"),
                ("eta_in", eta_in),
                ("eta_at", ""),
                ("next_update_in", "20m"),
                ("action", "declare"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    location(&r).rsplit('/').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn no_console_route_answers_without_a_session() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    let id = t
        .declare(json!({ "title": "Slow API", "message": "Looking.", "impact": "minor" }))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(id, 1, "the route list's sample ids point at this incident");
    let r = t
        .post(
            "/api/v1/maintenances",
            &json!({ "title": "Database upgrade", "starts_at": "2026-11-30T02:00:00Z", "duration": "1h" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let w: Value = r.json().await.unwrap();
    assert_eq!(w["id"], 2, "the route list's sample window is this one");
    for (method, path) in PROTECTED_ROUTES {
        // Anonymous, and with the API's bearer token (which opens the API, not the console).
        for bearer in [false, true] {
            let mut req = match *method {
                "GET" => b.http.get(t.url(path)),
                _ => b.http.post(t.url(path)).form(&[("message", "x")]),
            };
            if bearer {
                req = req.bearer_auth(&t.token);
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            assert!(
                status == StatusCode::SEE_OTHER || status == StatusCode::UNAUTHORIZED,
                "{method} {path} (bearer: {bearer}) answered {status} without a session"
            );
            assert!(
                location(&r).starts_with("/admin/login"),
                "{method} {path} should send to sign-in"
            );
            let body = r.text().await.unwrap();
            assert!(!body.contains("Slow API"), "{method} {path} leaked data");
        }
    }
    // The sign-in page itself is open, and leads back where the operator was going.
    let r = b.get("/admin/incidents/1").await;
    assert_eq!(location(&r), "/admin/login?next=%2Fadmin%2Fincidents%2F1");
    assert!(OPEN_ROUTES.contains(&("GET", "/admin/login")));
    let r = b.login_with("ana@acme.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Signed in, every GET route answers (so the list is the real set of pages).
    for (method, path) in PROTECTED_ROUTES {
        if *method == "GET" {
            let path = if *path == "/admin/estimates" {
                "/admin/estimates?impact=minor"
            } else {
                path
            };
            let r = b.get(path).await;
            assert_eq!(r.status(), 200, "GET {path} signed in");
        }
    }
    // Cookies are HttpOnly and SameSite, and Secure since the public URL is https.
    let fresh = Browser::new(&t);
    let r = fresh.get("/admin/login").await;
    let before = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let csrf = csrf_in(&r.text().await.unwrap());
    let r = fresh
        .post(
            "/admin/login",
            &[
                ("email", "ana@acme.test"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("candor_console="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/admin"] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    // Signing in gives a new session id, so one planted before sign-in is worth nothing.
    let id_of = |c: &str| c.split(';').next().unwrap().to_string();
    assert_ne!(id_of(&before), id_of(&cookie));
    // Signing out ends the session: the same cookie opens nothing any more.
    let r = fresh.submit("/admin", "/admin/logout", &[]).await;
    assert_eq!(location(&r), "/admin/login");
    let r = fresh.get("/admin").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    // The sign-in form itself needs the token.
    b.page("/admin/login").await;
    let r = b
        .post(
            "/admin/login",
            &[("email", "ana@acme.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    b.login("ana@acme.test").await;
    let fields = [
        ("title", "Checkout down"),
        ("impact", "major"),
        ("message", "Looking."),
        ("eta_mode", "unknown"),
        ("action", "declare"),
    ];
    let r = b.post("/admin/incidents/new", &fields).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Form refused"));
    let mut forged = fields.to_vec();
    forged.push(("csrf", "not-the-token"));
    let r = b.post("/admin/incidents/new", &forged).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another session's token is no good either.
    let other = Browser::new(&t);
    let other_token = csrf_in(&other.page("/admin/login").await);
    let mut foreign = fields.to_vec();
    foreign.push(("csrf", &other_token));
    assert_eq!(
        b.post("/admin/incidents/new", &foreign).await.status(),
        StatusCode::FORBIDDEN
    );
    let list: Value = t
        .get("/api/v1/incidents?state=all")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["incidents"].as_array().unwrap().len(), 0, "{list}");
    // With the session's own token it goes through.
    let r = b
        .submit("/admin/incidents/new", "/admin/incidents/new", &fields)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let list: Value = t.get("/api/v1/incidents").await.json().await.unwrap();
    assert_eq!(list["incidents"][0]["title"], "Checkout down");
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn repeated_bad_passwords_lock_the_account_for_a_while() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    for i in 1..operators::MAX_FAILURES {
        let r = b.login_with("ana@acme.test", "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(r.text().await.unwrap().contains("do not match"));
    }
    let r = b.login_with("ana@acme.test", "guess").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Locked: even the right password is refused, from this address or as this account.
    let r = b.login_with("ana@acme.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("locked until"));
    t.advance(Duration::from_secs(10 * 60));
    assert_eq!(
        b.login_with("ana@acme.test", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The lock lifts after the window; the right password then works.
    t.advance(Duration::from_secs(6 * 60));
    b.login("ana@acme.test").await;
    let actions = audit_actions(&t).await;
    let failed = actions
        .iter()
        .filter(|(_, a)| a == "console.sign_in_failed")
        .count();
    assert_eq!(failed as i64, operators::MAX_FAILURES);
    assert!(actions.contains(&("operator:ana@acme.test".into(), "console.sign_in".into())));
    // A session ends after 12 hours without a request (by Candor's clock).
    assert_eq!(b.get("/admin").await.status(), 200);
    t.advance(Duration::from_secs(11 * 3600));
    assert_eq!(
        b.get("/admin").await.status(),
        200,
        "activity keeps it alive"
    );
    t.advance(Duration::from_secs(12 * 3600 + 60));
    assert_eq!(b.get("/admin").await.status(), StatusCode::SEE_OTHER);
    t.finish().await;
}

#[tokio::test]
async fn two_concurrent_edits_give_one_success_and_one_clear_refusal() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    add_operator(&t, "ben@acme.test", operators::Role::Responder).await;
    let ana = Browser::new(&t);
    let ben = Browser::new(&t);
    ana.login("ana@acme.test").await;
    ben.login("ben@acme.test").await;
    let id = declare_form(&ana, "Checkout errors", "1h").await;
    let page = format!("/admin/incidents/{id}");
    let post = format!("/admin/incidents/{id}/update");
    // Both open the incident at the same version, then post at once.
    let (ana_csrf, ben_csrf) = (
        csrf_in(&ana.page(&page).await),
        csrf_in(&ben.page(&page).await),
    );
    let form = |who: &'static str, csrf: String| {
        vec![
            ("csrf", csrf),
            ("version", "1".to_string()),
            ("message", format!("{who}: the fix is rolling out.")),
            ("eta_mode", "keep".to_string()),
        ]
    };
    let (a, b) = tokio::join!(
        ana.http
            .post(t.url(&post))
            .form(&form("Ana", ana_csrf))
            .send(),
        ben.http
            .post(t.url(&post))
            .form(&form("Ben", ben_csrf))
            .send(),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::CONFLICT]);
    let (winner, loser) = if a.status() == StatusCode::SEE_OTHER {
        ("Ana", b)
    } else {
        ("Ben", a)
    };
    let refused = loser.text().await.unwrap();
    assert!(
        refused.contains("Someone else changed this incident"),
        "{refused}"
    );
    assert!(
        refused.contains(&format!("{winner}: the fix is rolling out.")),
        "the refusal shows the other person's update"
    );
    let loser_name = if winner == "Ana" { "Ben" } else { "Ana" };
    assert!(
        refused.contains(&format!(
            ">{loser_name}: the fix is rolling out.</textarea>"
        )),
        "the refused words are kept in the form"
    );
    // Exactly one update was posted, never both.
    let inc = t.incident(id).await;
    assert_eq!(inc["version"], 2);
    assert_eq!(t.updates_of_kind(id, "operator").await.len(), 2);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn every_console_action_lands_in_the_audit_log() {
    let t = spawn_app_with(Options {
        webhook: true,
        ..Options::default()
    })
    .await;
    let mock = t.mock.as_ref().unwrap();
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(400).set_body_string("bad payload"))
        .mount(mock)
        .await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    add_operator(&t, "ben@acme.test", operators::Role::Admin).await;
    let ana = Browser::new(&t);
    let ben = Browser::new(&t);
    ana.login("ana@acme.test").await;
    ben.login("ben@acme.test").await;
    let id = declare_form(&ana, "Checkout errors", "1h").await;
    let page = format!("/admin/incidents/{id}");
    // A revised ETA needs a reason.
    let r = ana
        .submit(
            &page,
            &format!("/admin/incidents/{id}/update"),
            &[
                ("version", "1"),
                ("message", "Slower than hoped."),
                ("eta_mode", "in"),
                ("eta_in", "2h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("eta_reason"));
    let r = ana
        .submit(
            &page,
            &format!("/admin/incidents/{id}/update"),
            &[
                ("version", "1"),
                ("message", "Slower than hoped."),
                ("eta_mode", "in"),
                ("eta_in", "2h"),
                ("eta_reason", "The restore is slower"),
                ("status", "identified"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let inc = t.incident(id).await;
    assert_eq!(inc["status"], "identified");
    // Ben takes ownership.
    let r = ben
        .submit("/admin", &format!("/admin/incidents/{id}/own"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(t.incident(id).await["owner"], "ben@acme.test");
    // The webhook refuses the payload: its deliveries die; the dashboard lists them.
    t.dispatch_all().await;
    let dash = ben.page("/admin").await;
    assert!(
        dash.contains("Retry now"),
        "dead deliveries are offered a retry"
    );
    assert!(dash.contains("bad payload"));
    let dead_id = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        candor::store::deliveries::troubled(&mut conn, 10)
            .await
            .unwrap()[0]
            .1
            .id
    };
    let r = ben
        .submit(
            "/admin",
            &format!("/admin/deliveries/{dead_id}/retry"),
            &[("back", &page)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), page);
    // Retried at once: pending again, due now.
    assert_eq!(t.unfinished_deliveries().await, 1);
    // A second retry of the same delivery is refused plainly.
    let r = ben
        .submit("/admin", &format!("/admin/deliveries/{dead_id}/retry"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v = t.incident(id).await["version"]
        .as_i64()
        .unwrap()
        .to_string();
    let r = ben
        .submit(
            &page,
            &format!("/admin/incidents/{id}/resolve"),
            &[("version", &v), ("message", "Fixed.")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(t.incident(id).await["status"], "resolved");
    let r = ana.submit("/admin", "/admin/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let actions = audit_actions(&t).await;
    for (actor, action) in [
        ("operator:ana@acme.test", "console.sign_in"),
        ("operator:ana@acme.test", "incident.declare"),
        ("operator:ana@acme.test", "incident.update"),
        ("operator:ben@acme.test", "incident.take_ownership"),
        ("operator:ben@acme.test", "delivery.retry"),
        ("operator:ben@acme.test", "incident.resolve"),
        ("operator:ana@acme.test", "console.sign_out"),
    ] {
        assert!(
            actions.contains(&(actor.to_string(), action.to_string())),
            "{actor} {action} missing from {actions:?}"
        );
    }
    // The updates name the operator, and the ETA revision keeps its reason.
    let inc = t.incident(id).await;
    assert!(inc["updates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["author"] != "token:ci-script"));
    let audit_page = ben.page("/admin/audit").await;
    for needle in [
        "incident.take_ownership",
        "delivery.retry",
        "operator:ana@acme.test",
        // Every entry carries its date.
        ">Mon 23 Nov, ",
    ] {
        assert!(audit_page.contains(needle), "audit page lacks {needle}");
    }
    let incident_page = ben.page(&page).await;
    assert!(incident_page.contains("The restore is slower"));
    t.dispatch_all().await;
    t.finish().await;
}

/// Seeds resolved major incidents: (first estimate, actual) in minutes, and components.
async fn seed(t: &TestApp, history: &[(i64, i64, &str)]) {
    for (estimate, actual, component) in history {
        let inc = t
            .declare(json!({
                "title": "Past outage", "message": "Looking.", "impact": "major",
                "eta_in": format!("{estimate}m"), "components": { *component: "major_outage" },
            }))
            .await;
        t.advance(Duration::from_secs(*actual as u64 * 60));
        let r = t
            .post(
                &format!("/api/v1/incidents/{}/resolve", inc["id"]),
                &json!({ "message": "Fixed." }),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

#[tokio::test]
async fn estimates_come_from_the_seeded_history() {
    let t = spawn_app().await;
    // Five on the API, each taking twice its first estimate; one on the website, quick.
    seed(
        &t,
        &[
            (15, 30, "api"),
            (30, 60, "api"),
            (45, 90, "api"),
            (60, 120, "api"),
            (120, 240, "api"),
            (20, 20, "web"),
        ],
    )
    .await;
    let r = t.get("/api/v1/estimates?impact=major&eta_in=1h").await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["scope"], "impact");
    assert_eq!(e["sample_size"], 6);
    assert_eq!(e["median_minutes"], 75.0);
    assert_eq!(e["p90_minutes"], 240.0);
    // Ratios 2,2,2,2,2,1: median 2.
    assert_eq!(e["median_overrun_ratio"], 2.0);
    assert_eq!(e["suggested_minutes"], 120.0);
    assert!(
        e["explanation"]
            .as_str()
            .unwrap()
            .contains("your 1 hour becomes 2 hours"),
        "{e}"
    );
    // Narrowed to the API's five.
    let e: Value = t
        .get("/api/v1/estimates?impact=major&components=api")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(e["scope"], "components");
    assert_eq!(e["sample_size"], 5);
    assert_eq!(e["median_minutes"], 90.0);
    // Too few on the website alone: falls back to every major incident.
    let e: Value = t
        .get("/api/v1/estimates?impact=major&components=web")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(e["scope"], "impact");
    // No minor history at all.
    let e: Value = t
        .get("/api/v1/estimates?impact=minor")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(e["scope"], "none");
    assert_eq!(e["median_minutes"], Value::Null);
    // Bad input names the field; the API needs its bearer token.
    let r = t.get("/api/v1/estimates?impact=huge").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("impact"));
    let r = t
        .get("/api/v1/estimates?impact=major&components=nope")
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown component `nope`"));
    let r = t
        .http
        .get(t.url("/api/v1/estimates?impact=major"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The declare form's preview step (no script) shows the same hint and each channel's text.
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let r = b
        .submit(
            "/admin/incidents/new",
            "/admin/incidents/new",
            &[
                ("title", "Checkout errors"),
                ("impact", "major"),
                ("message", "Some payments fail."),
                ("eta_mode", "in"),
                ("eta_in", "1h"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("your 1 hour becomes 2 hours"),
        "calibration hint shown"
    );
    assert!(
        html.contains("data-channel=\"log\""),
        "the log channel's preview"
    );
    assert!(html.contains("Some payments fail."));
    // (minijinja escapes `/` in HTML as `&#x2f;`.)
    assert!(
        html.contains("incidents&#x2f;7"),
        "the preview links the incident it will be"
    );
    // Nothing was declared by previewing.
    let list: Value = t.get("/api/v1/incidents").await.json().await.unwrap();
    assert_eq!(list["incidents"].as_array().unwrap().len(), 0);
    // The script's JSON preview says the same, with lengths.
    let csrf = csrf_in(&b.page("/admin/incidents/new").await);
    let r = b
        .http
        .post(t.url("/admin/preview"))
        .header("x-csrf-token", csrf)
        .form(&[
            ("title", "Checkout errors"),
            ("impact", "major"),
            ("message", "Some payments fail."),
            ("eta_mode", "in"),
            ("eta_in", "1h"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    let log = &p["previews"][0];
    assert_eq!(log["channel"], "log");
    assert_eq!(
        log["length"].as_u64().unwrap() as usize,
        log["text"].as_str().unwrap().chars().count()
    );
    assert!(log["text"]
        .as_str()
        .unwrap()
        .ends_with("https://status.acme.test/incidents/7"));
    assert_eq!(p["estimates"]["suggested_minutes"], 120.0);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn templates_from_config_prefill_the_declare_form() {
    let t = spawn_app_with(Options {
        extra: Some(
            "console:\n  templates:\n    - { id: api-down, name: \"API down\", title: \"API errors\", impact: major, \
             components: { api: major_outage }, message: \"Calls to the API fail.\", eta_in: 45m }\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let form = b.page("/admin/incidents/new").await;
    assert!(form.contains("API down"), "the form offers the template");
    let html = b.page("/admin/incidents/new?template=api-down").await;
    assert!(html.contains("value=\"API errors\""), "title pre-filled");
    assert!(
        html.contains("<option value=\"major\" selected>"),
        "impact pre-filled"
    );
    assert!(
        html.contains("<option value=\"major_outage\" selected>"),
        "component pre-filled"
    );
    assert!(
        html.contains(">Calls to the API fail.</textarea>"),
        "message pre-filled"
    );
    assert!(html.contains("value=\"45m\""), "ETA pre-filled");
    let r = b.get("/admin/incidents/new?template=nope").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("There is no template `nope`"));
    t.finish().await;
}

/// A channel with a short limit, to see the preview count against it.
struct Short;

#[async_trait::async_trait]
impl candor::channels::Channel for Short {
    fn id(&self) -> &str {
        "log"
    }
    async fn deliver(
        &self,
        _msg: &candor::channels::Message,
        _ctx: &candor::channels::DeliveryContext,
    ) -> Result<candor::channels::Sent, candor::channels::SendError> {
        Ok(candor::channels::Sent::default())
    }
    fn preview(&self, msg: &candor::channels::Message) -> Option<candor::channels::Preview> {
        let text = format!("{}: {}", msg.title, msg.body);
        Some(candor::channels::Preview {
            kind: "short",
            length: text.chars().count(),
            text,
            limit: Some(40),
        })
    }
}

#[tokio::test]
async fn previews_count_against_each_channels_limit_and_the_dashboard_flags_overdue() {
    let t = spawn_app_with(Options {
        channels: vec![std::sync::Arc::new(Short)],
        ..Options::default()
    })
    .await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let preview = |message: &'static str| {
        vec![
            ("title", "API errors"),
            ("impact", "major"),
            ("message", message),
            ("eta_mode", "unknown"),
            ("action", "preview"),
        ]
    };
    let html = b
        .submit(
            "/admin/incidents/new",
            "/admin/incidents/new",
            &preview("Short."),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("18 / 40 characters"),
        "a counter against the limit"
    );
    assert!(!html.contains("class=\"count over\""));
    let html = b
        .submit(
            "/admin/incidents/new",
            "/admin/incidents/new",
            &preview("A message far too long for this network's limit."),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("class=\"count over\""),
        "over the limit is flagged"
    );
    assert!(html.contains("60 / 40 characters: too long"));

    // Overdue promises are unmistakable on the dashboard.
    let id = declare_form(&b, "API errors", "30m").await;
    let dash = b.page("/admin").await;
    assert!(!dash.contains("OVERDUE") && !dash.contains("PASSED"));
    assert!(dash.contains("ana@acme.test"), "the owner is shown");
    t.advance(Duration::from_secs(21 * 60));
    let dash = b.page("/admin").await;
    assert!(
        dash.contains("OVERDUE"),
        "the promised update (20m) is overdue"
    );
    assert!(!dash.contains("PASSED"));
    t.advance(Duration::from_secs(10 * 60));
    let dash = b.page("/admin").await;
    assert!(dash.contains("PASSED"), "the ETA (30m) has passed");
    assert!(dash.contains(&format!("/admin/incidents/{id}")));
    t.dispatch_all().await;
    t.finish().await;
}

/// Runs `candor --config <test config> ARGS` with `stdin`; returns (exit code, stdout+stderr).
async fn candor_cli(t: &TestApp, args: &[&str], stdin: &str) -> (i32, String) {
    use tokio::io::AsyncWriteExt;
    let cfg = t.dir.path().join("candor-cli.yaml");
    std::fs::write(&cfg, &t.config_yaml).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_candor"))
        .arg("--config")
        .arg(&cfg)
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn candor_operator_add_reads_the_password_from_stdin() {
    let t = spawn_app().await;
    let add = [
        "operator",
        "add",
        "--email",
        "Ana@Acme.test",
        "--role",
        "responder",
    ];
    let (code, out) = candor_cli(&t, &add, "short\n").await;
    assert_ne!(code, 0);
    assert!(out.contains("at least 12 characters"), "{out}");
    let (code, out) = candor_cli(
        &t,
        &["operator", "add", "--email", "ana", "--role", "admin"],
        "long enough password\n",
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        out.contains("--email: `ana` is not an email address"),
        "{out}"
    );
    let (code, out) = candor_cli(
        &t,
        &[
            "operator",
            "add",
            "--email",
            "a@acme.test",
            "--role",
            "boss",
        ],
        "",
    )
    .await;
    assert_ne!(code, 0);
    assert!(out.contains("boss"), "{out}");
    let (code, out) = candor_cli(&t, &add, &format!("{PASSWORD}\n")).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("added operator ana@acme.test (responder)"),
        "{out}"
    );
    assert!(!out.contains(PASSWORD), "the password is never printed");
    // The stored hash is argon2id, and the operator can sign in (email compared lower-cased).
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let (_, hash) = operators::credentials(&mut conn, "ana@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    drop(conn);
    let b = Browser::new(&t);
    b.login("ANA@acme.test").await;
    // Adding again replaces the password: the old one stops working.
    let (code, out) = candor_cli(&t, &add, "a brand new password\n").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("updated operator"), "{out}");
    let other = Browser::new(&t);
    assert_eq!(
        other.login_with("ana@acme.test", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (code, out) = candor_cli(&t, &["operator", "list"], "").await;
    assert_eq!(code, 0);
    assert!(out.contains("ana@acme.test\tresponder"), "{out}");
    let actions = audit_actions(&t).await;
    assert!(actions.contains(&("cli".into(), "operator.add".into())));
    assert!(actions.contains(&("cli".into(), "operator.reset".into())));
    t.finish().await;
}

/// The value of the hidden field `name` in a page.
fn hidden_in(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = html.find(&key).unwrap_or_else(|| panic!("no {name} field"));
    let rest = &html[at + key.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn windows(t: &TestApp) -> Vec<Value> {
    let v: Value = t.get("/api/v1/maintenances").await.json().await.unwrap();
    v["maintenances"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_window_scheduled_in_the_console_warns_about_peak_hours_and_can_be_cancelled() {
    let t = spawn_app_with(Options {
        extra: Some(
            "maintenance:\n  peak_hours:\n    - { name: \"Monday rush\", days: [mon], from: \"09:00\", to: \"17:00\", time_zone: Europe/Paris }\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    assert!(b
        .page("/admin")
        .await
        .contains("href=\"/admin/maintenance\""));
    // Monday 30 November, 10:00 in the site's zone (UTC): 11:00 in Paris, inside the rush.
    let form = [
        ("title", "Cache flush"),
        ("description", "We restart the cache cluster."),
        ("has_components", "1"),
        ("component", "web"),
        ("starts_at", "2026-11-30T10:00"),
        ("end_mode", "duration"),
        ("duration", "1h"),
        ("ends_at", ""),
        ("message", ""),
        ("owner", "ana@acme.test"),
    ];
    let with = |action: &'static str| {
        let mut f = form.to_vec();
        f.push(("action", action));
        f
    };
    // "Check" shows the warning and writes nothing.
    let r = b
        .submit(
            "/admin/maintenance/new",
            "/admin/maintenance/new",
            &with("check"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"warnings\""), "{html}");
    assert!(html.contains("Monday rush"), "{html}");
    assert!(html.contains("Schedule anyway"));
    assert!(windows(&t).await.is_empty());
    // Scheduling without confirming these times shows it again, still writing nothing.
    let r = b
        .submit(
            "/admin/maintenance/new",
            "/admin/maintenance/new",
            &with("schedule"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Monday rush"));
    assert!(windows(&t).await.is_empty());
    // A confirmation for other times does not count.
    let mut moved = with("schedule");
    moved.push(("confirm", "2026-11-30T23:00|duration|1h||web"));
    let r = b
        .submit("/admin/maintenance/new", "/admin/maintenance/new", &moved)
        .await;
    assert_eq!(r.status(), 200);
    assert!(windows(&t).await.is_empty());
    // Confirmed: scheduled anyway.
    let confirm = hidden_in(&html, "confirm");
    let mut confirmed = with("schedule");
    confirmed.push(("confirm", &confirm));
    let r = b
        .submit(
            "/admin/maintenance/new",
            "/admin/maintenance/new",
            &confirmed,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let page = location(&r);
    let id: i64 = page.rsplit('/').next().unwrap().parse().unwrap();
    let ws = windows(&t).await;
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0]["scheduled_for"], "2026-11-30T10:00:00Z");
    assert_eq!(ws[0]["scheduled_until"], "2026-11-30T11:00:00Z");
    assert_eq!(ws[0]["owner"], "ana@acme.test");
    // Listed, and its page repeats the warning and shows its announcement's deliveries.
    assert!(b
        .page("/admin/maintenance")
        .await
        .contains(&format!("href=\"{page}\"")));
    let html = b.page(&page).await;
    assert!(html.contains("Monday rush"));
    assert!(html.contains("Cancel the window"));
    assert!(!html.contains("Turn into an incident"), "only once started");
    assert!(html.contains("data-delivery="));
    // Invalid input names the field; an extension needs a reason.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/extend"),
            &[("version", "1"), ("extend_by", "30m"), ("reason", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("reason"));
    // Edited to a quiet time: announced, and the warning is gone.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/edit"),
            &[
                ("version", "1"),
                ("title", "Cache flush"),
                ("description", "We restart the cache cluster."),
                ("has_components", "1"),
                ("component", "web"),
                ("starts_at", "2026-11-30T22:00"),
                ("end_mode", "end"),
                ("ends_at", "2026-11-30T23:00"),
                ("message", ""),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let html = b.page(&page).await;
    assert!(!html.contains("Monday rush"), "no peak hours any more");
    let version = hidden_in(&html, "version");
    assert_eq!(version, "2");
    // A form from before the edit is refused as stale.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/cancel"),
            &[("version", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Someone else changed this window"));
    // Completing a window that has not started is refused, naming why.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/complete"),
            &[("version", "2")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Cancelled: announced on the public channel and audited with the operator as actor.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/cancel"),
            &[("version", "2"), ("message", "")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let html = b.page(&page).await;
    assert!(html.contains("Cancelled"), "{html}");
    assert!(!html.contains("Cancel the window"));
    t.dispatch_all().await;
    let kinds: Vec<String> = t
        .public_log()
        .into_iter()
        .filter(|l| l["incident_id"] == id)
        .map(|l| l["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "maintenance_scheduled",
            "maintenance_updated",
            "maintenance_cancelled"
        ]
    );
    let actions = audit_actions(&t).await;
    for action in [
        "maintenance.schedule",
        "maintenance.edit",
        "maintenance.cancel",
    ] {
        assert!(
            actions.contains(&("operator:ana@acme.test".into(), action.into())),
            "{action} audited: {actions:?}"
        );
    }
    assert!(windows(&t).await.iter().all(|w| w["status"] == "cancelled"));
    t.finish().await;
}

#[tokio::test]
async fn a_started_window_is_extended_completed_or_turned_into_an_incident() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let mut ids = Vec::new();
    for title in ["Disk swap", "Kernel update"] {
        let r = b
            .submit(
                "/admin/maintenance/new",
                "/admin/maintenance/new",
                &[
                    ("title", title),
                    ("has_components", "1"),
                    ("component", "api"),
                    ("starts_at", "2026-11-23T13:00"),
                    ("end_mode", "end"),
                    ("ends_at", "2026-11-23T14:00"),
                    ("action", "schedule"),
                ],
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap()
        );
        ids.push(
            location(&r)
                .rsplit('/')
                .next()
                .unwrap()
                .parse::<i64>()
                .unwrap(),
        );
    }
    // The scheduler starts both at 13:00.
    t.advance_to(61);
    t.tick().await;
    let page = format!("/admin/maintenance/{}", ids[0]);
    let html = b.page(&page).await;
    assert!(html.contains("In progress"), "{html}");
    assert!(html.contains("Turn into an incident"));
    assert!(!html.contains("Cancel the window"), "too late to cancel");
    // Started: the edit form has no start or components any more; the title still changes.
    assert!(!html.contains("name=\"starts_at\""));
    let version = hidden_in(&html, "version");
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{}/edit", ids[0]),
            &[
                ("version", &version),
                ("title", "Disk swap (rack 4)"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let html = b.page(&page).await;
    assert!(html.contains("Disk swap (rack 4)"));
    let version = hidden_in(&html, "version");
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{}/extend", ids[0]),
            &[
                ("version", &version),
                ("extend_by", "30m"),
                ("reason", "The new disks are slower to sync than planned."),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let w: Value = t
        .get(&format!("/api/v1/maintenances/{}", ids[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(w["eta"], "2026-11-23T14:30:00Z", "{w}");
    let version = hidden_in(&b.page(&page).await, "version");
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{}/complete", ids[0]),
            &[("version", &version), ("message", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(b.page(&page).await.contains("Completed"));
    // The second one went wrong: it continues as an incident, on the incident page.
    let page = format!("/admin/maintenance/{}", ids[1]);
    let version = hidden_in(&b.page(&page).await, "version");
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{}/incident", ids[1]),
            &[
                ("version", &version),
                ("impact", "major"),
                (
                    "message",
                    "The kernel update broke the API; we are rolling back.",
                ),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/admin/incidents/{}", ids[1]));
    assert_eq!(t.incident(ids[1]).await["impact"], "major");
    let r = b.get(&page).await;
    assert_eq!(location(&r), format!("/admin/incidents/{}", ids[1]));
    let actions = audit_actions(&t).await;
    for action in [
        "maintenance.edit",
        "maintenance.extend",
        "maintenance.complete",
        "maintenance.to_incident",
    ] {
        assert!(
            actions.contains(&("operator:ana@acme.test".into(), action.into())),
            "{action} audited: {actions:?}"
        );
    }
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn the_subscribers_page_says_so_when_there_is_no_email_channel() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let html = b.page("/admin/subscribers").await;
    assert!(html.contains("no email channel configured"), "{html}");
    let r = b
        .submit("/admin/subscribers", "/admin/subscribers/1/remove", &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    t.finish().await;
}

#[tokio::test]
async fn operators_see_subscribers_remove_one_resend_a_confirmation_and_see_each_updates_reach() {
    use crate::email::{app_with_email, start_sink, subscribe_and_confirm};
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    subscribe_and_confirm(&t, &sink, "all@example.com", json!([])).await;
    subscribe_and_confirm(&t, &sink, "api@example.com", json!(["api"])).await;
    subscribe_and_confirm(&t, &sink, "web@example.com", json!(["web"])).await;
    // One who never confirmed.
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": "slow@example.com", "components": ["api", "web"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mails = sink.wait_for(4).await.len();
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let html = b.page("/admin/subscribers").await;
    assert!(
        html.contains("<td data-count=\"confirmed\">3</td>"),
        "{html}"
    );
    assert!(html.contains("<td data-count=\"pending\">1</td>"));
    assert!(html.contains("<td>Every component</td><td>1</td>"));
    assert!(html.contains("<td>Public API</td><td>1</td>"));
    assert!(html.contains("<td>Website</td><td>1</td>"));
    assert!(html.contains("slow@example.com"));
    assert_eq!(html.matches("Send the confirmation again").count(), 1);
    let id_of = |html: &str, email: &str| -> String {
        let at = html.find(email).unwrap();
        let before = &html[..at];
        let key = "data-subscriber=\"";
        let s = &before[before.rfind(key).unwrap() + key.len()..];
        s[..s.find('"').unwrap()].to_string()
    };
    // Send the confirmation again: a new mail to that address.
    let slow = id_of(&html, "slow@example.com");
    let r = b
        .submit(
            "/admin/subscribers",
            &format!("/admin/subscribers/{slow}/resend"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let got = sink.wait_for(mails + 1).await;
    assert_eq!(got[mails].to(), "slow@example.com");
    // Not for a confirmed one.
    let web = id_of(&html, "web@example.com");
    let r = b
        .submit(
            "/admin/subscribers",
            &format!("/admin/subscribers/{web}/resend"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Remove one: gone from the page and the counts, audited with the operator as actor.
    let r = b
        .submit(
            "/admin/subscribers",
            &format!("/admin/subscribers/{web}/remove"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = b.page("/admin/subscribers?done=removed").await;
    assert!(html.contains("The subscriber was removed."));
    assert!(!html.contains("web@example.com"));
    assert!(html.contains("<td data-count=\"confirmed\">2</td>"));
    let actions = audit_actions(&t).await;
    for action in ["subscriber.remove", "subscriber.resend_confirmation"] {
        assert!(
            actions.contains(&("operator:ana@acme.test".into(), action.into())),
            "{action} audited: {actions:?}"
        );
    }
    // An incident on the API reaches the two remaining subscribers who want it.
    let id = declare_form(&b, "API errors", "1h").await;
    t.dispatch_all().await;
    let html = b.page(&format!("/admin/incidents/{id}")).await;
    assert!(html.contains("reached 2 subscribers"), "{html}");
    t.finish().await;
}

#[tokio::test]
async fn the_subscribers_list_is_paged() {
    use crate::email::{app_with_email, seed, start_sink};
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    seed(&t, 60).await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let first = b.page("/admin/subscribers").await;
    assert!(first.contains("<td data-count=\"confirmed\">60</td>"));
    assert_eq!(first.matches("data-subscriber=").count(), 50);
    assert!(first.contains("user000@example.com"));
    assert!(!first.contains("user050@example.com"));
    let key = "href=\"/admin/subscribers?after=";
    let at = first.find(key).expect("a next-page link");
    let next = &first[at + "href=\"".len()..];
    let next = &next[..next.find('"').unwrap()];
    let second = b.page(next).await;
    assert_eq!(second.matches("data-subscriber=").count(), 10);
    assert!(second.contains("user050@example.com"));
    assert!(second.contains("user059@example.com"));
    assert!(!second.contains(key), "no page after the last");
    // A nonsense page number is the first page, not an error.
    assert_eq!(
        b.page("/admin/subscribers?after=abc")
            .await
            .matches("data-subscriber=")
            .count(),
        50
    );
    t.finish().await;
}
