//! The double opt-in: the confirmation mail, its link, the status page's form and what
//! operators do with subscribers.

use super::*;

#[tokio::test]
async fn double_opt_in_sends_nothing_but_the_confirmation_until_it_is_followed() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    let ask = || async {
        let r = t
            .http
            .post(t.url("/api/v1/subscribers"))
            .json(&json!({ "email": "Ann@Example.com" }))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    let first = ask().await;
    assert_eq!(first.0, 202);
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0].to(), "Ann@example.com");
    assert!(mails[0].header("Subject").unwrap().contains("Confirm"));
    // Like every mail to subscribers, it has a one-click unsubscribe (RFC 8058): someone who
    // never asked can stop any further confirmation mail.
    assert!(mails[0]
        .header("List-Unsubscribe")
        .is_some_and(|u| u.starts_with("<https://status.acme.test/unsubscribe/")));
    // Asking again answers exactly the same, and does not mail again within the minute.
    assert_eq!(ask().await, first);
    // Bad input is a 422 naming the field.
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": "not an address" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("email"));
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": "bob@example.com", "components": ["nope"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("components[0]"));

    // An incident before confirming: nothing is mailed.
    t.declare(incident(json!({ "web": "partial_outage" })))
        .await;
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 1);

    // The link's GET only shows a button (scanners prefetch links); the POST confirms.
    let (text, html) = mails[0].parts();
    let link = link_in(&text, "https://status.acme.test/subscribe/confirm/");
    assert!(html.contains(&link));
    let page = t.http.get(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    let r = t.http.post(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Used once: a second use is refused.
    let r = t.http.post(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // Confirmed: the next incident reaches the inbox. Subscribing again is still a quiet 202.
    assert_eq!(ask().await, first);
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    t.dispatch_all().await;
    let mails = sink.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    assert!(mails[1]
        .header("Subject")
        .unwrap()
        .contains("Login <failures>"));
    t.finish().await;
}

#[tokio::test]
async fn confirmation_links_expire() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "confirm_within: 1h,").await;
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": "late@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mails = sink.wait_for(1).await;
    let link = link_in(
        &mails[0].parts().0,
        "https://status.acme.test/subscribe/confirm/",
    );
    t.advance(Duration::from_secs(3601));
    let r = t.http.post(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("expired"));
    t.finish().await;
}

#[tokio::test]
async fn the_status_page_form_subscribes_to_chosen_components_and_operators_manage_subscribers() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    let page = t.page("/").await.text().await.unwrap();
    assert!(
        page.contains("action=\"/subscribe\""),
        "no form on the page"
    );
    assert!(page.contains("value=\"api\""));
    let r = t
        .http
        .post(t.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=cat%40example.com&components=api&components=email")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Check your inbox"));
    let mails = sink.wait_for(1).await;
    let (text, _) = mails[0].parts();
    assert!(text.contains("Public API, Email delivery"), "{text}");
    // A bad address on the form: the page says what is wrong, with a 422.
    let r = t
        .http
        .post(t.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("not a valid email address"));

    // Operators: list, send the confirmation again (the old link stops working), remove.
    let list: Value = t.get("/api/v1/subscribers").await.json().await.unwrap();
    let sub = &list["subscribers"][0];
    assert_eq!(sub["email"], "cat@example.com");
    assert_eq!(sub["components"], json!(["api", "email"]));
    let id = sub["id"].as_i64().unwrap();
    let r = t
        .post(
            &format!("/api/v1/subscribers/{id}/confirmation"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let mails = sink.wait_for(2).await;
    let old = link_in(
        &mails[0].parts().0,
        "https://status.acme.test/subscribe/confirm/",
    );
    let new = link_in(
        &mails[1].parts().0,
        "https://status.acme.test/subscribe/confirm/",
    );
    assert_ne!(old, new);
    let r = t.http.post(t.url(&path_of(&old))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = t.http.post(t.url(&path_of(&new))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Confirmed: no confirmation to send any more.
    let r = t
        .post(
            &format!("/api/v1/subscribers/{id}/confirmation"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 409);
    let r = t
        .http
        .delete(t.url(&format!("/api/v1/subscribers/{id}")))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(counts(&t).await["confirmed"], 0);
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 2, "a removed subscriber got mail");
    t.finish().await;
}
