//! Subscriber changes through the one write path: every change is audited under the actor's
//! audit name, and confirmation mails are outbox deliveries, retried while the mail server is
//! down and visible to operators, whose link never dies before a new mail is out.

use std::time::Duration;

use candor::store::{audit, deliveries, subscribers, tokens};
use serde_json::{json, Value};

use crate::email::{app_with_email, start_sink, Sink};
use crate::helpers::*;

const CONFIRM: &str = "https://status.acme.test/subscribe/confirm/";

/// Subscribes through the public API (a 202 whatever happens next).
async fn ask(t: &TestApp, email: &str) {
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
}

/// The confirmation token in the link of mail `n` the sink received.
fn token_in(sink: &Sink, n: usize) -> String {
    let mails = sink.mails();
    let (text, _) = mails[n].parts();
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with(CONFIRM))
        .unwrap_or_else(|| panic!("no confirmation link in {text}"))
        .to_string();
    link[CONFIRM.len()..].to_string()
}

async fn follow(t: &TestApp, token: &str) -> u16 {
    t.http
        .post(t.url(&format!("/subscribe/confirm/{token}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn subscriber_id(t: &TestApp, email: &str) -> i64 {
    let list: Value = t.get("/api/v1/subscribers").await.json().await.unwrap();
    list["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not listed: {list}"))["id"]
        .as_i64()
        .unwrap()
}

/// The stored hash of a subscriber's working confirmation link.
async fn confirm_hash(t: &TestApp, id: i64) -> Option<String> {
    let (hash,): (Option<String>,) =
        sqlx::query_as("SELECT confirm_hash FROM subscribers WHERE id = $1")
            .bind(id)
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    hash
}

/// (actor, action, detail) of every audit entry, oldest first.
async fn audit_log(t: &TestApp) -> Vec<(String, String, Value)> {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let mut all: Vec<_> = audit::recent(&mut conn, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.detail))
        .collect();
    all.reverse();
    all
}

/// (audience, incident_id, state, payload, last_error) of every confirmation delivery.
type Row = (String, Option<i64>, String, String, Option<String>);

async fn confirmation_deliveries(t: &TestApp) -> Vec<Row> {
    sqlx::query_as(
        "SELECT audience, incident_id, state, payload, last_error FROM deliveries \
         WHERE audience = 'subscriber' ORDER BY id",
    )
    .fetch_all(t.app.db.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn the_api_removing_a_subscriber_is_audited_under_the_tokens_audit_name() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    ask(&t, "ann@example.com").await;
    t.dispatch_all().await;
    let id = subscriber_id(&t, "ann@example.com").await;
    let r = t
        .http
        .delete(t.url(&format!("/api/v1/subscribers/{id}")))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let removed: Vec<_> = audit_log(&t)
        .await
        .into_iter()
        .filter(|(_, action, _)| action == "subscriber.remove")
        .collect();
    // `token:<name>`, as the token's incident changes are audited.
    assert_eq!(
        removed,
        vec![(
            "token:ci-script".to_string(),
            "subscriber.remove".to_string(),
            json!({ "subscriber_id": id })
        )]
    );
    // Removing again: a 404 naming the id, and no second entry.
    let r = t
        .http
        .delete(t.url(&format!("/api/v1/subscribers/{id}")))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains(&format!("no subscriber with id {id}")));
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn the_api_sending_a_confirmation_again_is_audited() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    ask(&t, "ann@example.com").await;
    t.dispatch_all().await;
    let id = subscriber_id(&t, "ann@example.com").await;
    let r = t
        .post(
            &format!("/api/v1/subscribers/{id}/confirmation"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "status": "sent" })
    );
    let resent: Vec<_> = audit_log(&t)
        .await
        .into_iter()
        .filter(|(_, action, _)| action == "subscriber.resend_confirmation")
        .map(|(actor, _, detail)| (actor, detail["subscriber_id"].clone()))
        .collect();
    assert_eq!(resent, vec![("token:ci-script".to_string(), json!(id))]);
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 2, "the second confirmation went out");
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn with_the_mail_server_down_a_resend_keeps_the_old_link_working_until_the_new_mail_is_out() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    ask(&t, "ann@example.com").await;
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 1);
    let old = token_in(&sink, 0);
    let id = subscriber_id(&t, "ann@example.com").await;
    assert_eq!(confirm_hash(&t, id).await, Some(tokens::hash(&old)));

    // The mail server refuses everything for now (451). The resend is accepted and queued.
    sink.fail_after(Some(1));
    let r = t
        .post(
            &format!("/api/v1/subscribers/{id}/confirmation"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let report = t.dispatch_all().await;
    assert_eq!((report.claimed, report.retrying), (1, 1));
    assert_eq!(sink.mails().len(), 1, "nothing got through");
    // The old link still works: nothing replaced it, since no new mail went out.
    assert_eq!(confirm_hash(&t, id).await, Some(tokens::hash(&old)));
    // Operators see it among the deliveries that failed, waiting for its retry.
    let troubled = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        deliveries::troubled(&mut conn, 25).await.unwrap()
    };
    assert_eq!(troubled.len(), 1);
    let (incident, d) = &troubled[0];
    assert_eq!((*incident, d.channel.as_str()), (None, "email"));
    assert!(d.last_error.as_deref().unwrap().contains("451"), "{d:?}");
    assert!(!d.last_error.as_deref().unwrap().contains("ann@example.com"));

    // The server is back: after the backoff, the retry sends a mail with a new link, which
    // replaces the old one.
    sink.fail_after(None);
    t.advance(Duration::from_secs(11 * 60));
    let report = t.dispatch_all().await;
    assert_eq!(report.delivered, 1);
    assert_eq!(sink.mails().len(), 2);
    assert_eq!(sink.mails()[1].to(), "ann@example.com");
    let new = token_in(&sink, 1);
    assert_ne!(new, old);
    assert_eq!(follow(&t, &old).await, 404);
    assert_eq!(follow(&t, &new).await, 200);
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn with_the_mail_server_down_a_subscriptions_confirmation_is_retried_until_it_arrives() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    sink.fail_after(Some(0));
    ask(&t, "bob@example.com").await;
    t.dispatch_all().await;
    assert!(sink.mails().is_empty());
    // Queued in the outbox as a delivery of no incident, for the subscriber alone, carrying
    // the subscriber's id: neither the address nor a token.
    let rows = confirmation_deliveries(&t).await;
    assert_eq!(rows.len(), 1);
    let (audience, incident, state, payload, error) = &rows[0];
    assert_eq!(
        (audience.as_str(), *incident, state.as_str()),
        ("subscriber", None, "pending")
    );
    let id = subscriber_id(&t, "bob@example.com").await;
    assert_eq!(
        serde_json::from_str::<Value>(payload).unwrap(),
        json!({ "subscriber_id": id })
    );
    assert!(error.is_some());
    // Asking again (after the minute), or an operator's resend, while it waits adds no second
    // mail: the queued one is the one asked for.
    t.advance(Duration::from_secs(61));
    ask(&t, "bob@example.com").await;
    let r = t
        .post(
            &format!("/api/v1/subscribers/{id}/confirmation"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(confirmation_deliveries(&t).await.len(), 1);

    sink.fail_after(None);
    t.advance(Duration::from_secs(11 * 60));
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 1);
    let token = token_in(&sink, 0);
    assert!(!payload.contains(&token));
    // The link is valid for `confirm_within` (48 hours by default) from when it was sent.
    let (expires,): (i64,) =
        sqlx::query_as("SELECT confirm_expires_at FROM subscribers WHERE id = $1")
            .bind(id)
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    let sent_at = t.clock_now();
    assert_eq!(
        expires,
        (sent_at + chrono::Duration::hours(48)).timestamp_millis()
    );
    assert_eq!(follow(&t, &token).await, 200);
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn a_confirmation_for_someone_who_confirmed_meanwhile_sends_nothing() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    ask(&t, "cat@example.com").await;
    t.dispatch_all().await;
    let id = subscriber_id(&t, "cat@example.com").await;
    // Sent again, but the first link is followed before the outbox gets to it.
    let r = t
        .post(
            &format!("/api/v1/subscribers/{id}/confirmation"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(follow(&t, &token_in(&sink, 0)).await, 200);
    let report = t.dispatch_all().await;
    assert_eq!(report.delivered, 1);
    assert_eq!(sink.mails().len(), 1, "no mail for a confirmed subscriber");
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn the_public_site_s_changes_are_audited_as_public_by_subscriber_id_only() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    ask(&t, "dan@example.com").await;
    // Within the minute: answered the same, but nothing new is written or audited.
    ask(&t, "dan@example.com").await;
    t.dispatch_all().await;
    let id = subscriber_id(&t, "dan@example.com").await;
    assert_eq!(follow(&t, &token_in(&sink, 0)).await, 200);
    let unsubscribe_token = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        let salt = subscribers::salt(&mut conn, id).await.unwrap().unwrap();
        t.app
            .email
            .as_ref()
            .unwrap()
            .unsubscribe_key()
            .token(id, &salt)
    };
    for _ in 0..2 {
        let r = t
            .http
            .post(t.url(&format!("/unsubscribe/{unsubscribe_token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the link works twice");
    }
    let log = audit_log(&t).await;
    let public: Vec<(&str, &str)> = log
        .iter()
        .map(|(actor, action, _)| (actor.as_str(), action.as_str()))
        .collect();
    assert_eq!(
        public,
        vec![
            ("public", "subscriber.subscribe"),
            ("public", "subscriber.confirm"),
            ("public", "subscriber.unsubscribe"),
        ]
    );
    for (_, _, detail) in &log {
        assert_eq!(detail["subscriber_id"], id);
        assert!(!detail.to_string().contains("dan@"), "{detail}");
    }
    // A link that is not valid changes nothing and is not audited.
    assert_eq!(follow(&t, "not-a-real-token").await, 404);
    assert_eq!(audit_log(&t).await.len(), 3);
    t.assert_outbox_empty().await;
    t.finish().await;
}

#[tokio::test]
async fn delivered_confirmations_are_swept_with_other_old_deliveries() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    ask(&t, "eve@example.com").await;
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 1);
    assert_eq!(confirmation_deliveries(&t).await.len(), 1);
    // Past `retention.deliveries` (90 days by default), the scheduler's sweep deletes it.
    t.advance(Duration::from_secs(91 * 24 * 3600));
    t.tick().await;
    assert!(confirmation_deliveries(&t).await.is_empty());
    t.assert_outbox_empty().await;
    t.finish().await;
}

/// Migration 0012 lets a delivery have no incident. On SQLite it rebuilds `deliveries`: every
/// row, its `email_sends`, the id sequence, the foreign keys and the indexes must survive.
#[tokio::test]
async fn migration_0012_keeps_every_delivery_its_sends_ids_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let backend = if on_postgres() { "postgres" } else { "sqlite" };
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let before = dir.path().join("before-0012");
    std::fs::create_dir(&before).unwrap();
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "0012" {
            std::fs::copy(&path, before.join(&name)).unwrap();
        }
    }
    let db = candor::store::Db::connect(&url, 2).await.unwrap();
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(db.pool())
        .await
        .unwrap();
    let pool = db.pool();
    let run = |sql: &'static str| async move { sqlx::query(sql).execute(pool).await };
    run(
        "INSERT INTO incidents (title, impact, status, next_update_at, started_at, created_at, \
         updated_at) VALUES ('Old', 'minor', 'investigating', 5, 1, 1, 1)",
    )
    .await
    .unwrap();
    for _ in 0..3 {
        run(
            "INSERT INTO deliveries (incident_id, channel, audience, payload, state, attempts, \
             next_attempt_at, created_at, delivered_at, remote_id) \
             VALUES (1, 'email', 'public', '{}', 'delivered', 1, 2, 2, 3, '<m@x>')",
        )
        .await
        .unwrap();
    }
    run("DELETE FROM deliveries WHERE id = 3").await.unwrap();
    run("INSERT INTO email_sends (delivery_id, subscriber_id, state, sent_at) VALUES (2, 7, 'sent', 3)")
        .await
        .unwrap();

    db.migrate().await.unwrap();

    let rows: Vec<(i64, Option<i64>, String, Option<String>)> =
        sqlx::query_as("SELECT id, incident_id, state, remote_id FROM deliveries ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    let kept = |id| {
        (
            id,
            Some(1),
            "delivered".to_string(),
            Some("<m@x>".to_string()),
        )
    };
    assert_eq!(rows, vec![kept(1), kept(2)]);
    let sends: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT delivery_id, subscriber_id, state FROM email_sends")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(sends, vec![(2, 7, "sent".to_string())]);
    // A delivery of no incident is allowed now, and ids are not reused.
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO deliveries (incident_id, channel, audience, payload, state, attempts, \
         next_attempt_at, created_at) VALUES (NULL, 'email', 'subscriber', '{}', 'pending', 0, 2, 2) \
         RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(id, 4);
    // Foreign keys still hold both ways.
    assert!(run("INSERT INTO email_sends (delivery_id, subscriber_id, state, sent_at) VALUES (99, 1, 'sent', 3)")
        .await
        .is_err());
    assert!(run("INSERT INTO deliveries (incident_id, channel, audience, payload, state, attempts, \
                 next_attempt_at, created_at) VALUES (42, 'email', 'public', '{}', 'pending', 0, 2, 2)")
        .await
        .is_err());
    let index_sql = if on_postgres() {
        "SELECT indexname::TEXT FROM pg_indexes WHERE tablename = 'deliveries' \
         AND indexname <> 'deliveries_pkey' ORDER BY indexname"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' \
         AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name"
    };
    let indexes: Vec<(String,)> = sqlx::query_as(index_sql).fetch_all(pool).await.unwrap();
    let indexes: Vec<String> = indexes.into_iter().map(|(n,)| n).collect();
    assert_eq!(
        indexes,
        [
            "deliveries_finished_age",
            "deliveries_incident",
            "deliveries_leased",
            "deliveries_pending",
            "deliveries_unfinished",
            "deliveries_update",
        ]
    );
}
