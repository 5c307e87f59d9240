//! Incidents in the console: concurrent edits, the audit log of every action, templates
//! that prefill the declare form, and previews counted against each channel's limit.

use super::*;

#[tokio::test]
async fn two_concurrent_edits_give_one_success_and_one_clear_refusal() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    add_operator(&t, "ben@acme.test", operators::Role::Responder).await;
    let ana = Browser::new(&t);
    let ben = Browser::new(&t);
    ana.login("ana@acme.test").await;
    ben.login("ben@acme.test").await;
    let id = declare_form(&ana, "Checkout errors", "1h").await;
    let page = format!("/admin/incidents/{id}");
    let post = format!("/admin/incidents/{id}/update");
    // Both open the incident at the same version, then post at once.
    let (ana_csrf, ben_csrf) = (
        csrf_in(&ana.page(&page).await),
        csrf_in(&ben.page(&page).await),
    );
    let form = |who: &'static str, csrf: String| {
        vec![
            ("csrf", csrf),
            ("version", "1".to_string()),
            ("message", format!("{who}: the fix is rolling out.")),
            ("eta_mode", "keep".to_string()),
        ]
    };
    let (a, b) = tokio::join!(
        ana.http
            .post(t.url(&post))
            .form(&form("Ana", ana_csrf))
            .send(),
        ben.http
            .post(t.url(&post))
            .form(&form("Ben", ben_csrf))
            .send(),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::CONFLICT]);
    let (winner, loser) = if a.status() == StatusCode::SEE_OTHER {
        ("Ana", b)
    } else {
        ("Ben", a)
    };
    let refused = loser.text().await.unwrap();
    assert!(
        refused.contains("Someone else changed this incident"),
        "{refused}"
    );
    assert!(
        refused.contains(&format!("{winner}: the fix is rolling out.")),
        "the refusal shows the other person's update"
    );
    let loser_name = if winner == "Ana" { "Ben" } else { "Ana" };
    assert!(
        refused.contains(&format!(
            ">{loser_name}: the fix is rolling out.</textarea>"
        )),
        "the refused words are kept in the form"
    );
    // Exactly one update was posted, never both.
    let inc = t.incident(id).await;
    assert_eq!(inc["version"], 2);
    assert_eq!(t.updates_of_kind(id, "operator").await.len(), 2);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn every_console_action_lands_in_the_audit_log() {
    let t = spawn_app_with(Options {
        webhook: true,
        ..Options::default()
    })
    .await;
    let mock = t.mock.as_ref().unwrap();
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(400).set_body_string("bad payload"))
        .mount(mock)
        .await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    add_operator(&t, "ben@acme.test", operators::Role::Admin).await;
    let ana = Browser::new(&t);
    let ben = Browser::new(&t);
    ana.login("ana@acme.test").await;
    ben.login("ben@acme.test").await;
    let id = declare_form(&ana, "Checkout errors", "1h").await;
    let page = format!("/admin/incidents/{id}");
    // A revised ETA needs a reason.
    let r = ana
        .submit(
            &page,
            &format!("/admin/incidents/{id}/update"),
            &[
                ("version", "1"),
                ("message", "Slower than hoped."),
                ("eta_mode", "in"),
                ("eta_in", "2h"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("eta_reason"));
    let r = ana
        .submit(
            &page,
            &format!("/admin/incidents/{id}/update"),
            &[
                ("version", "1"),
                ("message", "Slower than hoped."),
                ("eta_mode", "in"),
                ("eta_in", "2h"),
                ("eta_reason", "The restore is slower"),
                ("status", "identified"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let inc = t.incident(id).await;
    assert_eq!(inc["status"], "identified");
    // Ben takes ownership.
    let r = ben
        .submit("/admin", &format!("/admin/incidents/{id}/own"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(t.incident(id).await["owner"], "ben@acme.test");
    // The webhook refuses the payload: its deliveries die; the dashboard lists them.
    t.dispatch_all().await;
    let dash = ben.page("/admin").await;
    assert!(
        dash.contains("Retry now"),
        "dead deliveries are offered a retry"
    );
    assert!(dash.contains("bad payload"));
    let dead_id = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        candor::store::deliveries::troubled(&mut conn, 10)
            .await
            .unwrap()[0]
            .1
            .id
    };
    let r = ben
        .submit(
            "/admin",
            &format!("/admin/deliveries/{dead_id}/retry"),
            &[("back", &page)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), page);
    // Retried at once: pending again, due now.
    assert_eq!(t.unfinished_deliveries().await, 1);
    // A second retry of the same delivery is refused plainly.
    let r = ben
        .submit("/admin", &format!("/admin/deliveries/{dead_id}/retry"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v = t.incident(id).await["version"]
        .as_i64()
        .unwrap()
        .to_string();
    let r = ben
        .submit(
            &page,
            &format!("/admin/incidents/{id}/resolve"),
            &[("version", &v), ("message", "Fixed.")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(t.incident(id).await["status"], "resolved");
    let r = ana.submit("/admin", "/admin/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let actions = audit_actions(&t).await;
    for (actor, action) in [
        ("operator:ana@acme.test", "console.sign_in"),
        ("operator:ana@acme.test", "incident.declare"),
        ("operator:ana@acme.test", "incident.update"),
        ("operator:ben@acme.test", "incident.take_ownership"),
        ("operator:ben@acme.test", "delivery.retry"),
        ("operator:ben@acme.test", "incident.resolve"),
        ("operator:ana@acme.test", "console.sign_out"),
    ] {
        assert!(
            actions.contains(&(actor.to_string(), action.to_string())),
            "{actor} {action} missing from {actions:?}"
        );
    }
    // The updates name the operator, and the ETA revision keeps its reason.
    let inc = t.incident(id).await;
    assert!(inc["updates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["author"] != "token:ci-script"));
    let audit_page = ben.page("/admin/audit").await;
    for needle in [
        "incident.take_ownership",
        "delivery.retry",
        "operator:ana@acme.test",
        // Every entry carries its date.
        ">Mon 23 Nov, ",
    ] {
        assert!(audit_page.contains(needle), "audit page lacks {needle}");
    }
    let incident_page = ben.page(&page).await;
    assert!(incident_page.contains("The restore is slower"));
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn templates_from_config_prefill_the_declare_form() {
    let t = spawn_app_with(Options {
        extra: Some(
            "console:\n  templates:\n    - { id: api-down, name: \"API down\", title: \"API errors\", impact: major, \
             components: { api: major_outage }, message: \"Calls to the API fail.\", eta_in: 45m }\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let form = b.page("/admin/incidents/new").await;
    assert!(form.contains("API down"), "the form offers the template");
    let html = b.page("/admin/incidents/new?template=api-down").await;
    assert!(html.contains("value=\"API errors\""), "title pre-filled");
    assert!(
        html.contains("<option value=\"major\" selected>"),
        "impact pre-filled"
    );
    assert!(
        html.contains("<option value=\"major_outage\" selected>"),
        "component pre-filled"
    );
    assert!(
        html.contains(">Calls to the API fail.</textarea>"),
        "message pre-filled"
    );
    assert!(html.contains("value=\"45m\""), "ETA pre-filled");
    let r = b.get("/admin/incidents/new?template=nope").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("There is no template `nope`"));
    t.finish().await;
}

/// A channel with a short limit, to see the preview count against it.
struct Short;

#[async_trait::async_trait]
impl candor::channels::Channel for Short {
    fn id(&self) -> &str {
        "log"
    }
    async fn deliver(
        &self,
        _msg: &candor::channels::Message,
        _ctx: &candor::channels::DeliveryContext,
    ) -> Result<candor::channels::Sent, candor::channels::SendError> {
        Ok(candor::channels::Sent::default())
    }
    fn preview(&self, msg: &candor::channels::Message) -> Option<candor::channels::Preview> {
        let text = format!("{}: {}", msg.title, msg.body);
        Some(candor::channels::Preview {
            kind: "short",
            length: text.chars().count(),
            text,
            limit: Some(40),
        })
    }
}

#[tokio::test]
async fn previews_count_against_each_channels_limit_and_the_dashboard_flags_overdue() {
    let t = spawn_app_with(Options {
        channels: vec![std::sync::Arc::new(Short)],
        ..Options::default()
    })
    .await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let preview = |message: &'static str| {
        vec![
            ("title", "API errors"),
            ("impact", "major"),
            ("message", message),
            ("eta_mode", "unknown"),
            ("action", "preview"),
        ]
    };
    let html = b
        .submit(
            "/admin/incidents/new",
            "/admin/incidents/new",
            &preview("Short."),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("18 / 40 characters"),
        "a counter against the limit"
    );
    assert!(!html.contains("class=\"count over\""));
    let html = b
        .submit(
            "/admin/incidents/new",
            "/admin/incidents/new",
            &preview("A message far too long for this network's limit."),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("class=\"count over\""),
        "over the limit is flagged"
    );
    assert!(html.contains("60 / 40 characters: too long"));

    // Overdue promises are unmistakable on the dashboard.
    let id = declare_form(&b, "API errors", "30m").await;
    let dash = b.page("/admin").await;
    assert!(!dash.contains("OVERDUE") && !dash.contains("PASSED"));
    assert!(dash.contains("ana@acme.test"), "the owner is shown");
    t.advance(Duration::from_secs(21 * 60));
    let dash = b.page("/admin").await;
    assert!(
        dash.contains("OVERDUE"),
        "the promised update (20m) is overdue"
    );
    assert!(!dash.contains("PASSED"));
    t.advance(Duration::from_secs(10 * 60));
    let dash = b.page("/admin").await;
    assert!(dash.contains("PASSED"), "the ETA (30m) has passed");
    assert!(dash.contains(&format!("/admin/incidents/{id}")));
    t.dispatch_all().await;
    t.finish().await;
}

/// Impacts read as people say them: an incident of impact `none` is "No impact" on the
/// dashboard and its console page, and "no impact" on its public page (never "None impact").
#[tokio::test]
async fn an_incident_without_impact_reads_no_impact_everywhere() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let ana = Browser::new(&t);
    ana.login("ana@acme.test").await;
    let declared = t
        .declare(json!({
            "title": "Slow search reindex",
            "message": "Search results may be a few minutes old while we reindex.",
            "impact": "none",
            "eta_in": "1h"
        }))
        .await;
    let id = declared["id"].as_i64().unwrap();
    for path in ["/admin".to_string(), format!("/admin/incidents/{id}")] {
        let html = ana.page(&path).await;
        assert!(html.contains("No impact"), "{path}: {html}");
        assert!(
            !html.to_lowercase().contains("none impact"),
            "{path}: {html}"
        );
    }
    t.app.rebuild_pages().await.unwrap();
    let public = t
        .get(&format!("/incidents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(public.contains("no impact"), "{public}");
    assert!(!public.contains("none impact"), "{public}");
    t.dispatch_all().await;
    t.finish().await;
}
