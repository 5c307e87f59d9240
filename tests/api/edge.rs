//! Staying up when the internet is hostile: connection limits and timeouts, security headers,
//! bounded public work, the client address behind proxies, and the subscribe form's limits.
//!
//! The timeouts here are configured short (200 ms, 300 ms) so the tests wait only that long.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tower::ServiceExt;

use crate::helpers::{spawn_app_with, t0, Options, TestApp};

async fn app_with(server: &str, email: Option<&str>) -> TestApp {
    let email = email
        .map(|extra| {
            format!(
                "  email: {{ type: email, smtp_url: \"smtp://127.0.0.1:9\", from: \"Acme Status <status@acme.test>\", \
                 token_secret: \"test-secret-that-is-long-enough-0123456789\", {extra} }}\n"
            )
        })
        .unwrap_or_default();
    spawn_app_with(Options {
        extra: Some(format!("{email}server: {{ {server} }}\n")),
        ..Default::default()
    })
    .await
}

/// Reads until the peer closes (or `within` passes: then panics). Returns what was read.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server should have closed the connection");
    out
}

/// A keep-alive connection that has had one answer and now idles.
async fn idle_connection(t: &TestApp) -> TcpStream {
    let mut s = TcpStream::connect(t.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\"ok\"") {
        let n = timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    s
}

/// A connection whose request is in progress: the handler is reading a body that never comes
/// (`100 Continue` proves the handler started).
async fn busy_connection(t: &TestApp) -> TcpStream {
    let mut s = TcpStream::connect(t.addr).await.unwrap();
    s.write_all(
        b"POST /subscribe HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
          expect: 100-continue\r\ncontent-length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = [0u8; 256];
    let n = timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(b"email=").await.unwrap();
    s
}

#[tokio::test]
async fn a_connection_that_sends_no_headers_is_closed_after_the_header_timeout() {
    let t = app_with("header_read_timeout: 200ms", None).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(t.addr).await.unwrap();
    read_until_closed(&mut silent, Duration::from_secs(3)).await;
    assert!(started.elapsed() >= Duration::from_millis(150));

    // Slowloris: a header line every 50 ms never completes the head, and is cut off too.
    let started = Instant::now();
    let mut slow = TcpStream::connect(t.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut closed = false;
    for i in 0..60 {
        if slow
            .write_all(format!("x-trickle-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match timeout(Duration::from_millis(50), slow.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "a trickled head was still open after 3 s");
    assert!(started.elapsed() < Duration::from_millis(1500));

    // A well-behaved client is unaffected.
    assert_eq!(t.page("/").await.status(), 200);
    t.finish().await;
}

#[tokio::test]
async fn at_the_connection_cap_idle_connections_make_room_for_a_real_request() {
    let t = app_with("max_connections: 3", None).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(idle_connection(&t).await);
    }
    // The cap is reached, by connections that ask nothing more: the page still answers.
    for _ in 0..3 {
        let r = reqwest::Client::new().get(t.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // The oldest idle connection was closed to make room.
    read_until_closed(&mut idle[0], Duration::from_secs(3)).await;
    t.finish().await;
}

#[tokio::test]
async fn when_every_connection_is_busy_a_newcomer_is_told_503_at_once() {
    let t = app_with("max_connections: 2", None).await;
    let _a = busy_connection(&t).await;
    let _b = busy_connection(&t).await;
    let started = Instant::now();
    let r = reqwest::Client::new().get(t.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(started.elapsed() < Duration::from_secs(2));
    t.finish().await;
}

#[tokio::test]
async fn a_slow_body_on_a_public_route_is_cut_off_by_the_request_timeout() {
    let t = app_with("request_timeout: 300ms", None).await;
    let started = Instant::now();
    let mut s = busy_connection(&t).await;
    let answer = read_until_closed(&mut s, Duration::from_secs(3)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    t.finish().await;
}

#[tokio::test]
async fn every_page_carries_security_headers_and_no_inline_script() {
    let t = app_with("", None).await;
    for path in [
        "/",
        "/history",
        "/api/v1/components",
        "/nope",
        "/admin/login",
    ] {
        let r = t.page(path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
        // The test site's public URL is https.
        assert_eq!(h["strict-transport-security"], "max-age=31536000", "{path}");
        let console = path.starts_with("/admin");
        assert_eq!(csp.contains("frame-ancestors 'none'"), console, "{path}");
        assert_eq!(h.get("x-frame-options").is_some(), console, "{path}");
        if h["content-type"].to_str().unwrap().starts_with("text/html") {
            let html = r.text().await.unwrap();
            for tag in html.split("<script").skip(1) {
                let open = &tag[..tag.find('>').unwrap()];
                assert!(
                    open.contains("src=\"/assets/"),
                    "{path}: inline script {open}"
                );
            }
        }
    }
    let js = t.page("/assets/local-time.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(t.page("/assets/countdown.js").await.status(), 200);
    assert_eq!(t.page("/assets/preview.js").await.status(), 200);
    assert_eq!(t.page("/assets/nope.js").await.status(), 404);
    // The default mark: the favicon every page links, and the shipped config's logo.
    let mark = t.page("/assets/mark.svg").await;
    assert_eq!(mark.status(), 200);
    assert_eq!(mark.headers()["content-type"], "image/svg+xml");
    assert!(mark.text().await.unwrap().starts_with("<svg"));
    let home = t.page("/").await.text().await.unwrap();
    assert!(
        home.contains(r#"<link rel="icon" href="/assets/mark.svg" type="image/svg+xml">"#),
        "{home}"
    );
    t.finish().await;
}

#[tokio::test]
async fn hsts_is_sent_only_when_the_public_url_is_https() {
    let t = app_with("", None).await;
    let yaml = t.config_yaml.replace(
        "public_url: \"https://status.acme.test\"",
        "public_url: \"http://status.acme.test\"",
    );
    assert_ne!(yaml, t.config_yaml);
    let app = candor::App::builder(crate::helpers::parse_config(&yaml))
        .build()
        .await
        .unwrap();
    let r = app
        .router()
        .oneshot(
            axum::http::Request::get("/")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("strict-transport-security").is_none());
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    t.finish().await;
}

#[tokio::test]
async fn history_months_are_bounded_and_cached() {
    let t = app_with("", None).await;
    let r = t.page("/history?month=-9999-01").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("month"));
    assert_eq!(t.page("/history?month=2026-1").await.status(), 400);
    assert_eq!(t.page("/history?month=2026-13").await.status(), 400);
    // No incident yet: only this month has history.
    assert_eq!(t.page("/history?month=2026-10").await.status(), 404);
    assert_eq!(
        t.page("/history?month=2026-12").await.status(),
        400,
        "future"
    );
    assert_eq!(t.page("/history?month=1999-01").await.status(), 404);
    t.declare(json!({ "title": "Slow logins", "impact": "minor", "message": "Looking.", "components": { "web": "degraded_performance" } }))
        .await;
    t.dispatch_all().await;
    t.advance(Duration::from_secs(45 * 86_400));
    let r = t.page("/history?month=2026-11").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Slow logins"));
    assert_eq!(t.page("/history?month=2026-10").await.status(), 404);
    let r = t.page("/history?month=2027-01").await;
    assert_eq!(r.status(), 200);
    assert_eq!(t.page("/history?month=2027-02").await.status(), 400);
    // Rendered once, kept: answers with the database gone.
    let r = t.page("/history?month=2026-12").await;
    assert_eq!(r.status(), 200);
    t.app.db.pool().close().await;
    let again = t
        .http
        .get(t.url("/history?month=2026-12"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    // An incident number above the newest is not looked up at all.
    let r = t.http.get(t.url("/incidents/999999")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    t.finish().await;
}

#[tokio::test]
async fn components_are_answered_from_memory_while_the_database_is_down() {
    let t = app_with("", None).await;
    t.declare(json!({ "title": "API errors", "impact": "major", "message": "Looking.", "components": { "api": "major_outage" } }))
        .await;
    t.dispatch_all().await;
    t.app.rebuild_pages().await.unwrap();
    t.app.db.pool().close().await;
    let r = t.get("/api/v1/components").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["components"][0]["id"], "api");
    assert_eq!(body["components"][0]["status"], "major_outage");
    assert_eq!(body["components"][1]["status"], "operational");
    t.finish().await;
}

async fn subscribe(t: &TestApp, email: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": email }));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn an_untrusted_peer_cannot_dodge_the_per_client_limit_with_forwarded_headers() {
    let t = app_with("", Some("subscribe_per_client_per_minute: 1,")).await;
    let r = subscribe(&t, "a@example.com", Some("203.0.113.1")).await;
    assert_eq!(r.status(), 202);
    let r = subscribe(&t, "b@example.com", Some("203.0.113.2")).await;
    assert_eq!(r.status(), 429, "the spoofed header was believed");
    assert!(r.text().await.unwrap().contains("your network"));
    t.expect_leftover("the confirmation mails wait for an SMTP server this test does not run");
    t.finish().await;
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_each_client_has_its_own_allowance() {
    let t = app_with(
        "trusted_proxies: [\"127.0.0.0/8\"]",
        Some("subscribe_per_client_per_minute: 1,"),
    )
    .await;
    let r = subscribe(&t, "a@example.com", Some("198.51.100.9, 203.0.113.1")).await;
    assert_eq!(r.status(), 202);
    // Another client behind the same proxy is not held back by the first.
    let r = subscribe(&t, "b@example.com", Some("203.0.113.2")).await;
    assert_eq!(r.status(), 202);
    // The first again, with a different fake address on the left: still the first.
    let r = subscribe(&t, "c@example.com", Some("192.0.2.77, 203.0.113.1")).await;
    assert_eq!(r.status(), 429);
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .header("forwarded", "for=\"203.0.113.3:5555\"")
        .json(&json!({ "email": "d@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    t.expect_leftover("the confirmation mails wait for an SMTP server this test does not run");
    t.finish().await;
}

#[tokio::test]
async fn one_address_gets_at_most_three_confirmations_a_day_across_instances() {
    let t = app_with("", Some("subscribe_per_client_per_minute: 100,")).await;
    for _ in 0..3 {
        assert_eq!(subscribe(&t, "ann@example.com", None).await.status(), 202);
    }
    let r = subscribe(&t, "Ann@Example.com", None).await;
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("until tomorrow"));
    // The form says so in words.
    let r = t
        .http
        .post(t.url("/subscribe"))
        .form(&[("email", "ann@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("No more mails to this address today"));
    // Another address is not affected.
    assert_eq!(subscribe(&t, "bob@example.com", None).await.status(), 202);
    // The count is in the database: another instance holds the line too.
    let other = t.another_instance(vec![]).await;
    let r = other
        .router()
        .oneshot(
            axum::http::Request::post("/api/v1/subscribers")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    json!({ "email": "ann@example.com" }).to_string(),
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // A new day, a new allowance.
    t.clock.set(t0() + chrono::Duration::days(1));
    assert_eq!(subscribe(&t, "ann@example.com", None).await.status(), 202);
    t.expect_leftover("the confirmation mails wait for an SMTP server this test does not run");
    t.finish().await;
}

#[tokio::test]
async fn the_console_links_only_http_urls_from_remote_services() {
    use candor::store::operators;
    let t = app_with("", None).await;
    let inc = t
        .declare(json!({ "title": "API errors", "impact": "major", "message": "Looking.", "components": { "api": "major_outage" } }))
        .await;
    t.dispatch_all().await;
    let db = &t.app.db;
    let set_remote_url = |url: &'static str| async move {
        let mut conn = db.pool().acquire().await.unwrap();
        let n = sqlx::query("UPDATE deliveries SET remote_url = $1")
            .bind(url)
            .execute(&mut *conn)
            .await
            .unwrap()
            .rows_affected();
        assert!(n > 0, "the incident has deliveries");
    };
    let password = "correct horse battery staple";
    {
        let hash = operators::hash_password(password).unwrap();
        let mut tx = t.app.db.begin_write().await.unwrap();
        operators::upsert(
            &mut tx,
            "op@acme.test",
            operators::Role::Admin,
            &hash,
            t.clock_now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = browser
        .get(t.url("/admin/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let rest = &login[login.find(marker).unwrap() + marker.len()..];
    let csrf = &rest[..rest.find('"').unwrap()];
    let r = browser
        .post(t.url("/admin/login"))
        .form(&[
            ("email", "op@acme.test"),
            ("password", password),
            ("csrf", csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let id = inc["id"].as_i64().unwrap();
    let page = || async {
        browser
            .get(t.url(&format!("/admin/incidents/{id}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .replace("&#x2f;", "/")
    };
    set_remote_url("https://social.example/@acme/1").await;
    let html = page().await;
    assert!(html.contains("https://social.example/@acme/1"), "{html}");
    // A remote instance hands back a `javascript:` link: shown as no link at all.
    set_remote_url("javascript:alert(document.cookie)").await;
    let html = page().await;
    assert!(!html.to_lowercase().contains("javascript:"), "{html}");
    t.finish().await;
}
