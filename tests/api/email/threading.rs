//! Update mails: multipart bodies, one-click unsubscribe, one thread per incident, who gets
//! which incident, DKIM.

use super::*;

#[tokio::test]
async fn updates_are_multipart_with_one_click_unsubscribe_and_one_thread_per_incident() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    subscribe_and_confirm(&t, &sink, "ann@example.com", json!([])).await;
    let id = t
        .declare(incident(json!({ "web": "partial_outage" })))
        .await["id"]
        .as_i64()
        .unwrap();
    t.dispatch_all().await;
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "We found the cause.", "status": "identified" }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    let mails = sink.wait_for(3).await;
    let (first, second) = (&mails[1], &mails[2]);

    // Multipart text and HTML, the HTML escaped, both with the unsubscribe link.
    let (text, html) = first.parts();
    assert!(text.contains("Some users cannot log in."));
    assert!(text.contains("Login <failures>"));
    assert!(html.contains("Login &lt;failures&gt;"));
    assert!(html.contains(&format!("https://status.acme.test/incidents/{id}")));
    let unsubscribe = first.header("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with("<https://status.acme.test/unsubscribe/")
            && unsubscribe.ends_with('>'),
        "{unsubscribe}"
    );
    let url = unsubscribe
        .trim_matches(|c| c == '<' || c == '>')
        .to_string();
    assert!(text.contains(&url) && html.contains(&url));
    assert_eq!(
        first.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    // Threading: the update replies to the first mail of the incident.
    let root = first.header("Message-ID").unwrap();
    assert!(
        root.contains(&format!("incident-{id}.")) && root.ends_with("@acme.test>"),
        "{root}"
    );
    assert!(first.header("In-Reply-To").is_none());
    let reply_id = second.header("Message-ID").unwrap();
    assert_ne!(reply_id, root);
    assert_eq!(second.header("In-Reply-To"), Some(root.clone()));
    assert_eq!(second.header("References"), Some(root.clone()));
    assert!(second.parts().0.contains("We found the cause."));

    // The GET shows a button and changes nothing (link scanners prefetch).
    let page = t.http.get(t.url(&path_of(&url))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));

    // One-click POST (RFC 8058): no cookie, no redirect, and it unsubscribes.
    let r = one_click(&t, &url).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.headers().get("location").is_none());
    // A forged token does nothing.
    let forged = format!("{}x", &url[..url.len() - 1]);
    let r = one_click(&t, &forged).await;
    assert_eq!(r.status(), 404);

    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Fixed." }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 3, "an unsubscribed address got mail");
    t.finish().await;
}

#[tokio::test]
async fn subscribers_get_only_the_components_they_chose() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    subscribe_and_confirm(&t, &sink, "all@example.com", json!([])).await;
    subscribe_and_confirm(&t, &sink, "api@example.com", json!(["api"])).await;
    subscribe_and_confirm(&t, &sink, "web@example.com", json!(["web", "email"])).await;
    t.declare(incident(json!({ "web": "partial_outage" })))
        .await;
    t.dispatch_all().await;
    let mails = sink.wait_for(5).await;
    let mut to: Vec<String> = mails[3..].iter().map(Mail::to).collect();
    to.sort();
    assert_eq!(to, vec!["all@example.com", "web@example.com"]);

    let counts = counts(&t).await;
    assert_eq!(counts["confirmed"], 3);
    assert_eq!(counts["all_components"], 1);
    assert_eq!(counts["by_component"]["api"], 1);
    assert_eq!(counts["by_component"]["web"], 1);
    // Operators' side needs a token.
    let r = t
        .http
        .get(t.url("/api/v1/subscribers/counts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    t.finish().await;
}

#[tokio::test]
async fn dkim_signs_the_threading_and_unsubscribe_headers_too() {
    let Some(sink) = start_sink() else { return };
    let key = sink.dir.path().join("dkim.pem");
    let made = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(Stdio::null())
        .status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "the DKIM test makes its RSA key with openssl: install openssl, or set \
         CANDOR_SKIP_SMTP_TESTS=1 to skip the email tests"
    );
    let t = app_with_email(
        &sink,
        &format!(
            "dkim: {{ selector: candor, domain: acme.test, key_file: \"{}\" }},",
            key.display()
        ),
    )
    .await;
    subscribe_and_confirm(&t, &sink, "dee@example.com", json!([])).await;
    let id = t
        .declare(incident(json!({ "web": "partial_outage" })))
        .await["id"]
        .as_i64()
        .unwrap();
    t.dispatch_all().await;
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "Still on it.", "status": "identified" }),
        )
        .await;
    assert!(r.status().is_success());
    t.dispatch_all().await;
    let mails = sink.wait_for(3).await;
    let sig = mails[2].header("DKIM-Signature").expect("a DKIM signature");
    let sig: String = sig.split_whitespace().collect();
    assert!(
        sig.contains("d=acme.test") && sig.contains("s=candor"),
        "{sig}"
    );
    let signed = sig
        .split(';')
        .find_map(|kv| kv.trim().strip_prefix("h="))
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "from",
        "subject",
        "message-id",
        "in-reply-to",
        "references",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            signed.split(':').any(|x| x == h),
            "{h} is not signed: {signed}"
        );
    }
    t.finish().await;
}
