use chrono::TimeZone;

use super::*;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, h, m, 0).unwrap()
}

fn said(at: DateTime<Utc>, by: Option<DateTime<Utc>>) -> Said {
    Said {
        at,
        next_update_by: by,
        holding: false,
    }
}

#[test]
fn promises_kept_late_held_overdue_and_pending() {
    let f = Facts {
        started_at: t(10, 0),
        resolved_at: None,
        updates: vec![
            said(t(10, 0), Some(t(10, 30))),  // answered 10:20: kept
            said(t(10, 20), Some(t(10, 50))), // answered 11:05: late 15 min
            said(t(11, 5), Some(t(11, 35))),  // answered by holding at 11:36: late 1 min, held
            Said {
                at: t(11, 36),
                next_update_by: Some(t(12, 6)),
                holding: true,
            }, // nothing since; now 12:16: overdue 10 min
        ],
        estimates: vec![],
        first_alert_at: None,
    };
    let p = incident(&f, t(12, 16)).promises;
    assert_eq!(
        (p.kept, p.late, p.late_held, p.overdue, p.pending),
        (1, 3, 1, 1, 0)
    );
    assert_eq!(p.due, 4);
    // Lateness 15, 1 and 10 minutes: median 10, max 15.
    assert_eq!(p.late_median_seconds, Some(600));
    assert_eq!(p.late_max_seconds, Some(900));
    assert_eq!(p.share_kept, Some(0.25));

    // Before 12:06 the last promise is pending, not late.
    let p = incident(&f, t(12, 0)).promises;
    assert_eq!((p.kept, p.late, p.overdue, p.pending), (1, 2, 0, 1));
}

#[test]
fn a_resolution_owes_nothing_more() {
    let f = Facts {
        started_at: t(10, 0),
        resolved_at: Some(t(10, 40)),
        updates: vec![said(t(10, 0), Some(t(10, 30))), said(t(10, 40), None)],
        estimates: vec![],
        first_alert_at: None,
    };
    let p = incident(&f, t(23, 0)).promises;
    assert_eq!((p.kept, p.late, p.pending), (0, 1, 0));
    assert_eq!(p.late_max_seconds, Some(600));
}

#[test]
fn estimates_met_revised_missed_and_pending() {
    // 14:00 given at 13:00, missed (still open at 14:00); 14:40 given at 14:05, revised at
    // 14:30 to 15:00; 15:00 met by the resolution at 14:50.
    let f = Facts {
        started_at: t(13, 0),
        resolved_at: Some(t(14, 50)),
        updates: vec![],
        estimates: vec![
            (t(13, 0), Some(t(14, 0))),
            (t(14, 5), Some(t(14, 40))),
            (t(14, 30), Some(t(15, 0))),
        ],
        first_alert_at: Some(t(12, 55)),
    };
    let r = incident(&f, t(16, 0));
    assert_eq!(
        r.estimates,
        EstimateCounts {
            given: 3,
            met: 1,
            revised: 1,
            missed: 1,
            pending: 0
        }
    );
    assert_eq!(r.first_estimate, Some(t(14, 0)));
    assert_eq!(r.first_estimate_error_seconds, Some(50 * 60));

    // Open, at 14:35: first missed, second revised, third pending.
    let open = Facts {
        resolved_at: None,
        ..f.clone()
    };
    let e = incident(&open, t(14, 35)).estimates;
    assert_eq!((e.missed, e.revised, e.pending, e.met), (1, 1, 1, 0));

    // Resolved exactly at the estimate: met.
    let exact = Facts {
        resolved_at: Some(t(14, 0)),
        estimates: vec![(t(13, 0), Some(t(14, 0)))],
        ..f
    };
    let r = incident(&exact, t(16, 0));
    assert_eq!(r.estimates.met, 1);
    assert_eq!(r.first_estimate_error_seconds, Some(0));
}

#[test]
fn alert_to_first_post_is_never_negative() {
    let mut f = Facts {
        started_at: t(10, 0),
        resolved_at: None,
        updates: vec![said(t(10, 4), Some(t(11, 0)))],
        estimates: vec![],
        first_alert_at: Some(t(10, 1)),
    };
    assert_eq!(incident(&f, t(10, 5)).alert_to_post_seconds, Some(180));
    f.first_alert_at = Some(t(10, 30));
    assert_eq!(incident(&f, t(10, 5)).alert_to_post_seconds, Some(0));
}

