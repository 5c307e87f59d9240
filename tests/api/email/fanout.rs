//! Fan-outs to many subscribers: resumed after a failure or a killed worker without sending
//! anybody the same update twice, at the configured rate, pipelined or not, with refusals
//! recorded per address.

use super::*;

#[tokio::test]
async fn a_fan_out_interrupted_midway_resumes_in_another_process_and_sends_nobody_twice() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    seed(&t, 40).await;
    // The mail server goes away after 13 messages.
    sink.fail_after(Some(13));
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 13);
    let delivery: (i64, String) = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        sqlx::query_as("SELECT id, state FROM deliveries WHERE channel = 'email'")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(delivery.1, "pending", "the delivery waits for a retry");
    let reach: Value = t
        .get(&format!("/api/v1/deliveries/{}/reach", delivery.0))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reach["sent"], 13);
    // The server is back; another process (a restart) picks the delivery up after its backoff.
    sink.fail_after(None);
    t.advance(Duration::from_secs(3600));
    let other = t.another_instance(vec![]).await;
    other.outbox().drain().await.unwrap();
    let mails = sink.mails();
    let mut to: Vec<String> = mails.iter().map(Mail::to).collect();
    to.sort();
    let before = to.len();
    to.dedup();
    assert_eq!(before, to.len(), "someone got the update twice");
    assert_eq!(to.len(), 40, "someone was skipped");
    let reach: Value = t
        .get(&format!("/api/v1/deliveries/{}/reach", delivery.0))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reach["sent"], 40);
    t.finish().await;
}

