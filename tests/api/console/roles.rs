//! Roles enforced on every console route, and the team's lifecycle from the console: operators
//! added, given a role, disabled, reset (which ends their sessions), unlocked and removed;
//! API tokens created with scopes and revoked.

use super::*;
use candor::store::throttle;

/// Posts `form` to `path` with the session's CSRF token (from the dashboard).
async fn post_as(b: &Browser<'_>, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.submit("/admin", path, form).await
}

#[tokio::test]
async fn a_responder_is_refused_every_admin_route_and_an_admin_reaches_them_all() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    add_operator(&t, "bo@acme.test", operators::Role::Admin).await;
    let responder = Browser::new(&t);
    responder.login("ana@acme.test").await;
    let admin = Browser::new(&t);
    admin.login("bo@acme.test").await;
    for (method, path) in ADMIN_ROUTES {
        let r = match *method {
            "GET" => responder.get(path).await,
            _ => post_as(&responder, path, &[("name", "x"), ("email", "x@acme.test")]).await,
        };
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{method} {path} as a responder"
        );
        assert!(
            r.text().await.unwrap().contains("Admins only"),
            "{method} {path}"
        );
    }
    for (method, path) in ADMIN_ROUTES.iter().filter(|(m, _)| *m == "GET") {
        assert_eq!(
            admin.get(path).await.status(),
            200,
            "{method} {path} as an admin"
        );
    }
    // Both roles run incidents: every protected GET answers either.
    for (_, path) in PROTECTED_ROUTES.iter().filter(|(m, _)| *m == "GET") {
        let path = if *path == "/admin/estimates" {
            "/admin/estimates?impact=minor"
        } else {
            path
        };
        for b in [&responder, &admin] {
            let status = b.get(path).await.status();
            assert!(status == 200 || status == 404, "GET {path}: {status}");
        }
    }
    // Every other form takes a responder's post (whatever it then says about the sample
    // fields); none answers "Admins only". Signing out comes last.
    for (method, path) in PROTECTED_ROUTES
        .iter()
        .filter(|(m, p)| *m == "POST" && *p != "/admin/logout")
    {
        let r = post_as(&responder, path, &[("message", "x")]).await;
        assert_ne!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{method} {path} as a responder"
        );
    }
    // The navigation offers admins' pages to admins only.
    let nav = responder.page("/admin").await;
    assert!(!nav.contains("href=\"/admin/operators\""));
    let nav = admin.page("/admin").await;
    assert!(nav.contains("href=\"/admin/operators\""), "{nav}");
    t.finish().await;
}

fn shown_secret(html: &str) -> String {
    let at = html.find("id=\"secret\"").expect("a secret shown once");
    let rest = &html[at..];
    let v = rest.find("value=\"").unwrap() + "value=\"".len();
    rest[v..v + rest[v..].find('"').unwrap()].to_string()
}

