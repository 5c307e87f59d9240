//! Bluesky's replies and mentions: a walk down listNotifications by cursor, once across pages,
//! errors and restarts, within its rate limit.

use super::*;

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

/// The incident's post on Bluesky: (uri, cid).
async fn our_post(t: &TestApp, id: i64) -> (String, String) {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let root = candor::store::deliveries::thread_root(&mut conn, id, "sky")
        .await
        .unwrap()
        .unwrap();
    let (u, c) = root.split_once(' ').unwrap();
    (u.to_string(), c.to_string())
}

async fn list_requests(m: &MockServer) -> Vec<Vec<(String, String)>> {
    m.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/xrpc/app.bsky.notification.listNotifications")
        .map(|r| {
            assert_eq!(
                r.headers["authorization"].to_str().unwrap(),
                "Bearer access-1"
            );
            r.url.query_pairs().into_owned().collect()
        })
        .collect()
}

#[tokio::test]
async fn bluesky_replies_and_mentions_appear_once_across_pages_errors_and_restarts() {
    let m = MockServer::start().await;
    let st = mount_bluesky(&m).await;
    let t = app_with(None, Some(&m)).await;
    let id = declare(&t).await;
    t.dispatch_all().await;
    let (uri, cid) = our_post(&t, id).await;
    let ours = (uri.as_str(), cid.as_str());
    {
        let mut s = st.lock().unwrap();
        s.notes.push(sky_note(
            1,
            "ann.bsky.social",
            "reply",
            Some((ours, ours)),
            "still down for me <script>",
            at(10),
        ));
        let ann = s.notes[0]["uri"].as_str().unwrap().to_string();
        s.notes.push(sky_note(
            2,
            "bob.bsky.social",
            "reply",
            Some((ours, (&ann, "bafycustomer1"))),
            "me too",
            at(20),
        ));
        s.notes.push(sky_note(
            3,
            "carol.example.com",
            "mention",
            None,
            "@acme.test is it you?",
            at(30),
        ));
        s.notes
            .push(sky_note(4, "dave.bsky.social", "like", None, "", at(40)));
    }
    t.advance(secs(60));
    assert_eq!(poll(&t).await.received, 3, "the like is not kept");
    let handles: Vec<String> = kept(&t, id).await.into_iter().map(|k| k.1).collect();
    assert_eq!(
        handles,
        ["ann.bsky.social", "bob.bsky.social", "carol.example.com"]
    );

    // 120 more: three pages, the walk cut by an error after the first.
    {
        let mut s = st.lock().unwrap();
        for n in 5..125 {
            s.notes.push(sky_note(
                n,
                &format!("u{n}.bsky.social"),
                "mention",
                None,
                "down?",
                at(100 + n as i64),
            ));
        }
        s.fail_call.insert(
            3,
            ResponseTemplate::new(502)
                .set_body_json(json!({ "error": "UpstreamFailure", "message": "try later" })),
        );
    }
    t.advance(secs(300));
    assert_eq!(poll(&t).await.received, 50);
    t.advance(secs(120));
    assert_eq!(
        poll(&t).await.received,
        70,
        "the walk goes on from its cursor"
    );
    let reqs = list_requests(&m).await;
    let cursors: Vec<Option<String>> = reqs
        .iter()
        .map(|q| {
            assert!(q.contains(&("limit".to_string(), "50".to_string())));
            q.iter()
                .find(|(k, _)| k == "cursor")
                .map(|(_, v)| v.clone())
        })
        .collect();
    let c1 = iso(at(100 + 75));
    let c2 = iso(at(100 + 25));
    assert_eq!(
        cursors,
        [None, None, Some(c1.clone()), Some(c1), Some(c2)],
        "first walk one page; then newest page, a failed page, the same page again, the last"
    );

    // A restart reads nothing twice and misses nothing new.
    let other = t.another_instance(vec![]).await;
    t.advance(secs(60));
    assert_eq!(other.inbox().run_once().await.unwrap().received, 0);
    st.lock().unwrap().notes.push(sky_note(
        200,
        "eve.bsky.social",
        "mention",
        None,
        "hello?",
        at(900),
    ));
    t.advance(secs(60));
    assert_eq!(other.inbox().run_once().await.unwrap().received, 1);
    let all = kept(&t, id).await;
    assert_eq!(all.len(), 124);
    let distinct: std::collections::BTreeSet<_> = all.iter().map(|k| k.0.clone()).collect();
    assert_eq!(distinct.len(), 124);
    t.finish().await;
}

