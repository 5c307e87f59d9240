//! The headers of every kind of mail Candor sends subscribers (the confirmation, an incident's
//! first mail, its update and its resolution, a maintenance notice and its cancellation), as
//! received by the real SMTP server and parsed: RFC 5322's own, the thread (one subject, each
//! copy replying to the first mail that reached its recipient), `List-Id` (RFC 2919), the
//! one-click unsubscribe (RFC 8058), `Auto-Submitted` (RFC 3834), and Message-IDs that carry a
//! part of their installation's own.

use super::*;

/// The headers RFC 5322 requires (Date, From; Message-ID as it should) and the ones every
/// subscriber's mail carries, checked on `m`: what is wrong goes to `problems` (so one run
/// names every fault of every mail). Returns the Message-ID's installation part.
fn check_headers(m: &Mail, what: &str, problems: &mut Vec<String>) -> Option<String> {
    let mut expect = |ok: bool, why: String| {
        if !ok {
            problems.push(format!("{what}: {why}"));
        }
    };
    for name in [
        "Date",
        "From",
        "To",
        "Message-ID",
        "Subject",
        "MIME-Version",
    ] {
        let n = m.headers(name).len();
        expect(n == 1, format!("{name} appears {n} times"));
    }
    let date = m.header("Date").unwrap_or_default();
    expect(
        mailparse::dateparse(&date).is_ok(),
        format!("Date {date:?} is not an RFC 5322 date"),
    );
    let from = m.header("From").unwrap_or_default();
    expect(
        from.contains("Acme Status") && from.ends_with(" <status@acme.test>"),
        format!("From {from:?}"),
    );
    expect(
        m.header("To") == Some(m.to()),
        "To is not the recipient".into(),
    );
    expect(
        m.header("MIME-Version").as_deref() == Some("1.0"),
        "MIME-Version".into(),
    );
    let list_id = m.header("List-Id");
    expect(
        list_id.as_deref() == Some("\"Acme Cloud\" <status-updates.status.acme.test>"),
        format!("List-Id {list_id:?}"),
    );
    let auto = m.header("Auto-Submitted");
    expect(
        auto.as_deref() == Some("auto-generated"),
        format!("Auto-Submitted {auto:?}"),
    );
    let unsubscribe = m.header("List-Unsubscribe").unwrap_or_default();
    expect(
        unsubscribe.starts_with("<https://status.acme.test/unsubscribe/")
            && unsubscribe.ends_with('>'),
        format!("List-Unsubscribe {unsubscribe:?}"),
    );
    let post = m.header("List-Unsubscribe-Post");
    expect(
        post.as_deref() == Some("List-Unsubscribe=One-Click"),
        format!("List-Unsubscribe-Post {post:?}"),
    );
    let (text, html) = m.parts();
    expect(
        !text.trim().is_empty() && !html.trim().is_empty(),
        "a part is empty".into(),
    );
    let install = m.header("Message-ID").and_then(|id| install_part(&id));
    expect(
        install.is_some(),
        format!(
            "no installation part in Message-ID {:?}",
            m.header("Message-ID")
        ),
    );
    install
}

/// `<what.INSTALL@acme.test>` → `INSTALL` (16 hex digits), if it has one.
fn install_part(message_id: &str) -> Option<String> {
    let local = message_id.strip_prefix('<')?.strip_suffix("@acme.test>")?;
    let install = local.rsplit_once('.')?.1;
    (install.len() == 16 && install.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| install.to_string())
}

