//! Maintenance windows in the console: scheduling with the peak-hours warning, cancelling,
//! extending, completing, and turning a started window into an incident.

use super::*;

/// The value of the hidden field `name` in a page.
fn hidden_in(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = html.find(&key).unwrap_or_else(|| panic!("no {name} field"));
    let rest = &html[at + key.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn windows(t: &TestApp) -> Vec<Value> {
    let v: Value = t.get("/api/v1/maintenances").await.json().await.unwrap();
    v["maintenances"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_window_scheduled_in_the_console_warns_about_peak_hours_and_can_be_cancelled() {
    let t = spawn_app_with(Options {
        extra: Some(
            "maintenance:\n  peak_hours:\n    - { name: \"Monday rush\", days: [mon], from: \"09:00\", to: \"17:00\", time_zone: Europe/Paris }\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    assert!(b
        .page("/admin")
        .await
        .contains("href=\"/admin/maintenance\""));
    // Monday 30 November, 10:00 in the site's zone (UTC): 11:00 in Paris, inside the rush.
    let form = [
        ("title", "Cache flush"),
        ("description", "We restart the cache cluster."),
        ("has_components", "1"),
        ("component", "web"),
        ("starts_at", "2026-11-30T10:00"),
        ("end_mode", "duration"),
        ("duration", "1h"),
        ("ends_at", ""),
        ("message", ""),
        ("owner", "ana@acme.test"),
    ];
    let with = |action: &'static str| {
        let mut f = form.to_vec();
        f.push(("action", action));
        f
    };
    // "Check" shows the warning and writes nothing.
    let r = b
        .submit(
            "/admin/maintenance/new",
            "/admin/maintenance/new",
            &with("check"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"warnings\""), "{html}");
    assert!(html.contains("Monday rush"), "{html}");
    assert!(html.contains("Schedule anyway"));
    assert!(windows(&t).await.is_empty());
    // Scheduling without confirming these times shows it again, still writing nothing.
    let r = b
        .submit(
            "/admin/maintenance/new",
            "/admin/maintenance/new",
            &with("schedule"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Monday rush"));
    assert!(windows(&t).await.is_empty());
    // A confirmation for other times does not count.
    let mut moved = with("schedule");
    moved.push(("confirm", "2026-11-30T23:00|duration|1h||web"));
    let r = b
        .submit("/admin/maintenance/new", "/admin/maintenance/new", &moved)
        .await;
    assert_eq!(r.status(), 200);
    assert!(windows(&t).await.is_empty());
    // Confirmed: scheduled anyway.
    let confirm = hidden_in(&html, "confirm");
    let mut confirmed = with("schedule");
    confirmed.push(("confirm", &confirm));
    let r = b
        .submit(
            "/admin/maintenance/new",
            "/admin/maintenance/new",
            &confirmed,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let page = location(&r);
    let id: i64 = page.rsplit('/').next().unwrap().parse().unwrap();
    let ws = windows(&t).await;
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0]["scheduled_for"], "2026-11-30T10:00:00Z");
    assert_eq!(ws[0]["scheduled_until"], "2026-11-30T11:00:00Z");
    assert_eq!(ws[0]["owner"], "ana@acme.test");
    // Listed, and its page repeats the warning and shows its announcement's deliveries.
    assert!(b
        .page("/admin/maintenance")
        .await
        .contains(&format!("href=\"{page}\"")));
    let html = b.page(&page).await;
    assert!(html.contains("Monday rush"));
    assert!(html.contains("Cancel the window"));
    assert!(!html.contains("Turn into an incident"), "only once started");
    assert!(html.contains("data-delivery="));
    // Invalid input names the field; an extension needs a reason.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/extend"),
            &[("version", "1"), ("extend_by", "30m"), ("reason", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("reason"));
    // Edited to a quiet time: announced, and the warning is gone.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/edit"),
            &[
                ("version", "1"),
                ("title", "Cache flush"),
                ("description", "We restart the cache cluster."),
                ("has_components", "1"),
                ("component", "web"),
                ("starts_at", "2026-11-30T22:00"),
                ("end_mode", "end"),
                ("ends_at", "2026-11-30T23:00"),
                ("message", ""),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let html = b.page(&page).await;
    assert!(!html.contains("Monday rush"), "no peak hours any more");
    let version = hidden_in(&html, "version");
    assert_eq!(version, "2");
    // A form from before the edit is refused as stale.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/cancel"),
            &[("version", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Someone else changed this window"));
    // Completing a window that has not started is refused, naming why.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/complete"),
            &[("version", "2")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Cancelled: announced on the public channel and audited with the operator as actor.
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{id}/cancel"),
            &[("version", "2"), ("message", "")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let html = b.page(&page).await;
    assert!(html.contains("Cancelled"), "{html}");
    assert!(
        html.contains(&format!(
            "Maintenance window #{id} cancelled; posted to 1 channel."
        )),
        "the console confirms the action: {html}"
    );
    assert!(!html.contains("Cancel the window"));
    t.dispatch_all().await;
    let kinds: Vec<String> = t
        .public_log()
        .into_iter()
        .filter(|l| l["incident_id"] == id)
        .map(|l| l["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "maintenance_scheduled",
            "maintenance_updated",
            "maintenance_cancelled"
        ]
    );
    let actions = audit_actions(&t).await;
    for action in [
        "maintenance.schedule",
        "maintenance.edit",
        "maintenance.cancel",
    ] {
        assert!(
            actions.contains(&("operator:ana@acme.test".into(), action.into())),
            "{action} audited: {actions:?}"
        );
    }
    assert!(windows(&t).await.iter().all(|w| w["status"] == "cancelled"));
    t.finish().await;
}

#[tokio::test]
async fn a_started_window_is_extended_completed_or_turned_into_an_incident() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let mut ids = Vec::new();
    for title in ["Disk swap", "Kernel update"] {
        let r = b
            .submit(
                "/admin/maintenance/new",
                "/admin/maintenance/new",
                &[
                    ("title", title),
                    ("has_components", "1"),
                    ("component", "api"),
                    ("starts_at", "2026-11-23T13:00"),
                    ("end_mode", "end"),
                    ("ends_at", "2026-11-23T14:00"),
                    ("action", "schedule"),
                ],
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap()
        );
        ids.push(
            location(&r)
                .rsplit('/')
                .next()
                .unwrap()
                .parse::<i64>()
                .unwrap(),
        );
    }
    // The scheduler starts both at 13:00.
    t.advance_to(61);
    t.tick().await;
    let page = format!("/admin/maintenance/{}", ids[0]);
    let html = b.page(&page).await;
    assert!(html.contains("In progress"), "{html}");
    assert!(html.contains("Turn into an incident"));
    assert!(!html.contains("Cancel the window"), "too late to cancel");
    // Started: the edit form has no start or components any more; the title still changes.
    assert!(!html.contains("name=\"starts_at\""));
    let version = hidden_in(&html, "version");
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{}/edit", ids[0]),
            &[
                ("version", &version),
                ("title", "Disk swap (rack 4)"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let html = b.page(&page).await;
    assert!(html.contains("Disk swap (rack 4)"));
    let version = hidden_in(&html, "version");
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{}/extend", ids[0]),
            &[
                ("version", &version),
                ("extend_by", "30m"),
                ("reason", "The new disks are slower to sync than planned."),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let w: Value = t
        .get(&format!("/api/v1/maintenances/{}", ids[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(w["eta"], "2026-11-23T14:30:00Z", "{w}");
    let version = hidden_in(&b.page(&page).await, "version");
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{}/complete", ids[0]),
            &[("version", &version), ("message", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(b.page(&page).await.contains("Completed"));
    // The second one went wrong: it continues as an incident, on the incident page.
    let page = format!("/admin/maintenance/{}", ids[1]);
    let version = hidden_in(&b.page(&page).await, "version");
    let r = b
        .submit(
            &page,
            &format!("/admin/maintenance/{}/incident", ids[1]),
            &[
                ("version", &version),
                ("impact", "major"),
                (
                    "message",
                    "The kernel update broke the API; we are rolling back.",
                ),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/admin/incidents/{}", ids[1]));
    assert_eq!(t.incident(ids[1]).await["impact"], "major");
    let r = b.get(&page).await;
    assert_eq!(location(&r), format!("/admin/incidents/{}", ids[1]));
    let actions = audit_actions(&t).await;
    for action in [
        "maintenance.edit",
        "maintenance.extend",
        "maintenance.complete",
        "maintenance.to_incident",
    ] {
        assert!(
            actions.contains(&("operator:ana@acme.test".into(), action.into())),
            "{action} audited: {actions:?}"
        );
    }
    t.dispatch_all().await;
    t.finish().await;
}