#[tokio::test]
async fn bluesky_polling_keeps_within_ratelimit_headers_and_429s() {
    let m = MockServer::start().await;
    let st = mount_bluesky(&m).await;
    let t = app_with(None, Some(&m)).await;
    declare(&t).await;
    t.dispatch_all().await;
    let reset = (t0() + chrono::Duration::minutes(4)).timestamp();
    {
        let mut s = st.lock().unwrap();
        s.remaining = 300;
        s.reset = reset;
    }
    assert_eq!(poll(&t).await.polled, 1);
    t.advance(secs(180));
    assert_eq!(
        poll(&t).await.polled,
        0,
        "a tenth of the budget is kept for posting"
    );
    t.advance(secs(60));
    {
        let mut s = st.lock().unwrap();
        s.remaining = 2999;
        s.failures.push(
            ResponseTemplate::new(429)
                .insert_header("ratelimit-remaining", "0")
                .insert_header(
                    "ratelimit-reset",
                    (t0() + chrono::Duration::minutes(10))
                        .timestamp()
                        .to_string(),
                )
                .set_body_json(
                    json!({ "error": "RateLimitExceeded", "message": "Rate Limit Exceeded" }),
                ),
        );
    }
    assert_eq!(poll(&t).await.polled, 1);
    t.advance_to(9);
    assert_eq!(poll(&t).await.polled, 0, "the 429's reset is honoured");
    t.advance_to(10);
    assert_eq!(poll(&t).await.polled, 1);
    assert_eq!(list_requests(&m).await.len(), 3);
    t.finish().await;
}

#[tokio::test]
async fn bluesky_answers_and_the_fixed_reply_name_the_thread_root_and_the_customer_post() {
    use crate::console::{add_operator, Browser};
    let m = MockServer::start().await;
    let st = mount_bluesky(&m).await;
    let t = app_with(None, Some(&m)).await;
    let id = declare(&t).await;
    t.dispatch_all().await;
    let (uri, cid) = our_post(&t, id).await;
    let ours = (uri.as_str(), cid.as_str());
    let ann_uri;
    {
        let mut s = st.lock().unwrap();
        s.notes.push(sky_note(
            1,
            "ann.bsky.social",
            "reply",
            Some((ours, ours)),
            "is my data safe?",
            at(10),
        ));
        ann_uri = s.notes[0]["uri"].as_str().unwrap().to_string();
        s.notes.push(sky_note(
            2,
            "bob.bsky.social",
            "reply",
            Some((ours, (&ann_uri, "bafycustomer1"))),
            "same",
            at(20),
        ));
    }
    t.advance(secs(60));
    assert_eq!(poll(&t).await.received, 2);
    add_operator(
        &t,
        "ana@acme.test",
        candor::store::operators::Role::Responder,
    )
    .await;
    let ana = Browser::new(&t);
    ana.login("ana@acme.test").await;
    let inbox = format!("/admin/incidents/{id}/inbox");
    let conv = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        candor::store::inbox::conversations(&mut conn, id)
            .await
            .unwrap()[0]
            .id
    };
    assert_eq!(
        ana.submit(&inbox, &format!("/admin/inbox/{conv}/claim"), &[])
            .await
            .status(),
        303
    );
    let too_long = "é".repeat(301);
    let r = ana
        .submit(
            &inbox,
            &format!("/admin/inbox/{conv}/answer"),
            &[("text", &too_long)],
        )
        .await;
    assert_eq!(r.status(), 400, "301 graphemes");
    let words = "Sorry, that's on us. Your data is safe; we'll tell you here when it's fixed.";
    let r = ana
        .submit(
            &inbox,
            &format!("/admin/inbox/{conv}/answer"),
            &[("text", words)],
        )
        .await;
    assert_eq!(r.status(), 303);
    t.dispatch_all().await;
    let thread = json!({ "root": { "uri": uri, "cid": cid }, "parent": { "uri": ann_uri, "cid": "bafycustomer1" } });
    {
        let s = st.lock().unwrap();
        let body = s.made.last().unwrap();
        let rkey = body["rkey"].as_str().unwrap();
        assert_eq!(rkey.len(), 13, "a TID: {rkey}");
        assert_eq!(
            body,
            &json!({
                "repo": DID, "collection": "app.bsky.feed.post", "rkey": rkey,
                "record": { "$type": "app.bsky.feed.post", "text": words,
                    "createdAt": iso(t.clock_now()), "reply": thread }
            })
        );
    }
    let made = st.lock().unwrap().made.len();
    t.post(
        &format!("/api/v1/incidents/{id}/resolve"),
        &json!({ "message": "Fixed." }),
    )
    .await;
    t.dispatch_all().await;
    let all = st.lock().unwrap().made.clone();
    assert_eq!(
        all.len(),
        made + 2,
        "the resolution and Ann's reply; Bob was never answered"
    );
    let fixed = &all[made + 1]["record"];
    assert_eq!(fixed["reply"], thread);
    assert_eq!(
        fixed["text"],
        format!("It's fixed: Login failures is resolved. Thank you for telling us, and sorry again for the trouble. https://status.acme.test/incidents/{id}")
    );
    t.finish().await;
}
