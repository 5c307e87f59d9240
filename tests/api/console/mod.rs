//! The operator console over HTTP, as a browser uses it: a cookie-keeping client, forms with
//! CSRF tokens, redirects looked at rather than followed.

use std::time::Duration;

use candor::http::admin::{ADMIN_ROUTES, OPEN_ROUTES, PROTECTED_ROUTES};
use candor::store::{audit, operators};
use reqwest::StatusCode;
use serde_json::{json, Value};

// The imports above serve the feature files too: each starts with `use super::*`.
use crate::helpers::{spawn_app, spawn_app_with, Options, TestApp};

mod access;
mod audit_log;
mod dashboard;
mod estimates;
mod incidents;
mod maintenance;
mod postmortem;
mod roles;
mod subscribers;
mod throttle;

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
        Self::with_headers(t, reqwest::header::HeaderMap::new())
    }

    /// A browser whose requests reach Candor through a proxy that names it `client` in
    /// `X-Forwarded-For` (the app must trust the test's loopback address as a proxy).
    pub(crate) fn behind_proxy(t: &'a TestApp, client: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", client.parse().unwrap());
        Self::with_headers(t, headers)
    }

    fn with_headers(t: &'a TestApp, headers: reqwest::header::HeaderMap) -> Self {
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { t, http }
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
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
