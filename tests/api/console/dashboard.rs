//! The dashboard: most urgent first, the live list a script polls, who owns what, a
//! confirmation after every action (shown once); and the console while the database is down.

use super::*;

/// The incident numbers in `html`'s list, in the order shown.
fn order_in(html: &str) -> Vec<i64> {
    html.split("data-incident=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

async fn declare(t: &TestApp, title: &str, impact: &str, eta_in: Option<&str>) -> i64 {
    let mut body = json!({ "title": title, "impact": impact, "message": "Looking." });
    if let Some(e) = eta_in {
        body["eta_in"] = json!(e);
    }
    t.declare(body).await["id"].as_i64().unwrap()
}

#[tokio::test]
async fn the_dashboard_and_its_live_list_put_the_most_urgent_first() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let minor_soon = declare(&t, "Slow search", "minor", Some("10m")).await;
    let critical = declare(&t, "Checkout down", "critical", Some("2h")).await;
    let major = declare(&t, "API errors", "major", Some("3h")).await;
    let none = declare(&t, "Cosmetic glitch", "none", None).await;
    // Oldest first before: the order declared. Now by impact.
    let html = b.page("/admin").await;
    assert_eq!(order_in(&html), vec![critical, major, minor_soon, none]);
    // The minor incident's estimate passes: a broken promise comes before any impact.
    t.advance(Duration::from_secs(11 * 60));
    let html = b.page("/admin").await;
    assert_eq!(order_in(&html), vec![minor_soon, critical, major, none]);
    // The live list is the same list, a fragment (no page around it), never cached.
    let r = b.get("/admin/live").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let live = r.text().await.unwrap();
    assert_eq!(order_in(&live), vec![minor_soon, critical, major, none]);
    assert!(!live.contains("<html"), "a fragment: {live}");
    assert!(live.contains("PASSED"));
    // An incident declared by a script is in the next poll.
    let new = declare(&t, "Login failures", "critical", Some("1h")).await;
    let live = b.page("/admin/live").await;
    assert_eq!(
        order_in(&live),
        vec![minor_soon, critical, new, major, none]
    );
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn the_live_list_needs_a_session() {
    let t = spawn_app().await;
    let r = Browser::new(&t).get("/admin/live").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/admin/login"));
    t.finish().await;
}

#[tokio::test]
async fn ownership_says_who_holds_it_and_every_action_is_confirmed_once() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    add_operator(&t, "ben@acme.test", operators::Role::Responder).await;
    let ana = Browser::new(&t);
    let ben = Browser::new(&t);
    ana.login("ana@acme.test").await;
    ben.login("ben@acme.test").await;
    let id = declare_form(&ana, "Checkout errors", "1h").await;
    // Declared: confirmed on the next page, with the channels it went to, once.
    let html = ana.page(&format!("/admin/incidents/{id}")).await;
    assert!(
        html.contains(&format!(
            "<p class=\"flash\" role=\"status\">Incident #{id} declared"
        )),
        "{html}"
    );
    assert!(html.contains("; posted to "), "{html}");
    assert!(!ana.page("/admin").await.contains("class=\"flash\""));
    // Take ownership: ana sees it is hers, ben sees whose it is.
    let r = ana
        .submit("/admin", &format!("/admin/incidents/{id}/own"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The live list (what the script polls) does not use the confirmation up.
    assert!(!ana.page("/admin/live").await.contains("You now own"));
    let html = ana.page("/admin").await;
    assert!(html.contains(&format!("You now own incident #{id}.")));
    assert!(html.contains("You own this"), "{html}");
    let html = ben.page("/admin").await;
    assert!(html.contains("Owned by ana@acme.test"), "{html}");
    let page = format!("/admin/incidents/{id}");
    assert!(ana.page(&page).await.contains("You own this"));
    assert!(ben.page(&page).await.contains("Owned by ana@acme.test"));
    assert!(
        !html.contains("class=\"flash\""),
        "ana's confirmation is hers"
    );
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn the_console_says_the_database_is_unavailable_with_503_and_retry_after() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let signed = Browser::new(&t);
    signed.login("ana@acme.test").await;
    let stranger = Browser::new(&t);
    let login_page = stranger.page("/admin/login").await;
    let csrf = csrf_in(&login_page);
    t.app.db.pool().close().await;
    let unavailable = |what: &str, r: reqwest::Response| {
        let what = what.to_string();
        async move {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
            assert_eq!(r.headers()["retry-after"], "30", "{what}");
            let html = r.text().await.unwrap();
            assert!(
                html.contains("<h1>The database is unavailable</h1>"),
                "{what}: {html}"
            );
        }
    };
    unavailable(
        "GET /admin/login",
        Browser::new(&t).get("/admin/login").await,
    )
    .await;
    let r = stranger
        .post(
            "/admin/login",
            &[
                ("email", "ana@acme.test"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    unavailable("POST /admin/login", r).await;
    unavailable("GET /admin, signed in", signed.get("/admin").await).await;
    unavailable(
        "GET /admin/incidents/new, signed in",
        signed.get("/admin/incidents/new").await,
    )
    .await;
    unavailable(
        "GET /admin without a session",
        Browser::new(&t).get("/admin").await,
    )
    .await;
    t.finish().await;
}
