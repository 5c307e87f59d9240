//! One owner per conversation, answers in the customer's thread, "it is fixed" when the
//! incident resolves, the dashboard's flag and the team told once of a conversation waiting.

use super::*;
use crate::console::{add_operator, Browser};
use candor::store::operators::Role;

fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

async fn signed_in<'a>(t: &'a TestApp, email: &str) -> Browser<'a> {
    add_operator(t, email, Role::Responder).await;
    let b = Browser::new(t);
    b.login(email).await;
    b
}

async fn conversation_of(t: &TestApp, incident: i64, handle: &str) -> i64 {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    candor::store::inbox::conversations(&mut conn, incident)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.author_handle == handle)
        .unwrap()
        .id
}

/// An app on Mastodon with Ann's reply and Carol's mention in incident `id`'s inbox.
async fn with_two_customers() -> (MockServer, MastoState, TestApp, i64) {
    let m = MockServer::start().await;
    let st = mount_mastodon(&m).await;
    let t = app_with(Some(&m), None).await;
    let id = declare(&t).await;
    t.dispatch_all().await;
    {
        let mut s = st.lock().unwrap();
        let mut ann = mention(
            10,
            "ann@far.example",
            Some("1001"),
            "<p>still broken in Frankfurt &lt;script&gt;alert(1)&lt;/script&gt;</p>",
            t0(),
        );
        ann["status"]["url"] = json!("javascript:alert(1)");
        s.notes.push(ann);
        s.notes.push(mention(
            11,
            "carol",
            None,
            "<p>@acme is the API down?</p>",
            t0(),
        ));
    }
    assert_eq!(poll(&t).await.received, 2);
    (m, st, t, id)
}

#[tokio::test]
async fn claims_are_exclusive_under_concurrent_requests() {
    let (_m, _st, t, id) = with_two_customers().await;
    let ann = conversation_of(&t, id, "ann@far.example").await;
    let mut browsers = Vec::new();
    for n in 0..4 {
        browsers.push(signed_in(&t, &format!("op{n}@acme.test")).await);
    }
    let mut tokens = Vec::new();
    for b in &browsers {
        tokens.push(csrf(&b.page(&format!("/admin/incidents/{id}/inbox")).await));
    }
    let path = format!("/admin/inbox/{ann}/claim");
    let forms: Vec<[(&str, &str); 1]> = tokens.iter().map(|c| [("csrf", c.as_str())]).collect();
    let answers =
        futures::future::join_all(browsers.iter().zip(&forms).map(|(b, f)| b.post(&path, f))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        3,
        "{statuses:?}"
    );
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let c = candor::store::inbox::conversation(&mut conn, ann)
        .await
        .unwrap()
        .unwrap();
    let holder = c.claimed_by.unwrap();
    let claims = candor::store::audit::recent(&mut conn, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "inbox.claim")
        .count();
    drop(conn);
    assert_eq!(claims, 1);
    // The losers are told who holds it; the page shows it to everyone.
    for (r, b) in answers.into_iter().zip(&browsers) {
        if r.status() == 409 {
            assert!(r.text().await.unwrap().contains(&holder));
            let page = b.page(&format!("/admin/incidents/{id}/inbox")).await;
            assert!(page.contains(&format!("Held by {holder}")));
        }
    }
    t.finish().await;
}

