//! What customers read about windows: the calendar feed, the v2 JSON and the status page.

use serde_json::json;

use super::*;

#[tokio::test]
async fn the_calendar_feed_v2_json_and_status_page_show_windows() {
    use icalendar::{CalendarDateTime, Component, DatePerhapsTime, EventStatus};

    let t = spawn_app().await;
    let upgrade = schedule(
        &t,
        json!({ "title": "Database upgrade",
                "description": "Moving to PostgreSQL 17.\r\nExpect a short pause while we switch over, about a minute or two at most.\rThanks.",
                "components": ["api"], "starts_at": "2026-11-25T02:00:00Z", "ends_at": "2026-11-25T04:00:00Z" }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let swap = schedule(
        &t,
        json!({ "title": "Switch swap", "components": ["web"],
                "starts_at": "2026-11-26T02:00:00Z", "duration": "1h" }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let r = t
        .http
        .patch(t.url(&format!("/api/v1/maintenances/{upgrade}")))
        .bearer_auth(&t.token)
        .json(&json!({ "ends_at": "2026-11-25T05:00:00Z" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = t
        .post(&format!("/api/v1/maintenances/{swap}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);

    // The iCalendar feed, read back by a real parser.
    let r = t.page("/maintenance.ics").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/calendar"));
    let text = r.text().await.unwrap();
    assert!(text.contains("\r\n"), "RFC 5545 lines end in CRLF");
    ics_lines_are_strict(&text);
    let cal: icalendar::Calendar = text.parse().expect("a valid iCalendar document");
    let events: Vec<&icalendar::Event> = cal.events().collect();
    assert_eq!(events.len(), 2);
    let find = |id: i64| {
        let uid = format!("maintenance-{id}@status.acme.test");
        *events
            .iter()
            .find(|e| e.get_uid() == Some(uid.as_str()))
            .unwrap_or_else(|| panic!("no event {uid} in {text}"))
    };
    let e = find(upgrade);
    assert_eq!(e.get_summary(), Some("Maintenance: Database upgrade"));
    assert_eq!(e.get_sequence(), Some(1), "the edit bumped SEQUENCE");
    assert_eq!(e.get_status(), Some(EventStatus::Confirmed));
    assert_eq!(
        e.get_start(),
        Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(at(
            25, 2, 0
        ))))
    );
    assert_eq!(
        e.get_end(),
        Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(at(
            25, 5, 0
        ))))
    );
    assert!(e.get_description().unwrap().contains("Public API"));
    assert!(
        e.get_description()
            .unwrap()
            .contains("Moving to PostgreSQL 17.\nExpect"),
        "a description typed over two lines keeps its line break as an escaped newline"
    );
    let c = find(swap);
    assert_eq!(c.get_status(), Some(EventStatus::Cancelled));
    assert_eq!(c.get_sequence(), Some(1));
    // Stable across rebuilds (same UID, same bytes while nothing changed).
    let again = page_text(&t, "/maintenance.ics").await;
    assert_eq!(again, text);

    // Statuspage-compatible JSON: upcoming, then active once it starts.
    let upcoming = page_json(&t, "/api/v2/scheduled-maintenances/upcoming.json").await;
    let list = upcoming["scheduled_maintenances"].as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "the cancelled window is not listed: {upcoming}"
    );
    assert_eq!(list[0]["id"], upgrade.to_string());
    assert_eq!(list[0]["status"], "scheduled");
    assert_eq!(list[0]["impact"], "maintenance");
    assert_eq!(list[0]["scheduled_for"], "2026-11-25T02:00:00.000Z");
    assert_eq!(list[0]["scheduled_until"], "2026-11-25T05:00:00.000Z");
    let summary = page_json(&t, "/api/v2/summary.json").await;
    assert_eq!(
        summary["scheduled_maintenances"].as_array().unwrap().len(),
        1
    );
    assert_eq!(summary["incidents"], json!([]));
    assert_eq!(summary["status"]["indicator"], "none");
    let html = page_text(&t, "/").await;
    assert!(html.contains("Scheduled maintenance") && html.contains("Database upgrade"));
    assert!(
        !html.contains("Switch swap"),
        "cancelled windows are not shown"
    );
    let page = page_text(&t, &format!("/incidents/{upgrade}")).await;
    assert!(
        page.contains("Scheduled for <time datetime=\"2026-11-25T02:00:00Z\" data-end=\"2026-11-25T05:00:00Z\" data-local>Wed 25 Nov, 02:00–05:00 UTC</time>."),
        "{page}"
    );
    assert!(
        !page.contains("reliable estimate"),
        "a window is not an outage: {page}"
    );

    t.clock.set(at(25, 2, 0));
    assert_eq!(t.tick().await, 1);
    let active = page_json(&t, "/api/v2/scheduled-maintenances/active.json").await;
    let list = active["scheduled_maintenances"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "in_progress");
    let status = page_json(&t, "/api/v2/status.json").await;
    assert_eq!(status["status"]["indicator"], "maintenance");
    let incidents = page_json(&t, "/api/v2/incidents/unresolved.json").await;
    assert_eq!(
        incidents["incidents"],
        json!([]),
        "a window is not an incident"
    );
    let upcoming = page_json(&t, "/api/v2/scheduled-maintenances/upcoming.json").await;
    assert_eq!(upcoming["scheduled_maintenances"], json!([]));
    t.dispatch_all().await;
    t.finish().await;
}

/// RFC 5545's line rules, checked strictly: one PRODID and one VERSION, CR only as part of a
/// CRLF line end, and no line longer than 75 octets (longer ones are folded).
fn ics_lines_are_strict(text: &str) {
    assert!(text.ends_with("\r\n"), "the last line ends in CRLF");
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\r' {
            assert_eq!(
                bytes.get(i + 1),
                Some(&b'\n'),
                "a bare CR at byte {i}: {text}"
            );
        }
        if *b == b'\n' {
            assert_eq!(
                i.checked_sub(1).map(|j| bytes[j]),
                Some(b'\r'),
                "a bare LF at byte {i}"
            );
        }
    }
    let lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
    for line in &lines {
        assert!(
            line.len() <= 75,
            "a line of {} octets: {line:?}",
            line.len()
        );
    }
    for name in ["PRODID:", "VERSION:"] {
        let n = lines.iter().filter(|l| l.starts_with(name)).count();
        assert_eq!(n, 1, "{name} appears {n} times: {text}");
    }
}
