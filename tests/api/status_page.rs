//! The public status page: what customers read, served from the page cache.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

async fn outage(t: &TestApp) -> i64 {
    t.declare(json!({
        "title": "Checkout errors", "impact": "major",
        "message": "Some payments fail. We're rolling back a deploy.",
        "components": { "api": "partial_outage" }, "eta_in": "90m", "next_update_in": "20m"
    }))
    .await["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn the_page_shows_the_banner_components_the_estimate_and_the_next_update() {
    let t = spawn_app().await;
    let body = t.page("/").await.text().await.unwrap();
    assert!(body.contains("All Systems Operational"));
    assert!(body.contains("No incidents in the last 7 days."));

    // A resolved incident yesterday, an open one now.
    let old = t
        .declare(
            json!({ "title": "Slow emails", "impact": "minor", "message": "Mail is slow.",
                         "components": { "email": "degraded_performance" }, "eta_in": "1h" }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    t.advance_to(50);
    t.post(
        &format!("/api/v1/incidents/{old}/resolve"),
        &json!({ "message": "Mail flows again." }),
    )
    .await;
    t.advance_to(24 * 60);
    let id = outage(&t).await;
    t.advance_to(24 * 60 + 10);
    t.post(
        &format!("/api/v1/incidents/{id}/updates"),
        &json!({ "message": "Rollback takes longer.", "eta_in": "2h", "eta_reason": "bigger rollback" }),
    )
    .await;

    let r = t.page("/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age=10"));
    let body = r.text().await.unwrap();
    assert!(body.contains("Partial System Outage"), "banner");
    assert!(body.contains("Checkout errors") && body.contains("Rollback takes longer."));
    // The estimate in plain words, with its honest history, and the promise.
    assert!(body.contains("We expect this fixed by <time datetime=\"2026-11-24T14:10:00Z\" data-local>14:10 UTC today</time>."), "{body}");
    assert!(
        body.contains("First estimated <time datetime=\"2026-11-24T13:30:00Z\" data-local>13:30 UTC today</time>, revised once."),
        "{body}"
    );
    assert!(body.contains(
        "Next update by <time datetime=\"2026-11-24T12:40:00Z\" data-local>12:40 UTC today</time>."
    ));
    // Components by group, with their status in words and 90 days of history.
    assert!(body.contains("Public API") && body.contains("Partial outage"));
    assert_eq!(body.matches("class=\"bar\"").count(), 3);
    assert!(
        body.contains(
            "aria-label=\"Mon 23 Nov 2026: Slow emails; 50 min of impact, 100.00% uptime\""
        ),
        "a day names its incidents"
    );
    // Yesterday's resolved incident in the past incidents.
    assert!(body.contains("Resolved <time datetime=\"2026-11-23T12:50:00Z\" data-local>12:50 UTC yesterday</time> after 50 minutes."));
    // The support contact, on every page.
    assert!(body.contains("mailto:help@acme.test"));

    // An incident without an estimate says so, and when the next update comes.
    t.declare(
        json!({ "title": "Login trouble", "impact": "minor", "message": "Looking.",
                      "components": { "web": "degraded_performance" } }),
    )
    .await;
    let body = t.page("/").await.text().await.unwrap();
    assert!(body.contains("We don't have a reliable estimate yet, and we won't guess."));

    let page = t
        .page(&format!("/incidents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Rollback takes longer.") && page.contains("rolling back a deploy"));
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn an_unchanged_page_answers_304_and_a_change_is_fresh() {
    let t = spawn_app().await;
    let first = t.page("/").await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with("W/\""));
    let again = t
        .http
        .get(t.url("/"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());

    outage(&t).await;
    let changed = t.page("/").await;
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    let stale = t
        .http
        .get(t.url("/"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert!(stale.text().await.unwrap().contains("Checkout errors"));
    let r = t
        .http
        .get(t.url("/api/v2/status.json"))
        .header("Origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "*",
        "widgets on other sites can read it"
    );
    for path in ["/feed.atom", "/feed.rss", "/api/v2/summary.json"] {
        let r = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let tag = r.headers()["etag"].to_str().unwrap().to_string();
        let r = t
            .http
            .get(t.url(path))
            .header("If-None-Match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path}");
    }
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn responses_are_precompressed_for_clients_that_accept_it() {
    let t = spawn_app().await;
    outage(&t).await;
    t.app.rebuild_pages().await.unwrap();
    let raw = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    let plain = raw.get(t.url("/")).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.headers()["vary"], "accept-encoding");
    let plain = plain.bytes().await.unwrap();
    for (accept, coding) in [("br, gzip", "br"), ("gzip", "gzip"), ("gzip;q=0, br", "br")] {
        let r = raw
            .get(t.url("/"))
            .header("Accept-Encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-encoding"], coding, "{accept}");
        assert!(r.bytes().await.unwrap().len() < plain.len() / 4);
    }
    // reqwest's own decoding gets the same page back.
    let decoded = t
        .http
        .get(t.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(decoded, plain);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn another_instance_sees_a_change_at_its_next_refresh() {
    let t = spawn_app().await;
    let other = t.another_instance(vec![]).await;
    assert!(!other.refresh_pages().await.unwrap(), "nothing changed yet");
    outage(&t).await;
    assert!(other.refresh_pages().await.unwrap(), "the revision moved");
    let page = other.pages.get("/").unwrap();
    assert!(std::str::from_utf8(&page.identity)
        .unwrap()
        .contains("Checkout errors"));
    assert!(!other.refresh_pages().await.unwrap());
    // The day bars move with time: a minute later the page is rebuilt anyway.
    t.advance(Duration::from_secs(61));
    assert!(other.refresh_pages().await.unwrap());
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn old_incidents_and_history_are_rendered_on_demand() {
    let t = spawn_app().await;
    // 60 incidents: more than the 50 the cache keeps pages for.
    let mut ids = Vec::new();
    for n in 0..60 {
        let id = t
            .declare(json!({ "title": format!("Blip {n}"), "impact": "minor", "message": "Brief.", "eta_in": "10m" }))
            .await["id"]
            .as_i64()
            .unwrap();
        t.post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Gone." }),
        )
        .await;
        ids.push(id);
    }
    t.app.rebuild_pages().await.unwrap();
    assert!(
        t.app.pages.get(&format!("/incidents/{}", ids[0])).is_none(),
        "not pre-rendered"
    );
    let r = t
        .http
        .get(t.url(&format!("/incidents/{}", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Blip 0"));

    let r = t.http.get(t.url("/incidents/999999")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("There is no incident with that number."));
    assert_eq!(
        t.http
            .get(t.url("/incidents/abc"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        t.http
            .get(t.url("/no/such/page"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let r = t
        .http
        .get(t.url("/history?month=2026-11"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("Incident history: November 2026"));
    assert_eq!(body.matches("Blip ").count(), 60);
    assert!(
        !body.contains("month=2026-10"),
        "no earlier history to page to"
    );
    // Before the first incident there is no history to render (and nothing to cache).
    let r = t
        .http
        .get(t.url("/history?month=2026-10"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("History is kept from November 2026"));
    for bad in [
        "/history?month=yesterday",
        "/history?month=2027-01",
        "/history?month=2026-13",
    ] {
        assert_eq!(
            t.http.get(t.url(bad)).send().await.unwrap().status(),
            400,
            "{bad}"
        );
    }
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn the_snapshot_does_not_grow_with_old_history() {
    let t = spawn_app().await;
    // 120 incidents long ago, all resolved.
    t.clock.set(t0() - chrono::Duration::days(400));
    for n in 0..120 {
        let id = t
            .declare(
                json!({ "title": format!("Ancient {n}"), "impact": "major", "message": "Old.",
                             "components": { "api": "major_outage" }, "eta_in": "10m" }),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        t.advance(Duration::from_secs(60));
        t.post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Fixed." }),
        )
        .await;
    }
    t.clock.set(t0());
    let snap = t.snapshot().await;
    assert_eq!(
        snap.recent.len(),
        50,
        "only the newest 50 stories are loaded"
    );
    assert!(snap.active.is_empty());
    assert!(snap
        .components
        .iter()
        .all(|c| c.days.iter().all(|d| d.incidents.is_empty())));
    assert!(snap.components.iter().all(|c| c.uptime == 100.0));
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn when_the_database_is_unreachable_the_page_keeps_its_last_state_and_says_since_when() {
    let t = spawn_app().await;
    outage(&t).await;
    t.app.rebuild_pages().await.unwrap();
    t.advance_to(3);
    // What the refresher does when a refresh fails: keep the pages, add the note.
    t.app.mark_pages_stale();
    let r = t.http.get(t.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Checkout errors"),
        "the last good state is still served"
    );
    assert!(
        body.contains("We can't reach our status database right now")
            && body.contains(
                "<time datetime=\"2026-11-23T12:03:00Z\" data-local>12:03 UTC today</time>"
            ),
        "{body}"
    );
    // The JSON keeps its shape: no note there.
    let v2 = t
        .http
        .get(t.url("/api/v2/status.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!v2.contains("reach"));
    // Marking twice keeps the first time.
    t.advance_to(5);
    t.app.mark_pages_stale();
    assert!(t
        .http
        .get(t.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("12:03 UTC today</time>. It will"));
    // The database answers again: the next refresh rebuilds, and the note is gone.
    assert!(t.app.refresh_pages().await.unwrap());
    let body = t
        .http
        .get(t.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("We can't reach") && body.contains("Checkout errors"));
    t.dispatch_all().await;
    t.finish().await;
}

/// The Public API's row of the status page: from its name to the end of its list item.
fn api_row(body: &str) -> &str {
    let start = body
        .find("<span class=\"cname\">Public API</span>")
        .unwrap();
    let end = start + body[start..].find("</li>").unwrap();
    &body[start..end]
}

#[tokio::test]
async fn an_open_major_outage_counts_today_as_it_happens() {
    let t = spawn_app().await;
    t.declare(json!({
        "title": "API down", "impact": "critical", "message": "The API answers 503.",
        "components": { "api": "major_outage" }
    }))
    .await;
    // Five minutes into the outage the 90-day figure must not round up to a perfect record.
    t.advance_to(5);
    let body = t.page("/").await.text().await.unwrap();
    let row = api_row(&body);
    assert!(row.contains("99.99% uptime over 90 days"), "{row}");
    assert!(!row.contains("100.00% uptime over 90 days"), "{row}");

    // Two hours in (14:00): today's bar shows the outage and today's share so far.
    t.advance_to(120);
    let body = t.page("/").await.text().await.unwrap();
    let row = api_row(&body);
    let today = &row[row.rfind("<a class=").expect("today links to the incident")..];
    assert!(today.starts_with("<a class=\"d-major\""), "{today}");
    // 2 hours down of the 14 gone today.
    assert!(
        today.contains(
            "aria-label=\"Today, Mon 23 Nov 2026: API down; 120 min of impact so far, 85.71% uptime so far\""
        ),
        "{today}"
    );
    assert!(row.contains("Today: 85.71%"), "{row}");
    assert!(row.contains("99.90% uptime over 90 days"), "{row}");
    // Components the outage does not touch keep their perfect record.
    assert!(body.contains("100.00% uptime over 90 days</span><span>Today: 100.00%"));
    let snap = t.snapshot().await;
    let api = snap.components.iter().find(|c| c.id == "api").unwrap();
    assert!(api.uptime < 100.0 && api.days.last().unwrap().uptime < 100.0);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn a_future_maintenance_window_reads_as_planned_work() {
    let t = spawn_app().await;
    // Monday 12:00; the window is Thursday 02:00-04:00.
    let r = t
        .post(
            "/api/v1/maintenances",
            &json!({ "title": "Database upgrade", "components": ["api"],
                     "starts_at": "2026-11-26T02:00:00Z", "ends_at": "2026-11-26T04:00:00Z" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let window = "<time datetime=\"2026-11-26T02:00:00Z\" data-end=\"2026-11-26T04:00:00Z\" data-local>Thu 26 Nov, 02:00–04:00 UTC</time>";

    let body = t.page("/").await.text().await.unwrap();
    assert!(
        body.contains(&format!("Scheduled for {window}</p>")),
        "{body}"
    );
    assert!(body.contains("Will be under maintenance: Public API</p>"));
    assert!(!body.contains("(operational)"), "{body}");

    let page = t
        .page(&format!("/incidents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Planned maintenance · Scheduled</p>"),
        "{page}"
    );
    assert!(page.contains(&format!("Scheduled for {window}.")), "{page}");
    assert!(page.contains("Will be under maintenance: Public API</p>"));
    for wrong in ["none impact", "began", "(operational)", "Next update by"] {
        assert!(
            !page.contains(wrong),
            "a planned window says {wrong:?}: {page}"
        );
    }
    // The JSON promises no update for a window that has not started, as the page does.
    let v2: serde_json::Value = t
        .page("/api/v2/scheduled-maintenances/upcoming.json")
        .await
        .json()
        .await
        .unwrap();
    let w = &v2["scheduled_maintenances"][0];
    assert_eq!(w["impact"], "maintenance");
    assert_eq!(w["next_update_at"], serde_json::Value::Null);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn an_incident_across_midnight_dates_every_time() {
    let t = spawn_app().await;
    // Monday 23:30 to Tuesday 00:40 (the site's zone is UTC).
    t.advance_to(11 * 60 + 30);
    let id = t
        .declare(json!({
            "title": "Late-night errors", "impact": "major", "message": "Errors on checkout.",
            "components": { "api": "partial_outage" }, "eta_in": "40m"
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    t.advance_to(12 * 60 + 20);
    let body = t.page("/").await.text().await.unwrap();
    assert!(
        body.contains(
            "began <time datetime=\"2026-11-23T23:30:00Z\" data-local>23:30 UTC yesterday</time>"
        ),
        "{body}"
    );
    assert!(
        body.contains("Our estimate of <time datetime=\"2026-11-24T00:10:00Z\" data-local>00:10 UTC today</time> has passed"),
        "{body}"
    );
    t.advance_to(12 * 60 + 40);
    t.post(
        &format!("/api/v1/incidents/{id}/resolve"),
        &json!({ "message": "Fixed." }),
    )
    .await;

    // Two days later the incident page and the history say which day each time was.
    t.advance_to(3 * 24 * 60);
    let page = t
        .page(&format!("/incidents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("began <time datetime=\"2026-11-23T23:30:00Z\" data-local>Mon 23 Nov, 23:30 UTC</time> · resolved <time datetime=\"2026-11-24T00:40:00Z\" data-local>Tue 24 Nov, 00:40 UTC</time> after 1 hour 10 minutes"),
        "{page}"
    );
    let history = t.page("/history?month=2026-11").await.text().await.unwrap();
    assert!(
        history.contains("data-local>Mon 23 Nov, 23:30 UTC</time>"),
        "{history}"
    );
    // The page's script knows the site's zone, to date a time whose day differs for the reader.
    assert!(history.contains("<html lang=\"en\" data-zone=\"UTC\">"));
    t.dispatch_all().await;
    t.finish().await;
}
