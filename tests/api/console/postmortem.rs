//! Postmortems from the console: drafted after resolution, previewed (sanitised), published on
//! the incident's page, in the v2 JSON and the feeds, announced with a final linked post; action
//! items with owners and due dates, overdue once their day passes unmarked; corrections from
//! the console keep the original.

use super::*;

#[tokio::test]
async fn a_postmortem_is_drafted_previewed_published_and_its_overdue_actions_shown() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let ana = Browser::new(&t);
    ana.login("ana@acme.test").await;
    let id = declare_form(&ana, "Checkout errors", "1h").await;
    let page = format!("/admin/incidents/{id}");

    // A correction from the console: the original stays, marked.
    let update_id = t.incident(id).await["updates"][0]["id"].as_i64().unwrap();
    let r = ana
        .submit(
            &page,
            &format!("{page}/correct"),
            &[
                ("update_id", &update_id.to_string()),
                ("message", "Checkout fails for card payments."),
                ("reason", "only cards were affected"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let public = t
        .page(&page.replace("/admin", ""))
        .await
        .text()
        .await
        .unwrap();
    assert!(public.contains("Corrected at <time"), "{public}");
    assert!(public.contains("only cards were affected"));

    // Not before resolution.
    let r = ana
        .submit(&page, &format!("{page}/postmortem"), &[("body", "# Early")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("resolved"));

    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Fixed." }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body = "# What happened\n\nA bad **deploy**.<script>alert('pwned')</script>\n\n\
                <img src=x onerror=\"alert(1)\">[more](javascript:alert(2))";
    let r = ana
        .submit(&page, &format!("{page}/postmortem"), &[("body", body)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The preview is sanitised; nothing is public yet.
    let console = ana.page(&page).await;
    assert!(console.contains("<strong>deploy</strong>"), "{console}");
    for bad in ["alert('pwned')", "onerror", "javascript:alert"] {
        let preview = console.split("id=\"pm-preview\"").nth(1).unwrap();
        let preview = preview.split("</div>").next().unwrap();
        assert!(!preview.contains(bad), "{bad} in the preview: {preview}");
    }
    let public = t
        .page(&format!("/incidents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!public.contains("What happened"), "a draft is not public");

    // Action items: one due yesterday (site zone UTC; the clock is at 12:00 on 23 Nov), one
    // due later, one due yesterday but done.
    for (text, due) in [
        ("Alert on checkout 5xx", "2026-11-22"),
        ("Canary deploys", "2026-12-15"),
        ("Runbook for rollbacks", "2026-11-22"),
    ] {
        let r = ana
            .submit(
                &page,
                &format!("{page}/postmortem/actions"),
                &[("text", text), ("owner", "Payments team"), ("due_on", due)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{text}");
    }
    let r = ana
        .submit(
            &page,
            &format!("{page}/postmortem/actions"),
            &[("text", "x"), ("owner", "y"), ("due_on", "soon")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("due_on"));
    let console = ana.page(&page).await;
    let runbook = console.split("Runbook for rollbacks").nth(1).unwrap();
    let action_id = runbook
        .split("name=\"action_id\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = ana
        .submit(
            &page,
            &format!("{page}/postmortem/actions/done"),
            &[("action_id", &action_id)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    t.dispatch_all().await;
    let before = t.public_log().len();
    let r = ana
        .submit(&page, &format!("{page}/postmortem/publish"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    t.dispatch_all().await;

    // The incident's page: the sanitised postmortem and the actions, one overdue.
    let public = t
        .page(&format!("/incidents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(public.contains("<h1>What happened</h1>"), "{public}");
    let section = public.split("class=\"pm-body\"").nth(1).unwrap();
    let section = section.split("</section>").next().unwrap();
    for bad in ["<script", "alert('pwned')", "onerror", "javascript:"] {
        assert!(!section.contains(bad), "{bad} in the postmortem: {section}");
    }
    assert!(!public.contains("alert('pwned')"));
    let item = |name: &str| {
        let i = public.find(name).unwrap();
        public[i..i + public[i..].find("</li>").unwrap()].to_string()
    };
    assert!(item("Alert on checkout 5xx").contains("overdue"));
    assert!(!item("Canary deploys").contains("overdue"));
    let runbook = item("Runbook for rollbacks");
    assert!(
        runbook.contains("done") && !runbook.contains("overdue"),
        "{runbook}"
    );

    // v2, the feeds, and the final linked post.
    let v2: Value = t.page("/api/v2/incidents.json").await.json().await.unwrap();
    assert_eq!(v2["incidents"][0]["postmortem_body"], body);
    assert_eq!(
        v2["incidents"][0]["postmortem_published_at"],
        "2026-11-23T12:00:00.000Z"
    );
    let atom = t.page("/feed.atom").await.text().await.unwrap();
    assert!(atom.contains("Checkout errors: Postmortem"), "{atom}");
    assert!(atom.contains(&format!("/incidents/{id}#postmortem")));
    let posts = t.public_log();
    assert_eq!(posts.len(), before + 1);
    let last = posts.last().unwrap().to_string();
    assert!(last.contains("postmortem"), "{last}");
    assert!(last.contains(&format!(
        "https://status.acme.test/incidents/{id}#postmortem"
    )));
    // Published once only.
    let r = ana
        .submit(&page, &format!("{page}/postmortem/publish"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let actions: Vec<String> = audit_actions(&t)
        .await
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    for a in [
        "update.correct",
        "postmortem.save",
        "postmortem.action_add",
        "postmortem.action_done",
        "postmortem.publish",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
    t.finish().await;
}