#[test]
fn the_record_covers_ninety_days_and_takes_medians() {
    let now = t(12, 0);
    let inc = |started: DateTime<Utc>, err_min: i64, alert_min: i64| Facts {
        started_at: started,
        resolved_at: Some(started + Duration::minutes(60 + err_min)),
        updates: vec![said(started, None)],
        estimates: vec![(started, Some(started + Duration::minutes(60)))],
        first_alert_at: Some(started - Duration::minutes(alert_min)),
    };
    let all = [
        inc(now - Duration::days(1), 40, 2),
        inc(now - Duration::days(2), -10, 4),
        inc(now - Duration::days(3), 20, 6),
        inc(now - Duration::days(4), 0, 8),
        inc(now - Duration::days(91), 500, 500), // too old
    ];
    let r = record(&all, now);
    assert_eq!(r.incidents, 4);
    // Errors 40, -10, 20, 0 minutes: sorted -10, 0, 20, 40, median (0 + 20) / 2 = 10 minutes.
    assert_eq!(r.first_estimate_error_median_seconds, Some(600));
    // Alerts 2, 4, 6, 8 minutes before: median 5 minutes.
    assert_eq!(r.alert_to_post_median_seconds, Some(300));
    assert_eq!(
        (r.estimates.given, r.estimates.met, r.estimates.missed),
        (4, 2, 2)
    );
    assert_eq!(r.promises.share_kept, None);
    let words = lines(&r);
    assert_eq!(words.len(), 5);
    assert_eq!(words[4].figure, "nobody wrote to us about these incidents");
    assert_eq!(words[2].figure, "10 minutes later than first said");
    assert_eq!(words[0].figure, "no promises due yet");
}

#[test]
fn medians_of_even_counts_round_down() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[3]), Some(3));
    assert_eq!(median(&[1, 2]), Some(1));
    assert_eq!(median(&[-3, -2]), Some(-3));
}

/// The page's labels are customers' words: a rename of a type in the code once turned
/// "Estimates of the fix" into "EstimateCounts of the fix" on every status page.
#[test]
fn the_record_is_labelled_in_plain_words() {
    let labels: Vec<&str> = lines(&Record::default()).iter().map(|l| l.label).collect();
    assert_eq!(
        labels,
        [
            "Updates on time",
            "Estimates of the fix",
            "First estimates",
            "Alert to first post",
            "Customers who wrote to us"
        ]
    );
}

#[test]
fn conversations_count_answers_waits_and_the_told() {
    let t = |m: i64| DateTime::<Utc>::from_timestamp(1_700_000_000 + m * 60, 0).unwrap();
    let c = |first: i64, answered: Option<i64>, told: Option<i64>, resolved: bool| Conversation {
        first_at: t(first),
        answered_at: answered.map(t),
        fixed_told_at: told.map(t),
        incident_resolved: resolved,
    };
    // Answered after 2, 4 and 10 minutes; one never answered; of the answered about resolved
    // incidents (two), one was told.
    let r = conversations(&[
        c(0, Some(2), Some(30), true),
        c(0, Some(4), None, true),
        c(5, Some(15), None, false),
        c(6, None, None, true),
    ]);
    assert_eq!(
        (r.conversations, r.answered, r.closable, r.closed),
        (4, 3, 2, 1)
    );
    assert_eq!(r.share_answered, Some(0.75));
    assert_eq!(r.share_closed, Some(0.5));
    assert_eq!(r.first_answer_median_seconds, Some(240));
    let line = lines(&Record {
        conversations: r,
        ..Record::default()
    })
    .pop()
    .unwrap();
    assert_eq!(line.figure, "75% answered (3 of 4)");
    assert!(
        line.explanation.contains("came 4 minutes after"),
        "{}",
        line.explanation
    );
    assert!(
        line.explanation.contains("1 of the 2 we answered"),
        "{}",
        line.explanation
    );
    assert_eq!(conversations(&[]).share_answered, None);
}