#[tokio::test]
async fn every_kind_of_mail_has_the_rfc_5322_list_and_one_click_headers_and_one_thread() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    subscribe_and_confirm(&t, &sink, "ann@example.com", json!([])).await;
    // An incident: its first mail, an update that changes the status, the resolution.
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
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Fixed." }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    // A maintenance window: its notice, and its cancellation.
    let r = t
        .post(
            "/api/v1/maintenances",
            &json!({ "title": "Database upgrade", "description": "Moving to PostgreSQL 17.",
                     "components": ["api"], "starts_at": "2026-11-25T02:00:00Z", "duration": "2h" }),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let window = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    t.dispatch_all().await;
    let r = t
        .post(
            &format!("/api/v1/maintenances/{window}/cancel"),
            &json!({ "message": "Postponed." }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    t.dispatch_all().await;

    let mails = sink.wait_for(6).await;
    assert_eq!(mails.len(), 6);
    // Every fault of every mail is gathered, and named together at the end.
    let mut problems = Vec::new();
    let confirmation = &mails[0];
    let install = check_headers(confirmation, "the confirmation", &mut problems);
    let id = confirmation.header("Message-ID").unwrap_or_default();
    if !id.starts_with("<confirm-") {
        problems.push(format!("the confirmation's Message-ID {id:?}"));
    }
    // Its duration reads as the rest of Candor words durations.
    let (text, html) = confirmation.parts();
    if !text.contains("within 2 days") || !html.contains("works for 2 days") {
        problems.push(format!("the confirmation's duration: {text}"));
    }
    let incident_mails = &mails[1..4];
    let window_mails = &mails[4..6];
    for (m, what) in incident_mails
        .iter()
        .zip(["the first mail", "the update", "the resolution"])
        .chain(
            window_mails
                .iter()
                .zip(["the maintenance notice", "the cancellation"]),
        )
    {
        let part = check_headers(m, what, &mut problems);
        if part != install {
            problems.push(format!(
                "{what}: installation part {part:?}, not {install:?}"
            ));
        }
    }
    // One subject per thread; the status is the first line of the text.
    for (thread, subject) in [
        (incident_mails, "[Acme Cloud] Login <failures>"),
        (window_mails, "[Acme Cloud] Database upgrade"),
    ] {
        let subjects: Vec<String> = thread.iter().filter_map(|m| m.header("Subject")).collect();
        if subjects != vec![subject; thread.len()] {
            problems.push(format!(
                "the subjects change within one thread: {subjects:?}"
            ));
        }
    }
    let first_lines: Vec<String> = mails[1..]
        .iter()
        .map(|m| m.parts().0.lines().next().unwrap_or_default().to_string())
        .collect();
    let expected = [
        "Investigating: Login <failures>",
        "Identified: Login <failures>",
        "Resolved: Login <failures>",
        "Scheduled maintenance: Database upgrade",
        "Maintenance cancelled: Database upgrade",
    ];
    if first_lines != expected {
        problems.push(format!("the bodies' first lines: {first_lines:?}"));
    }
    // Each later mail replies to the first one of its thread.
    for thread in [incident_mails, window_mails] {
        let root = thread[0].header("Message-ID");
        if thread[0].header("In-Reply-To").is_some() || thread[0].header("References").is_some() {
            problems.push("a thread's first mail replies to something".into());
        }
        for m in &thread[1..] {
            let subject = m.header("Subject").unwrap_or_default();
            if m.header("Message-ID") == root
                || m.header("In-Reply-To") != root
                || m.header("References") != root
            {
                problems.push(format!("{subject:?} does not reply to {root:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    t.finish().await;
}

#[tokio::test]
async fn each_copy_replies_to_the_first_mail_about_the_incident_that_reached_its_recipient() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    seed_addresses(&t, &["ann@example.com".to_string()]).await;
    let id = t
        .declare(incident(json!({ "web": "partial_outage" })))
        .await["id"]
        .as_i64()
        .unwrap();
    t.dispatch_all().await;
    // Bob subscribes while the incident is open: the update is his first mail about it.
    seed_addresses(&t, &["bob@example.com".to_string()]).await;
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "We found the cause.", "status": "identified" }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Fixed." }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    let mails = sink.mails();
    let of = |to: &str| -> Vec<&Mail> { mails.iter().filter(|m| m.to() == to).collect() };
    let (ann, bob) = (of("ann@example.com"), of("bob@example.com"));
    assert_eq!((ann.len(), bob.len()), (3, 2));
    let ann_root = ann[0].header("Message-ID").unwrap();
    for m in &ann[1..] {
        assert_eq!(m.header("In-Reply-To"), Some(ann_root.clone()));
        assert_eq!(m.header("References"), Some(ann_root.clone()));
    }
    // Bob never got the incident's first mail: his thread starts with the update.
    assert!(
        bob[0].header("In-Reply-To").is_none(),
        "bob's first mail replies to a mail he never got"
    );
    let bob_root = bob[0].header("Message-ID").unwrap();
    assert_eq!(bob_root, ann[1].header("Message-ID").unwrap());
    assert_eq!(bob[1].header("In-Reply-To"), Some(bob_root.clone()));
    assert_eq!(bob[1].header("References"), Some(bob_root));
    t.finish().await;
}

#[tokio::test]
async fn message_ids_name_their_installation_the_same_after_a_restart_and_differently_elsewhere() {
    let Some(sink) = start_sink() else { return };
    // Two installations mailing from the same domain (production and its staging copy).
    let prod = app_with_email(&sink, "").await;
    let staging = app_with_email(&sink, "").await;
    for t in [&prod, &staging] {
        seed(t, 1).await;
        t.declare(incident(json!({ "web": "partial_outage" })))
            .await;
        t.dispatch_all().await;
    }
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    let (a, b) = (
        mails[0].header("Message-ID").unwrap(),
        mails[1].header("Message-ID").unwrap(),
    );
    // The same incident and update numbers, yet not the same Message-ID.
    assert_eq!(
        a.split('.').take(2).collect::<Vec<_>>(),
        b.split('.').take(2).collect::<Vec<_>>()
    );
    assert_ne!(a, b, "two installations used one Message-ID");
    assert!(install_part(&a).is_some(), "no installation part in {a}");
    assert_ne!(install_part(&a), install_part(&b));
    // Production restarts (another process on its database): its ids keep their part.
    let r = prod
        .post(
            "/api/v1/incidents/1/updates",
            &json!({ "message": "Still on it.", "status": "identified" }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let restarted = prod.another_instance(vec![]).await;
    restarted.outbox().drain().await.unwrap();
    let mails = sink.mails();
    assert_eq!(mails.len(), 3);
    let after = mails[2].header("Message-ID").unwrap();
    assert_eq!(install_part(&after), install_part(&a));
    assert_eq!(mails[2].header("In-Reply-To"), Some(a));
    prod.finish().await;
    staging.finish().await;
}

#[tokio::test]
async fn the_confirmation_s_one_click_unsubscribe_stops_any_further_confirmation() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": "nobody-asked@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mails = sink.wait_for(1).await;
    let header = mails[0].header("List-Unsubscribe").unwrap();
    let r = one_click(&t, header.trim_matches(['<', '>'])).await;
    assert_eq!(r.status(), 200);
    let c = counts(&t).await;
    assert_eq!(
        (c["pending"].as_i64(), c["unsubscribed"].as_i64()),
        (Some(0), Some(1)),
        "{c}"
    );
    // Its confirmation link no longer confirms.
    let link = link_in(
        &mails[0].parts().0,
        "https://status.acme.test/subscribe/confirm/",
    );
    let r = t.http.post(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    t.finish().await;
}
