//! The public promise record: the clock is driven through three incidents with kept, late,
//! held and overdue promises and met, revised and missed estimates, and the figures on
//! `GET /api/v1/record`, in the v2 summary and on the pages are checked against the hand
//! computation written out below.

use serde_json::{json, Value};

use crate::helpers::*;

const MAPPING: &str = "alertmanager: { components: { payments-gw: api } }\n";

async fn ok(t: &TestApp, path: &str, body: Value) {
    let r = t.post(path, &body).await;
    assert_eq!(r.status(), 200, "{path}: {}", r.text().await.unwrap());
}

async fn public_json(t: &TestApp, path: &str) -> Value {
    // No token: the record is public, as the status page is.
    let r = t.page(path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_record_matches_a_hand_computation() {
    let t = spawn_app_with(Options {
        extra: Some(MAPPING.into()),
        ..Default::default()
    })
    .await;

    // Incident A, major (updates every 30 min), opened by Alertmanager at 12:00; the alert
    // started at 11:58:30.123.
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/alertmanager-firing.json")).unwrap();
    let r = t.post("/api/v1/integrations/alertmanager", &fixture).await;
    assert_eq!(r.status(), 200);
    let a = r.json::<Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap();
    let upd = format!("/api/v1/incidents/{a}/updates");
    // 12:20: estimate 13:20 (first), next by 12:50.   12:30 promise: kept.
    t.advance_to(20);
    ok(
        &t,
        &upd,
        json!({ "message": "Found a bad deploy.", "eta_in": "60m" }),
    )
    .await;
    // 13:05: next by 13:35.                            12:50 promise: late by 15 min.
    t.advance_to(65);
    ok(&t, &upd, json!({ "message": "Rolling back." })).await;
    // 13:40: estimate 14:00, next by 14:10.            13:35 promise: late by 5 min.
    //                                                  13:20 estimate: missed (passed, open).
    t.advance_to(100);
    ok(
        &t,
        &upd,
        json!({ "message": "Rollback slow.", "eta_in": "20m",
                            "eta_reason": "the rollback is slow" }),
    )
    .await;
    // 13:50: estimate 14:30, next by 14:20.            14:10 promise: kept.
    //                                                  14:00 estimate: revised in time.
    t.advance_to(110);
    ok(
        &t,
        &upd,
        json!({ "message": "One region left.", "eta_in": "40m",
                            "eta_reason": "one region is left" }),
    )
    .await;
    // 14:25: nobody wrote; Candor's holding update.    14:20 promise: late by 5 min (held).
    t.advance_to(145);
    assert_eq!(t.tick().await, 1);
    assert_eq!(t.updates_of_kind(a, "scheduled").await.len(), 1);
    // 14:28: resolved.                                 holding's promise: kept.
    //                                                  14:30 estimate: met.
    t.advance_to(148);
    ok(
        &t,
        &format!("/api/v1/incidents/{a}/resolve"),
        json!({ "message": "All regions healthy." }),
    )
    .await;

    // Incident B, declared at 15:00 with estimate 15:30, next by 15:30; resolved at 15:20.
    // 15:30 promise: kept; 15:30 estimate: met, 10 min early.
    t.advance_to(180);
    let b = t
        .declare(
            json!({ "title": "Slow logins", "impact": "major", "message": "Logins are slow.",
                         "components": { "web": "degraded_performance" }, "eta_in": "30m" }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    t.advance_to(200);
    ok(
        &t,
        &format!("/api/v1/incidents/{b}/resolve"),
        json!({ "message": "Logins are fast again." }),
    )
    .await;

    // Incident C, declared at 16:00 with estimate 16:15, next by 16:30; still open at 16:45
    // and no tick: 16:30 promise overdue by 15 min; 16:15 estimate missed.
    t.advance_to(240);
    t.declare(
        json!({ "title": "Mail delays", "impact": "major", "message": "Mail is late.",
                      "components": { "email": "degraded_performance" }, "eta_in": "15m" }),
    )
    .await;
    t.advance_to(285);

    // By hand:
    // promises  A: kept 12:30, 14:10, holding's; late 15, 5, 5 (held) min.  B: kept 1.
    //           C: overdue 15 min.  kept 4, late 4 (1 held, 1 overdue), due 8, share 0.5;
    //           lateness 5, 5, 15, 15 min: median 10 min = 600 s, max 900 s.
    // estimates A: 13:20 missed, 14:00 revised, 14:30 met. B: met. C: missed.
    //           given 5, met 2, revised 1, missed 2, pending 0.
    // first estimates' error: A 14:28 - 13:20 = +68 min, B 15:20 - 15:30 = -10 min:
    //           median (4080 - 600) / 2 = 1740 s.
    // alert to first post: A 12:00:00 - 11:58:30.123 = 89.877 s, whole seconds 89.
    let expected = json!({
        "days": 90,
        "incidents": 3,
        "promises": { "due": 8, "kept": 4, "late": 4, "late_held": 1, "overdue": 1,
                      "pending": 0, "late_median_seconds": 600, "late_max_seconds": 900,
                      "share_kept": 0.5 },
        "estimates": { "given": 5, "met": 2, "revised": 1, "missed": 2, "pending": 0 },
        "first_estimates_judged": 2,
        "first_estimate_error_median_seconds": 1740,
        "alerted_incidents": 1,
        "alert_to_post_median_seconds": 89,
        // Nobody wrote in (the inbox's figures are checked in tests/api/inbox/claims.rs).
        "conversations": { "conversations": 0, "answered": 0, "share_answered": null,
                           "first_answer_median_seconds": null, "closable": 0, "closed": 0,
                           "share_closed": null },
    });
    let record = public_json(&t, "/api/v1/record").await;
    assert_eq!(record, expected);
    let summary = public_json(&t, "/api/v2/summary.json").await;
    assert_eq!(summary["record"], expected);

    // The status page says it in words, one sentence each.
    let page = t.page("/").await.text().await.unwrap();
    assert!(page.contains("How we kept our word"), "{page}");
    assert!(page.contains("50% (4 of 8)"), "{page}");
    assert!(
        page.contains("4 came late, by 10 minutes at the median; 1 of those were Candor"),
        "{page}"
    );
    assert!(page.contains("5 given: 2 met, 1 revised in time, 2 missed"));
    assert!(page.contains("29 minutes later than first said"));

    // Incident A's page: its own record.
    let html = t
        .page(&format!("/incidents/{a}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("6 updates promised, 3 kept on time, 3 late (the latest by 15 minutes)"),
        "{html}"
    );
    assert!(html.contains("First estimate <time"), "{html}");
    assert!(
        html.contains("1 hour 8 minutes later than first said"),
        "{html}"
    );
    assert!(html.contains("3 estimates given: 1 met, 1 revised in time, 1 missed"));
    assert!(
        html.contains(": 1 minute later."),
        "alert to post (89 s): {html}"
    );
    let html = t
        .page(&format!("/incidents/{b}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("1 update promised, 1 kept on time"), "{html}");
    assert!(
        html.contains("10 minutes earlier than first said"),
        "{html}"
    );

    // A record of nothing old: 91 days on, the incidents have left the window.
    t.advance(std::time::Duration::from_secs(91 * 86_400));
    let record = public_json(&t, "/api/v1/record").await;
    assert_eq!(record["incidents"], 0);
    assert_eq!(record["promises"]["share_kept"], Value::Null);
    t.dispatch_all().await;
    t.finish().await;
}
