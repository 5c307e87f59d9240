//! A correction by email: in the incident's thread, to everyone who got the original (and
//! nobody who did not), over a real SMTP server.

use super::*;

#[tokio::test]
async fn a_correction_mails_those_who_got_the_original_in_the_same_thread() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    subscribe_and_confirm(&t, &sink, "ann@example.com", json!([])).await;
    // Bob follows only email delivery: he never gets the web incident's mail.
    subscribe_and_confirm(&t, &sink, "bob@example.com", json!(["email"])).await;
    let id = t
        .declare(incident(json!({ "web": "partial_outage" })))
        .await["id"]
        .as_i64()
        .unwrap();
    t.dispatch_all().await;
    let (root, subject) = {
        let mails = sink.wait_for(3).await;
        let original = &mails[2];
        assert_eq!(original.to(), "ann@example.com");
        (
            original.header("Message-ID").unwrap(),
            original.header("Subject"),
        )
    };
    // Carl subscribes after the original went out: the correction is not his.
    subscribe_and_confirm(&t, &sink, "carl@example.com", json!([])).await;
    let update_id = t.incident(id).await["updates"][0]["id"].as_i64().unwrap();
    t.advance(std::time::Duration::from_secs(300));
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates/{update_id}/corrections"),
            &json!({ "message": "Some users of the EU region cannot log in.",
                     "reason": "it is only the EU region" }),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    let mails = sink.wait_for(5).await;
    assert_eq!(mails.len(), 5, "ann's correction only");
    let fix = &mails[4];
    assert_eq!(fix.to(), "ann@example.com");
    assert_eq!(fix.header("In-Reply-To"), Some(root.clone()));
    assert_eq!(fix.header("References"), Some(root));
    assert_eq!(fix.header("Subject"), subject);
    let (text, html) = fix.parts();
    assert!(
        text.contains("Correction to our update of Mon 23 Nov, 12:00 UTC. It now reads: \"Some users of the EU region cannot log in.\""),
        "{text}"
    );
    assert!(text.contains("Why: it is only the EU region"), "{text}");
    assert!(html.contains("it is only the EU region"));
    t.finish().await;
}

#[tokio::test]
async fn a_published_postmortem_is_mailed_in_the_incidents_thread() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    subscribe_and_confirm(&t, &sink, "ann@example.com", json!([])).await;
    let id = t
        .declare(incident(json!({ "web": "partial_outage" })))
        .await["id"]
        .as_i64()
        .unwrap();
    t.dispatch_all().await;
    let root = sink.wait_for(2).await[1].header("Message-ID").unwrap();
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Fixed." }),
        )
        .await;
    assert_eq!(r.status(), 200);
    t.dispatch_all().await;
    sink.wait_for(3).await;
    let (env, actor, now) = (
        t.app.env(),
        candor::commands::Actor::token("ci-script"),
        t.clock_now(),
    );
    let mut unit = t.app.begin().await.unwrap();
    candor::commands::save_postmortem(&env, unit.tx(), &actor, id, "# What happened", now)
        .await
        .unwrap();
    candor::commands::publish_postmortem(&env, unit.tx(), &actor, id, now)
        .await
        .unwrap();
    unit.commit().await.unwrap();
    t.dispatch_all().await;
    let mails = sink.wait_for(4).await;
    let pm = &mails[3];
    assert_eq!(pm.to(), "ann@example.com");
    assert_eq!(pm.header("In-Reply-To"), Some(root));
    let (text, _) = pm.parts();
    assert!(text.contains("published our postmortem"), "{text}");
    assert!(
        text.contains(&format!(
            "https://status.acme.test/incidents/{id}#postmortem"
        )),
        "{text}"
    );
    t.finish().await;
}
