//! Who gets in: no route without a session, CSRF tokens on every form, and operators added from
//! the command line. Throttling is in `throttle.rs`, roles in `roles.rs`.

use super::*;

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
    for (method, path) in PROTECTED_ROUTES.iter().chain(ADMIN_ROUTES) {
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

/// Runs `candor --config <test config> ARGS` with `stdin`; returns (exit code, stdout+stderr).
pub(crate) async fn candor_cli(t: &TestApp, args: &[&str], stdin: &str) -> (i32, String) {
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
    // Audited under the system user who ran the command line (`cli:<user>`).
    for action in ["operator.add", "operator.reset"] {
        assert!(
            actions
                .iter()
                .any(|(actor, a)| actor.starts_with("cli:") && a == action),
            "{actions:?}"
        );
    }
    t.finish().await;
}