#[tokio::test]
async fn only_the_claimer_answers_in_the_thread_and_the_answered_are_told_it_is_fixed() {
    let (_m, st, t, id) = with_two_customers().await;
    let ann = conversation_of(&t, id, "ann@far.example").await;
    let ana = signed_in(&t, "ana@acme.test").await;
    let ben = signed_in(&t, "ben@acme.test").await;
    let inbox = format!("/admin/incidents/{id}/inbox");

    // Untrusted words are text; a javascript: link is no link.
    let page = ana.page(&inbox).await;
    assert!(
        page.contains("still broken in Frankfurt &lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || page.contains("still broken in Frankfurt &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"));
    assert!(!page.contains("javascript:"));

    // Nobody answers before claiming; only the claimer answers.
    let r = ana
        .submit(
            &inbox,
            &format!("/admin/inbox/{ann}/answer"),
            &[("text", "Sorry!")],
        )
        .await;
    assert_eq!(r.status(), 409);
    let r = ana
        .submit(&inbox, &format!("/admin/inbox/{ann}/claim"), &[])
        .await;
    assert_eq!(r.status(), 303);
    // The claimer's form starts with a first line that acknowledges and apologises.
    let page = ana.page(&inbox).await;
    assert!(
        page.contains("You&#x27;re right, and we&#x27;re sorry")
            || page.contains("You're right, and we're sorry")
    );
    let r = ben
        .submit(
            &inbox,
            &format!("/admin/inbox/{ann}/answer"),
            &[("text", "Sorry!")],
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("ana@acme.test holds this conversation"));
    // Too long as Mastodon counts it (the mention counts as @ann, 4 + a space).
    let long = "a".repeat(496);
    let r = ana
        .submit(
            &inbox,
            &format!("/admin/inbox/{ann}/answer"),
            &[("text", &long)],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("501 characters long as mastodon counts them; the limit is 500"));
    t.advance(secs(90));
    let words = "You're right, and we're sorry: Frankfurt is affected. We'll tell you here when it's fixed.";
    let r = ana
        .submit(
            &inbox,
            &format!("/admin/inbox/{ann}/answer"),
            &[("text", words)],
        )
        .await;
    assert_eq!(r.status(), 303);
    t.dispatch_all().await;
    {
        let s = st.lock().unwrap();
        let (key, form) = s.posted.last().unwrap();
        assert!(key.starts_with("candor-delivery-"), "{key}");
        assert_eq!(
            form,
            &HashMap::from([
                ("status".to_string(), format!("@ann@far.example {words}")),
                ("in_reply_to_id".to_string(), "90010".to_string()),
            ])
        );
    }
    let page = ana.page(&inbox).await;
    assert!(page.contains("data-state=\"answered\""));
    assert!(page.contains("data-state=\"waiting\""));

    // Resolving tells Ann (answered) in her thread, once; Carol (never answered) is not told.
    let before = st.lock().unwrap().posted.len();
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Fixed." }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    {
        let s = st.lock().unwrap();
        let new: Vec<_> = s.posted[before..].iter().map(|(_, f)| f.clone()).collect();
        assert_eq!(new.len(), 2, "the resolution and one reply: {new:?}");
        assert_eq!(new[1]["in_reply_to_id"], "90010");
        assert_eq!(
            new[1]["status"],
            format!(
                "@ann@far.example It's fixed: Login failures is resolved. Thank you for telling us, \
                 and sorry again for the trouble. https://status.acme.test/incidents/{id}"
            )
        );
    }
    let page = ana.page(&inbox).await;
    assert!(page.contains("Told it is fixed: ann@far.example"), "{page}");
    // /metrics: half the conversations answered, 90 s to the first answer, every answered one
    // of a resolved incident told it is fixed.
    let metrics = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "candor_inbox_conversations 2",
        "candor_inbox_answered_ratio 0.5",
        "candor_inbox_first_answer_seconds 90.0",
        "candor_inbox_closed_ratio 1.0",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    // The public promise record says the same, by hand: 2 customers wrote, Ann was answered
    // 90 s after she wrote (the median of one), and told it was fixed (1 of 1).
    let page = t.page("/").await.text().await.unwrap();
    assert!(page.contains("Customers who wrote to us"), "{page}");
    assert!(page.contains("50% answered (1 of 2)"), "{page}");
    let record: serde_json::Value = t.get("/api/v1/record").await.json().await.unwrap();
    assert_eq!(
        record["conversations"],
        serde_json::json!({
            "conversations": 2, "answered": 1, "share_answered": 0.5,
            "first_answer_median_seconds": 90, "closable": 1, "closed": 1, "share_closed": 1.0
        })
    );
    t.finish().await;
}

#[tokio::test]
async fn an_incident_can_opt_out_of_telling_them_it_is_fixed() {
    let (_m, st, t, id) = with_two_customers().await;
    let ann = conversation_of(&t, id, "ann@far.example").await;
    let ana = signed_in(&t, "ana@acme.test").await;
    let inbox = format!("/admin/incidents/{id}/inbox");
    ana.submit(&inbox, &format!("/admin/inbox/{ann}/claim"), &[])
        .await;
    let r = ana
        .submit(
            &inbox,
            &format!("/admin/inbox/{ann}/answer"),
            &[("text", "Sorry, we're on it.")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = ana
        .submit(&inbox, &format!("{inbox}/tell-fixed"), &[("tell", "no")])
        .await;
    assert_eq!(r.status(), 303);
    let r = ana
        .submit(&inbox, &format!("{inbox}/tell-fixed"), &[("tell", "maybe")])
        .await;
    assert_eq!(r.status(), 400);
    t.dispatch_all().await;
    let before = st.lock().unwrap().posted.len();
    t.post(
        &format!("/api/v1/incidents/{id}/resolve"),
        &json!({ "message": "Fixed." }),
    )
    .await;
    t.dispatch_all().await;
    assert_eq!(
        st.lock().unwrap().posted.len(),
        before + 1,
        "the resolution only"
    );
    // Retention: the inbox goes with the resolved incident's deliveries (90 days by default).
    t.advance(secs(91 * 24 * 3600));
    t.tick().await;
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    assert!(candor::store::inbox::conversations(&mut conn, id)
        .await
        .unwrap()
        .is_empty());
    assert!(candor::store::inbox::items(&mut conn, id)
        .await
        .unwrap()
        .is_empty());
    drop(conn);
    t.finish().await;
}

#[tokio::test]
async fn a_conversation_left_unclaimed_is_flagged_and_told_to_the_team_once() {
    let (_m, _st, t, id) = with_two_customers().await;
    let ana = signed_in(&t, "ana@acme.test").await;
    let ann = conversation_of(&t, id, "ann@far.example").await;
    ana.submit(
        &format!("/admin/incidents/{id}/inbox"),
        &format!("/admin/inbox/{ann}/claim"),
        &[],
    )
    .await;
    t.advance(secs(14 * 60));
    assert_eq!(poll(&t).await.told_waiting, 0);
    assert!(!ana.page("/admin").await.contains("data-inbox-waiting"));
    t.advance(secs(60));
    assert_eq!(
        poll(&t).await.told_waiting,
        1,
        "Carol's, not Ann's (claimed)"
    );
    t.advance(secs(60));
    assert_eq!(poll(&t).await.told_waiting, 0, "told once");
    t.dispatch_all().await;
    let told: Vec<_> = t
        .ops_log()
        .into_iter()
        .filter(|l| l.to_string().contains("nobody has claimed"))
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].to_string().contains("@carol"));
    let dash = ana.page("/admin").await;
    assert!(dash.contains("data-inbox-waiting=\"1\""), "{dash}");
    assert!(dash.contains("1 customer waiting, unclaimed"));
    // /metrics: two conversations, none answered yet.
    let metrics = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("candor_inbox_conversations 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("candor_inbox_answered_ratio 0.0"),
        "{metrics}"
    );
    t.finish().await;
}
