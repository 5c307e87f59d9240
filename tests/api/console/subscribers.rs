//! Email subscribers in the console: the list and its pages, removing one, resending a
//! confirmation, and how far each update reached.

use super::*;

#[tokio::test]
async fn the_subscribers_page_says_so_when_there_is_no_email_channel() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Admin).await;
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
    add_operator(&t, "ana@acme.test", operators::Role::Admin).await;
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
    // Removing needs the confirmation box ticked.
    let r = b
        .submit(
            "/admin/subscribers",
            &format!("/admin/subscribers/{web}/remove"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(b
        .page("/admin/subscribers")
        .await
        .contains("web@example.com"));
    // Remove one: gone from the page and the counts, audited with the operator as actor.
    let r = b
        .submit(
            "/admin/subscribers",
            &format!("/admin/subscribers/{web}/remove"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/subscribers");
    let html = b.page("/admin/subscribers").await;
    assert!(
        html.contains("The subscriber was removed."),
        "confirmed once"
    );
    assert!(html.contains("role=\"status\""));
    let again = b.page("/admin/subscribers").await;
    assert!(
        !again.contains("The subscriber was removed."),
        "and only once"
    );
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
    add_operator(&t, "ana@acme.test", operators::Role::Admin).await;
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
