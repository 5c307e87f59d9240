//! The scheduler keeps each update's promise: reminders, holding updates, apologies, exactly once.

use std::time::Duration;

use candor::store::schedule;
use serde_json::{json, Value};

use crate::helpers::*;

async fn declare_major(t: &TestApp, eta_in: &str) -> i64 {
    t.declare(json!({
        "title": "Checkout is failing",
        "impact": "major",
        "message": "Payments fail for some customers. We're on it.",
        "components": { "api": "partial_outage", "web": "degraded_performance" },
        "eta_in": eta_in,
        "owner": "Priya from the payments team"
    }))
    .await["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_missed_next_update_time_produces_exactly_one_holding_update() {
    let t = spawn_app().await;
    let id = declare_major(&t, "2h").await; // next update promised by 12:30
    t.dispatch_all().await;

    // Nothing is due before the promise.
    t.advance_to(20);
    assert_eq!(t.tick().await, 0);

    // Five minutes before it, the team is reminded (once), not the public.
    t.advance_to(26);
    assert_eq!(t.tick().await, 1);
    assert_eq!(t.tick().await, 0);
    t.dispatch_all().await;
    let ops = t.ops_log();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["kind"], "ops_reminder");
    assert!(
        ops[0]["text"]
            .as_str()
            .unwrap()
            .contains("promised by Mon 23 Nov, 12:30 UTC"),
        "{}",
        ops[0]["text"]
    );
    // The team acts in the console: the notice links to the incident's console page.
    let console = format!("/admin/incidents/{id}");
    assert!(
        ops[0]["text"].as_str().unwrap().ends_with(&console),
        "{}",
        ops[0]["text"]
    );
    assert!(ops[0]["message"]["incident_url"]
        .as_str()
        .unwrap()
        .ends_with(&console));
    assert_eq!(t.updates_of_kind(id, "scheduled").await.len(), 0);

    // The promise comes and nobody wrote: one holding update, whatever the number of ticks.
    t.advance_to(30);
    assert_eq!(t.tick().await, 1);
    assert_eq!(t.tick().await, 0);
    t.advance(Duration::from_secs(5));
    assert_eq!(t.tick().await, 0);
    let holding = t.updates_of_kind(id, "scheduled").await;
    assert_eq!(holding.len(), 1);
    let words = holding[0]["message"].as_str().unwrap();
    assert!(
        words.contains("30 minutes"),
        "says how long it has been: {words}"
    );
    assert!(
        words.contains("Public API") && words.contains("Website"),
        "says what is affected: {words}"
    );
    assert!(
        words.ends_with("\n— Priya from the payments team"),
        "is signed by the owner, last: {words}"
    );
    assert!(
        !words.contains("14:00 UTC"),
        "leaves the estimate to the post's own estimate line: {words}"
    );
    assert_eq!(holding[0]["author"], "candor");
    // ...and it makes a new promise.
    let inc = t.incident(id).await;
    assert_eq!(inc["next_update_at"], "2026-11-23T13:00:00Z");
    assert_eq!(inc["version"], 2);

    // Delivered to the public channel with its own "next update" line.
    t.dispatch_all().await;
    let last = t.public_log().pop().unwrap();
    assert_eq!(last["kind"], "scheduled");
    let text = last["text"].as_str().unwrap();
    assert!(text.contains(
        "We expect this fixed by Mon 23 Nov, 14:00 UTC. Next update by Mon 23 Nov, 13:00 UTC."
    ));
    assert_eq!(text.matches("14:00 UTC").count(), 1, "said once: {text}");

    let mut conn = t.app.db.pool().acquire().await.unwrap();
    assert_eq!(schedule::count(&mut conn, id, "holding").await.unwrap(), 1);
    t.finish().await;
}

#[tokio::test]
async fn consecutive_holding_updates_never_repeat_the_same_words() {
    let t = spawn_app().await;
    let id = t
        .declare(json!({ "title": "Email delays", "impact": "major", "message": "Mail is slow.",
                         "components": { "email": "degraded_performance" }, "next_update_in": "10m" }))
        .await["id"]
        .as_i64()
        .unwrap();
    let mut seen: Vec<String> = Vec::new();
    for minutes in [10, 40, 70, 100] {
        t.advance_to(minutes);
        assert_eq!(t.tick().await, 1, "holding update at +{minutes}m");
    }
    for u in t.updates_of_kind(id, "scheduled").await {
        let m = u["message"].as_str().unwrap().to_string();
        assert!(
            !m.contains("estimate"),
            "the estimate is the post's own line, not repeated in the words: {m}"
        );
        assert!(
            m.contains("Mail is slow."),
            "quotes the team's last words: {m}"
        );
        seen.push(m);
    }
    assert_eq!(seen.len(), 4);
    for pair in seen.windows(2) {
        let first_line = |s: &str| s.lines().next().unwrap().to_string();
        assert_ne!(
            first_line(&pair[0]),
            first_line(&pair[1]),
            "two in a row open the same way"
        );
    }
    t.dispatch_all().await;
    for post in t.public_log().iter().filter(|l| l["kind"] == "scheduled") {
        let text = post["text"].as_str().unwrap();
        assert_eq!(
            text.matches("reliable estimate").count(),
            1,
            "an incident without an ETA says so, once: {text}"
        );
    }
    t.finish().await;
}

