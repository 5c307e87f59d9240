//! Mastodon's mentions: read once across pages, errors and restarts, within its rate limit.

use super::*;

fn minutes(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::minutes(n)
}

/// The notification requests the server saw, as their query pairs.
async fn note_requests(m: &MockServer) -> Vec<Vec<(String, String)>> {
    m.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/v1/notifications")
        .map(|r| {
            assert_eq!(
                r.headers["authorization"].to_str().unwrap(),
                format!("Bearer {MASTO_TOKEN}")
            );
            r.url.query_pairs().into_owned().collect()
        })
        .collect()
}

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn mastodon_replies_and_mentions_appear_once_across_pages_errors_and_restarts() {
    let m = MockServer::start().await;
    let st = mount_mastodon(&m).await;
    let t = app_with(Some(&m), None).await;
    let id = declare(&t).await;
    t.dispatch_all().await; // the incident's post is status 1001
    {
        let mut s = st.lock().unwrap();
        s.notes.push(mention(10, "ann@far.example", Some("1001"),
            "<p><span class=\"h-card\"><a href=\"https://social.acme.test/@acme\" class=\"u-url mention\">@<span>acme</span></a></span> still broken in Frankfurt &lt;b&gt;bold&lt;/b&gt;</p>",
            minutes(1)));
        // Bob answers Ann's reply: only the thread's context says it is the incident's.
        s.notes.push(mention(
            11,
            "bob",
            Some("90010"),
            "<p>same here</p>",
            minutes(2),
        ));
        s.ancestors
            .insert("90011".into(), vec!["1001".into(), "90010".into()]);
        s.notes.push(mention(
            12,
            "carol@else.example",
            None,
            "<p>@acme is the API down?</p>",
            minutes(3),
        ));
    }
    t.advance(secs(240));
    assert_eq!(poll(&t).await.received, 3);
    assert_eq!(
        note_requests(&m).await,
        vec![q(&[("types[]", "mention"), ("limit", "40")])]
    );
    // The context is asked for Bob's reply only (Ann's answers a known post).
    let contexts: Vec<String> = m
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/context"))
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(contexts, vec!["/api/v1/statuses/90011/context"]);
    assert_eq!(
        kept(&t, id).await,
        vec![
            (
                "90010".into(),
                "ann@far.example".into(),
                "@acme still broken in Frankfurt <b>bold</b>".into()
            ),
            ("90011".into(), "bob".into(), "same here".into()),
            (
                "90012".into(),
                "carol@else.example".into(),
                "@acme is the API down?".into()
            ),
        ]
    );

    // 45 more: two pages walked forward from the cursor; the second fails once on its way.
    {
        let mut s = st.lock().unwrap();
        for n in 13..=57 {
            s.notes.push(mention(
                n,
                &format!("user{n}"),
                None,
                "<p>down?</p>",
                minutes(4),
            ));
        }
        s.fail_call.insert(
            3,
            ResponseTemplate::new(503).set_body_json(json!({ "error": "busy" })),
        );
    }
    t.advance(secs(60));
    assert_eq!(
        poll(&t).await.received,
        40,
        "the first page is kept; the second failed"
    );
    t.advance(secs(60));
    assert_eq!(
        poll(&t).await.polled,
        0,
        "a failure waits twice the interval"
    );
    t.advance(secs(60));
    assert_eq!(poll(&t).await.received, 5);
    let reqs = note_requests(&m).await;
    assert_eq!(
        reqs[1..],
        [
            q(&[("types[]", "mention"), ("limit", "40"), ("min_id", "12")]),
            q(&[("types[]", "mention"), ("limit", "40"), ("min_id", "52")]),
            q(&[("types[]", "mention"), ("limit", "40"), ("min_id", "52")]),
        ]
    );

    // A restart (another instance on the same database) goes on from the stored cursor.
    let other = t.another_instance(vec![]).await;
    t.advance(secs(60));
    assert_eq!(other.inbox().run_once().await.unwrap().received, 0);
    st.lock()
        .unwrap()
        .notes
        .push(mention(58, "dave", None, "<p>help</p>", minutes(9)));
    t.advance(secs(60));
    assert_eq!(other.inbox().run_once().await.unwrap().received, 1);
    let reqs = note_requests(&m).await;
    assert_eq!(
        reqs[reqs.len() - 2..],
        [
            q(&[("types[]", "mention"), ("limit", "40"), ("min_id", "57")]),
            q(&[("types[]", "mention"), ("limit", "40"), ("min_id", "57")]),
        ]
    );
    let all = kept(&t, id).await;
    assert_eq!(all.len(), 49);
    let distinct: std::collections::BTreeSet<_> = all.iter().map(|k| k.0.clone()).collect();
    assert_eq!(distinct.len(), 49, "nothing kept twice");
    t.finish().await;
}

#[tokio::test]
async fn mastodon_polling_keeps_within_the_rate_limit_and_honours_retry_after() {
    let m = MockServer::start().await;
    let st = mount_mastodon(&m).await;
    let t = app_with(Some(&m), None).await;
    declare(&t).await;
    t.dispatch_all().await;
    {
        let mut s = st.lock().unwrap();
        // A tenth of the window's budget is left: polling waits for the reset.
        s.remaining = 30;
        s.reset = Some(minutes(5));
    }
    assert_eq!(poll(&t).await.polled, 1);
    t.advance(secs(60));
    assert_eq!(poll(&t).await.polled, 0);
    t.advance_to(5);
    {
        let mut s = st.lock().unwrap();
        s.remaining = 299;
        s.failures.push(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "300")
                .set_body_json(json!({ "error": "Too many requests" })),
        );
    }
    assert_eq!(poll(&t).await.polled, 1, "asked, and told to wait");
    t.advance(secs(299));
    assert_eq!(poll(&t).await.polled, 0, "Retry-After is honoured");
    t.advance(secs(1));
    assert_eq!(poll(&t).await.polled, 1);
    assert_eq!(note_requests(&m).await.len(), 3);
    // Nothing failed last: the source shows no error.
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let s = candor::store::inbox::source(&mut conn, "masto")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.failures, s.last_error), (0, None));
    drop(conn);
    t.finish().await;
}
