//! Sign-in throttling: per client and per account, counted atomically, with delays that grow
//! instead of a lock for a whole address, and an unlock.

use super::access::candor_cli;
use super::*;
use candor::store::throttle;

fn behind_proxy() -> Options {
    Options {
        extra: Some("server: { trusted_proxies: [\"127.0.0.1/32\", \"::1/128\"] }\n".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn fifty_parallel_wrong_passwords_get_at_most_the_budget_and_colleagues_sign_in() {
    let t = spawn_app_with(behind_proxy()).await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    add_operator(&t, "bo@acme.test", operators::Role::Admin).await;
    let attacker = Browser::behind_proxy(&t, "203.0.113.9");
    let csrf = csrf_in(&attacker.page("/admin/login").await);
    let attempts = (0..50).map(|i| {
        let pw = format!("guess number {i}");
        let attacker = &attacker;
        let csrf = csrf.clone();
        async move {
            attacker
                .post(
                    "/admin/login",
                    &[
                        ("email", "ana@acme.test"),
                        ("password", &pw),
                        ("csrf", &csrf),
                    ],
                )
                .await
                .status()
        }
    });
    // A colleague behind the same proxy signs in while the flood is on.
    let colleague = Browser::behind_proxy(&t, "198.51.100.7");
    let (statuses, ()) = tokio::join!(futures::future::join_all(attempts), async {
        colleague.login("bo@acme.test").await
    });
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked + refused, 50, "{statuses:?}");
    assert!(
        checked as i64 <= throttle::PAIR_FREE,
        "{checked} passwords were checked; the budget is {}",
        throttle::PAIR_FREE
    );
    assert!(checked >= 1, "{statuses:?}");
    // The right password from the attacker's address is refused too while its delay runs...
    let r = attacker.login_with("ana@acme.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // ...but Ana herself, from her own network, signs in at once.
    Browser::behind_proxy(&t, "198.51.100.8")
        .login("ana@acme.test")
        .await;
    assert_eq!(colleague.get("/admin").await.status(), 200);
    t.finish().await;
}

#[tokio::test]
async fn delays_double_after_the_free_attempts_and_an_admin_can_unlock() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    for i in 0..throttle::PAIR_FREE {
        let r = b.login_with("ana@acme.test", "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(r.text().await.unwrap().contains("do not match"));
    }
    // Then each attempt waits: 1 s, then 2 s, then 4 s.
    for wait in [1u64, 2, 4] {
        let r = b.login_with("ana@acme.test", PASSWORD).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], wait.to_string().as_str());
        let text = r.text().await.unwrap();
        assert!(text.contains("Try again in"), "{text}");
        t.advance(Duration::from_secs(wait));
        let r = b.login_with("ana@acme.test", "still guessing").await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "after waiting {wait} s"
        );
    }
    assert_eq!(
        b.login_with("ana@acme.test", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // `candor operator unlock` forgets the account's attempts at once.
    let (code, out) = candor_cli(&t, &["operator", "unlock", "--email", "ana@acme.test"], "").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("unlocked ana@acme.test"), "{out}");
    b.login("ana@acme.test").await;
    let actions = audit_actions(&t).await;
    let failed = actions
        .iter()
        .filter(|(_, a)| a == "console.sign_in_failed")
        .count();
    assert_eq!(failed as i64, throttle::PAIR_FREE + 3);
    assert!(actions.iter().any(|(_, a)| a == "operator.unlock"));
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
async fn made_up_emails_slow_only_the_client_that_sends_them() {
    let t = spawn_app_with(behind_proxy()).await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let prober = Browser::behind_proxy(&t, "203.0.113.50");
    let mut statuses = Vec::new();
    for i in 0..(throttle::CLIENT_FREE + 2) {
        let email = format!("nobody{i}@acme.test");
        statuses.push(prober.login_with(&email, "whatever").await.status());
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(checked as i64, throttle::CLIENT_FREE, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    // The real account was never counted against: Ana signs in from elsewhere at once, and
    // the quiet window lets the prober try again later.
    Browser::behind_proxy(&t, "198.51.100.8")
        .login("ana@acme.test")
        .await;
    t.advance(Duration::from_secs(16 * 60));
    assert_eq!(
        prober
            .login_with("nobody@acme.test", "whatever")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    t.finish().await;
}