#[tokio::test]
async fn a_worker_killed_mid_fan_out_is_taken_over_and_nobody_gets_the_update_twice() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    seed(&t, 40).await;
    // The server stops answering after 17 messages: the fan-out hangs there, as a process
    // does just before it is killed.
    sink.hang_after(Some(17));
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    let outbox = t.app.outbox();
    let worker = tokio::spawn(async move { outbox.drain().await });
    // Wait (on I/O, not on time) until the sends accepted before the hang (17, or a few more
    // whose RCPT got through just before) are all recorded, and stay so.
    let mut steady = 0;
    for _ in 0..500 {
        let accepted = sink.mails().len() as i64;
        if accepted >= 17 && reached(&t).await.1 == accepted {
            steady += 1;
            if steady == 3 {
                break;
            }
        } else {
            steady = 0;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(steady, 3, "the fan-out did not stop at the hang");
    assert!(reached(&t).await.1 < 40);
    // Kill it mid-fan-out: its connections drop, its lease is left to expire.
    worker.abort();
    let _ = worker.await;
    sink.hang_after(None);
    t.advance(Duration::from_secs(61));
    let other = t.another_instance(vec![]).await;
    other.outbox().drain().await.unwrap();
    let mut to: Vec<String> = sink.mails().iter().map(Mail::to).collect();
    to.sort();
    let all = to.len();
    to.dedup();
    assert_eq!(all, to.len(), "someone got the update twice");
    assert_eq!(to.len(), 40, "someone was skipped");
    assert_eq!(reached(&t).await.1, 40);
    t.finish().await;
}

#[tokio::test]
async fn a_fan_out_longer_than_the_lease_renews_it_and_finishes_at_the_configured_rate() {
    let Some(sink) = start_sink() else { return };
    // A 16 s lease (the shortest the other channels' 15 s timeouts allow) is renewed every
    // 5.3 s; at 5 recipients a second, 35 subscribers take about 6 s of real time, so the lease
    // is renewed while the recorder writes outcomes (which once deadlocked).
    let t = spawn_app_with(Options {
        outbox: Some("lease: 16s, max_attempts: 5, backoff_min: 10s, backoff_max: 10m".into()),
        extra: Some(format!(
            "  email: {{ type: email, smtp_url: \"smtp://127.0.0.1:{}\", from: \"Acme Status <status@acme.test>\", \
             token_secret: \"{SECRET}\", connections: 2, per_second: 5, limits: {{ timeout: 5s }} }}\n",
            sink.port
        )),
        ..Default::default()
    })
    .await;
    seed(&t, 35).await;
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    let started = std::time::Instant::now();
    let report = t.dispatch_all().await;
    let took = started.elapsed();
    assert_eq!(report.dead, 0);
    assert_eq!(reached(&t).await.1, 35);
    assert_eq!(sink.mails().len(), 35);
    // governor lets a first burst through, then 5 a second.
    assert!(
        took >= Duration::from_secs(5),
        "the rate limit was not applied: {took:?}"
    );
    t.finish().await;
}

/// A fan-out to 24 subscribers (ids of one and two digits, so two token lengths; addresses of
/// many lengths, one with `+`), 3 of whom the server refuses for good: the others get their
/// own copy (their address in `To`, their own working unsubscribe link), the refused are
/// recorded as failed with the server's words but not their full address.
async fn fan_out_with_refusals(pipelining: bool) {
    let Some(sink) = start_sink_with(pipelining) else {
        return;
    };
    let t = app_with_email(&sink, "").await;
    let addresses: Vec<String> = (0..24)
        .map(|i| match i {
            4 | 11 | 19 => format!("bounce{i}@example.com"),
            7 => "ann+status@example.com".to_string(),
            _ => format!(
                "{}{i}@ex{}.example.com",
                "u".repeat(1 + i % 5),
                "x".repeat(i % 3)
            ),
        })
        .collect();
    seed_addresses(&t, &addresses).await;
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    let report = t.dispatch_all().await;
    assert_eq!(report.dead, 0);
    let mails = sink.mails();
    let mut to: Vec<String> = mails.iter().map(Mail::to).collect();
    to.sort();
    let mut expected: Vec<String> = addresses
        .iter()
        .filter(|a| !a.starts_with("bounce"))
        .cloned()
        .collect();
    expected.sort();
    assert_eq!(to, expected, "each accepted subscriber gets one copy");
    let mut links = std::collections::HashSet::new();
    for m in &mails {
        assert_eq!(
            m.header("To").unwrap(),
            m.to(),
            "To names the envelope's recipient"
        );
        let header = m.header("List-Unsubscribe").unwrap();
        let (text, html) = m.parts();
        let link = header.trim_matches(['<', '>']).to_string();
        assert!(
            text.contains(&link) && html.contains(&link),
            "the bodies carry the header's link"
        );
        links.insert(link);
    }
    assert_eq!(
        links.len(),
        mails.len(),
        "every copy has its own unsubscribe link"
    );
    // One of them works, and unsubscribes exactly that subscriber.
    let first = mails[0].header("List-Unsubscribe").unwrap();
    let r = one_click(&t, first.trim_matches(['<', '>'])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        counts(&t).await["confirmed"],
        23,
        "exactly one subscriber left"
    );
    let (delivery, sent) = reached(&t).await;
    assert_eq!(sent, 21);
    let errors: Vec<(String,)> = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        sqlx::query_as("SELECT error FROM email_sends WHERE delivery_id = $1 AND state = 'failed'")
            .bind(delivery)
            .fetch_all(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(errors.len(), 3);
    for (e,) in &errors {
        assert!(e.contains("550") && e.contains("User unknown"), "{e}");
        assert!(
            !e.contains("bounce4@") && !e.contains("bounce11@") && !e.contains("bounce19@"),
            "{e}"
        );
    }
    let (mail_commands, pipelined) = sink.mail_commands();
    assert_eq!(mail_commands, 24);
    if pipelining {
        assert_eq!(pipelined, 24, "every envelope went out in one write");
    } else {
        assert_eq!(
            pipelined, 0,
            "a server without PIPELINING got one command at a time"
        );
    }
    t.finish().await;
}

#[tokio::test]
async fn a_pipelining_server_gets_each_copy_in_one_round_trip_and_refusals_stay_with_their_address()
{
    fan_out_with_refusals(true).await;
}

#[tokio::test]
async fn a_server_without_pipelining_gets_one_command_at_a_time_with_the_same_outcome() {
    fan_out_with_refusals(false).await;
}