async fn operator_id(t: &TestApp, email: &str) -> String {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    operators::by_email(&mut conn, email)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

#[tokio::test]
async fn an_admin_manages_the_team_from_the_console() {
    let t = spawn_app().await;
    add_operator(&t, "bo@acme.test", operators::Role::Admin).await;
    let admin = Browser::new(&t);
    admin.login("bo@acme.test").await;
    // Add Cy: the temporary password is shown once and signs Cy in.
    let r = post_as(
        &admin,
        "/admin/operators/new",
        &[("email", "Cy@Acme.test"), ("role", "responder")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let password = shown_secret(&html);
    assert!(password.len() >= 20, "{password}");
    let cy = Browser::new(&t);
    let r = cy.login_with("cy@acme.test", &password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(cy.get("/admin").await.status(), 200);
    let again = post_as(
        &admin,
        "/admin/operators/new",
        &[("email", "cy@acme.test"), ("role", "admin")],
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let cy_id = operator_id(&t, "cy@acme.test").await;
    // A reset ends Cy's session at once; the new password works, the old one no longer.
    let r = post_as(
        &admin,
        &format!("/admin/operators/{cy_id}/reset-password"),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    let new_password = shown_secret(&r.text().await.unwrap());
    assert_eq!(
        cy.get("/admin").await.status(),
        StatusCode::SEE_OTHER,
        "signed out by the reset"
    );
    assert_eq!(
        cy.login_with("cy@acme.test", &password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        cy.login_with("cy@acme.test", &new_password).await.status(),
        StatusCode::SEE_OTHER
    );
    // Made an admin, Cy reaches the operators page; disabled, Cy is signed out.
    let r = post_as(
        &admin,
        &format!("/admin/operators/{cy_id}/role"),
        &[("role", "admin")],
    )
    .await;
    assert_eq!(location(&r), "/admin/operators");
    let page = admin.page("/admin/operators").await;
    assert!(page.contains("cy@acme.test is now admin."), "{page}");
    assert_eq!(cy.get("/admin/operators").await.status(), 200);
    let r = post_as(&admin, &format!("/admin/operators/{cy_id}/disable"), &[]).await;
    assert_eq!(location(&r), "/admin/operators");
    assert_eq!(cy.get("/admin").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        cy.login_with("cy@acme.test", &new_password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    post_as(&admin, &format!("/admin/operators/{cy_id}/enable"), &[]).await;
    // Slowed down by wrong passwords, then unlocked by the admin.
    for _ in 0..throttle::PAIR_FREE {
        cy.login_with("cy@acme.test", "wrong password").await;
    }
    assert_eq!(
        cy.login_with("cy@acme.test", &new_password).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let page = admin.page("/admin/operators").await;
    assert!(page.contains("sign-in slowed until"), "{page}");
    assert!(
        page.contains("5 sign-in attempts in the last 15 minutes"),
        "{page}"
    );
    let r = post_as(&admin, &format!("/admin/operators/{cy_id}/unlock"), &[]).await;
    assert_eq!(location(&r), "/admin/operators");
    assert_eq!(
        cy.login_with("cy@acme.test", &new_password).await.status(),
        StatusCode::SEE_OTHER
    );
    // The last enabled admin cannot demote, disable or remove themself.
    let bo_id = operator_id(&t, "bo@acme.test").await;
    post_as(
        &admin,
        &format!("/admin/operators/{cy_id}/role"),
        &[("role", "responder")],
    )
    .await;
    for (action, form) in [
        ("role", vec![("role", "responder")]),
        ("disable", vec![]),
        ("remove", vec![("confirm", "yes")]),
    ] {
        let r = post_as(&admin, &format!("/admin/operators/{bo_id}/{action}"), &form).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{action}");
        assert!(
            r.text().await.unwrap().contains("last enabled admin"),
            "{action}"
        );
    }
    // Removing needs the confirmation box.
    let r = post_as(&admin, &format!("/admin/operators/{cy_id}/remove"), &[]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post_as(
        &admin,
        &format!("/admin/operators/{cy_id}/remove"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(location(&r), "/admin/operators");
    assert!(admin
        .page("/admin/operators")
        .await
        .contains("cy@acme.test was removed."));
    assert_eq!(cy.get("/admin").await.status(), StatusCode::SEE_OTHER);
    let actions: Vec<String> = audit_actions(&t)
        .await
        .into_iter()
        .filter(|(actor, _)| actor == "operator:bo@acme.test")
        .map(|(_, a)| a)
        .collect();
    for a in [
        "operator.add",
        "operator.password_reset",
        "operator.role",
        "operator.disable",
        "operator.enable",
        "operator.unlock",
        "operator.remove",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
    t.finish().await;
}

#[tokio::test]
async fn tokens_are_made_with_scopes_and_revoked_from_the_console() {
    let t = spawn_app().await;
    add_operator(&t, "bo@acme.test", operators::Role::Admin).await;
    let admin = Browser::new(&t);
    admin.login("bo@acme.test").await;
    let r = post_as(
        &admin,
        "/admin/tokens/new",
        &[("name", "alertmanager"), ("scope", "alerts:write")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let token = shown_secret(&r.text().await.unwrap());
    assert!(token.starts_with("candor_"));
    let list = t
        .http
        .get(t.url("/api/v1/subscribers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::FORBIDDEN);
    let page = admin.page("/admin/tokens").await;
    assert!(page.contains("data-token=\"alertmanager\""), "{page}");
    assert!(page.contains("<code>alerts:write</code>"));
    assert!(page.contains("by bo@acme.test"), "{page}");
    let none = post_as(&admin, "/admin/tokens/new", &[("name", "nothing")]).await;
    assert_eq!(none.status(), StatusCode::BAD_REQUEST);
    // Revoking needs the confirmation box, like every removal for good.
    let unticked = post_as(&admin, "/admin/tokens/revoke", &[("name", "alertmanager")]).await;
    assert_eq!(unticked.status(), StatusCode::BAD_REQUEST);
    assert!(admin.page("/admin/tokens").await.contains("Yes, revoke it"));
    let still = t
        .http
        .post(t.url("/api/v1/integrations/alertmanager"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_ne!(
        still.status(),
        StatusCode::UNAUTHORIZED,
        "not revoked without the box"
    );
    let r = post_as(
        &admin,
        "/admin/tokens/revoke",
        &[("name", "alertmanager"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(location(&r), "/admin/tokens");
    assert!(admin.page("/admin/tokens").await.contains("was revoked"));
    let after = t
        .http
        .get(t.url("/api/v1/incidents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    t.finish().await;
}