#[tokio::test]
async fn an_operator_update_in_time_means_no_holding_update() {
    let t = spawn_app().await;
    let id = declare_major(&t, "2h").await;
    t.advance_to(25);
    t.post(
        &format!("/api/v1/incidents/{id}/updates"),
        &json!({ "message": "Fix is deploying." }),
    )
    .await;
    // The old promise (12:30) is replaced by a new one (12:55): nothing is due at 12:30.
    t.advance_to(30);
    assert_eq!(t.tick().await, 0);
    assert_eq!(t.updates_of_kind(id, "scheduled").await.len(), 0);
    assert_eq!(
        t.incident(id).await["next_update_at"],
        "2026-11-23T12:55:00Z"
    );
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn a_passed_eta_produces_exactly_one_apology_and_asks_the_team_for_a_new_estimate() {
    let t = spawn_app().await;
    let id = declare_major(&t, "20m").await; // ETA 12:20, next update promised by 12:30
    t.dispatch_all().await;

    t.advance_to(19);
    assert_eq!(t.tick().await, 0);
    t.advance(Duration::from_secs(60)); // 12:20:00, the estimate
    assert_eq!(t.tick().await, 1);
    assert_eq!(t.tick().await, 0);
    t.advance(Duration::from_secs(30));
    assert_eq!(t.tick().await, 0);

    let apologies = t.updates_of_kind(id, "overdue").await;
    assert_eq!(apologies.len(), 1);
    let words = apologies[0]["message"].as_str().unwrap();
    assert!(words.starts_with("We're sorry:"), "{words}");
    assert!(
        words.contains("12:20 UTC"),
        "names the missed estimate: {words}"
    );
    // The apology also promises the next update, so no holding update is due at 12:30.
    assert_eq!(
        t.incident(id).await["next_update_at"],
        "2026-11-23T12:50:00Z"
    );
    t.advance_to(30);
    assert_eq!(t.tick().await, 0);

    t.dispatch_all().await;
    let public = t.public_log();
    let apology = public
        .iter()
        .find(|l| l["kind"] == "overdue")
        .expect("apology published");
    let text = apology["text"].as_str().unwrap();
    assert_eq!(
        text.matches("12:20 UTC").count(),
        1,
        "the apology names the missed estimate once, with no estimate line repeating it: {text}"
    );
    let ops = t.ops_log();
    let ask = ops
        .iter()
        .find(|l| l["kind"] == "ops_eta_passed")
        .expect("team asked for a new estimate");
    assert!(ask["text"]
        .as_str()
        .unwrap()
        .contains("new, honest estimate"));

    // The team gives a new estimate, with a reason; when it passes too, a second apology says so.
    t.post(
        &format!("/api/v1/incidents/{id}/updates"),
        &json!({ "message": "Database failover is slower than planned.", "eta_in": "15m",
                 "eta_reason": "replica needed a full resync" }),
    )
    .await; // at 12:30: ETA 12:45
    let inc = t.incident(id).await;
    let rev = inc["eta_revisions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(rev["old_eta"], "2026-11-23T12:20:00Z");
    assert_eq!(rev["new_eta"], "2026-11-23T12:45:00Z");
    assert_eq!(rev["reason"], "replica needed a full resync");
    t.advance_to(45);
    assert_eq!(t.tick().await, 1);
    let apologies = t.updates_of_kind(id, "overdue").await;
    assert_eq!(apologies.len(), 2);
    assert!(apologies[1]["message"]
        .as_str()
        .unwrap()
        .starts_with("We're sorry again"));

    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn a_resolved_incident_is_owed_nothing() {
    let t = spawn_app().await;
    let id = declare_major(&t, "20m").await;
    t.post(
        &format!("/api/v1/incidents/{id}/resolve"),
        &json!({ "message": "Fixed quickly." }),
    )
    .await;
    t.advance_to(120);
    assert_eq!(t.tick().await, 0);
    t.dispatch_all().await;
    assert!(t.ops_log().is_empty());
    t.finish().await;
}

#[tokio::test]
async fn several_schedulers_racing_take_each_action_once() {
    let t = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(declare_major(&t, "2h").await);
    }
    let id_eta = declare_major(&t, "20m").await;
    let others = [
        t.another_instance(vec![]).await,
        t.another_instance(vec![]).await,
        t.another_instance(vec![]).await,
    ];
    let schedulers: Vec<_> = std::iter::once(t.app.scheduler())
        .chain(others.iter().map(|a| a.scheduler()))
        .collect();

    // Every incident's promise (12:30) and one ETA (12:20) are due; four schedulers tick at once.
    t.advance_to(31);
    let results = futures::future::join_all(schedulers.iter().map(|s| s.tick())).await;
    let total: usize = results.into_iter().map(|r| r.unwrap()).sum();
    assert_eq!(total, 5, "each due action taken by exactly one scheduler");
    // And again, for good measure.
    let results = futures::future::join_all(schedulers.iter().map(|s| s.tick())).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).sum::<usize>(), 0);

    for id in &ids {
        assert_eq!(
            t.updates_of_kind(*id, "scheduled").await.len(),
            1,
            "incident {id}"
        );
    }
    assert_eq!(t.updates_of_kind(id_eta, "overdue").await.len(), 1);
    assert_eq!(t.updates_of_kind(id_eta, "scheduled").await.len(), 0);

    t.dispatch_all().await;
    let incidents_with_holding: Vec<Value> = t
        .public_log()
        .into_iter()
        .filter(|l| l["kind"] == "scheduled")
        .collect();
    assert_eq!(
        incidents_with_holding.len(),
        4,
        "each holding update published once"
    );
    t.finish().await;
}
