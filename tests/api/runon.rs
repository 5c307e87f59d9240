//! No run-on sentences: every shipped message template, rendered with representative contexts,
//! puts a space (or a line break) after each full stop, question mark and exclamation mark that
//! ends a sentence ("during this time.Moving to PostgreSQL 17" was one).

use std::path::Path;

use candor::render::Renderer;
use serde_json::{json, Value};

/// Where a sentence stop is followed directly by a letter, outside URLs, e-mail addresses,
/// domains and numbers.
fn run_ons(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for token in text.split_whitespace() {
        let bare = token.trim_matches(|c: char| "\"'()[]<>,;:".contains(c));
        let is_link = bare.contains("://") || bare.contains('@');
        let name = bare.trim_end_matches(['.', '?', '!']);
        let is_domain = !name.is_empty()
            && name.trim_end_matches('/').split('.').all(|p| {
                !p.is_empty()
                    && p.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '/'
                    })
            })
            && name.contains('.');
        if is_link || is_domain {
            continue;
        }
        let chars: Vec<char> = bare.chars().collect();
        for w in chars.windows(2) {
            if matches!(w[0], '.' | '?' | '!') && w[1].is_alphabetic() {
                found.push(token.to_string());
            }
        }
    }
    found
}

fn assert_no_run_ons(name: &str, ctx: &Value, text: &str) {
    // HTML: tags are not words.
    let mut plain = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                plain.push(' ');
            }
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let bad = run_ons(&plain);
    assert!(
        bad.is_empty(),
        "{name} runs sentences together ({bad:?}) with {ctx}:\n{text}"
    );
}

fn msg(kind: &str, status: &str, signature: Option<&str>) -> Value {
    json!({
        "audience": if kind.starts_with("ops_") { "ops" } else { "public" },
        "kind": kind, "site_name": "Acme Cloud",
        "incident_id": 7, "incident_url": "https://status.acme.test/incidents/7",
        "title": "Checkout is failing", "impact": "major", "status": status,
        "components": [{ "id": "api", "name": "Public API", "status": "partial_outage" }],
        "update_id": 3, "body": "Payments fail. We're on it.",
        "started_at": "2026-11-23T12:00:00Z", "eta_at": "2026-11-23T14:00:00Z",
        "next_update_at": "2026-11-23T12:30:00Z",
        "eta_line": "We now expect 15:00 UTC instead of 14:00: the rollback takes longer than a restart.",
        "next_update_line": "Next update by 12:30 UTC.",
        "signature": signature, "posted_at": "2026-11-23T12:00:00Z",
    })
}

fn automatic(seq: usize, status: &str, with_facts: bool) -> Value {
    let changes = if with_facts {
        json!([
            { "what": "status", "from": "investigating", "to": "identified" },
            { "what": "component", "name": "Website", "from": "degraded performance", "to": "operational" },
            { "what": "component", "name": "Email", "from": "operational", "to": "partial outage" },
            { "what": "estimate", "direction": "later", "from": "14:00 UTC", "to": "15:00 UTC",
              "reason": "the replica needs a full resync" },
        ])
    } else {
        json!([])
    };
    json!({
        "title": "Checkout is failing", "status": status, "elapsed": "1 hour 5 minutes",
        "seq": seq, "variant": seq,
        "affected_text": if with_facts { "Public API (partial outage) and Website (degraded performance)" } else { "" },
        "affected_count": if with_facts { 2 } else { 0 },
        "components": if with_facts { json!(["Public API", "Website"]) } else { json!([]) },
        "changes": changes, "since_automatic": seq % 2 == 0,
        "team_words": if with_facts { json!("Failing over. Back soon!") } else { Value::Null },
        "latest": Value::Null,
        "quiet_since": "12:40 UTC", "quiet_for": "25 minutes", "in_a_row": 2,
        "missed": if with_facts { 2 } else { 0 }, "missed_words": "two",
        "eta_reason": if with_facts { json!("the replica needs a full resync") } else { Value::Null },
        "eta_text": if with_facts { json!("15:00 UTC") } else { Value::Null },
        "eta_passed": false, "signature": "Priya", "previous_apologies": seq % 3,
        "missed_ordinal": "second",
    })
}

#[test]
fn no_shipped_message_template_runs_sentences_together() {
    let r = Renderer::new(Path::new("/nonexistent-template-dir"));
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for seq in 0..40 {
        for status in [
            "investigating",
            "identified",
            "monitoring",
            "in_progress",
            "verifying",
        ] {
            for facts in [true, false] {
                let ctx = automatic(seq, status, facts);
                cases.push(("messages/holding.txt.j2", ctx.clone()));
                cases.push(("messages/apology.txt.j2", ctx.clone()));
                cases.push(("messages/maintenance_overrun.txt.j2", ctx));
            }
        }
    }
    for event in [
        "scheduled",
        "updated",
        "extended",
        "verifying",
        "reminder",
        "started",
        "completed",
        "cancelled",
    ] {
        for extra in [
            json!({ "before": "1 hour", "reason": "The disks are slower. We need more time.", "early": false, "overran": Value::Null }),
            json!({ "before": "1 day", "reason": Value::Null, "early": true, "overran": Value::Null }),
            json!({ "before": "1 day", "reason": Value::Null, "early": false, "overran": "20 minutes" }),
        ] {
            for description in [
                json!("Moving to PostgreSQL 17. Expect a short read-only spell."),
                Value::Null,
            ] {
                cases.push((
                    "messages/maintenance.txt.j2",
                    json!({ "event": event, "title": "Database upgrade", "description": description,
                            "components": ["Public API", "Website"], "start_text": "Sun 29 Nov 02:00 UTC",
                            "end_text": "04:00 UTC", "span_text": "Sun 29 Nov, 02:00–04:00 UTC", "duration": "2 hours", "extra": extra }),
                ));
            }
        }
    }
    let ops = json!({ "site_name": "Acme Cloud", "incident_id": 7, "title": "Checkout is failing",
                      "receiver": "candor", "incident_url": "https://status.acme.test/incidents/7",
                      "eta_text": "14:00 UTC", "promised_text": "12:30 UTC", "minutes_left": 5 });
    for name in [
        "ops/alert_resolved.txt.j2",
        "ops/eta_passed.txt.j2",
        "ops/maintenance_overrun.txt.j2",
        "ops/reminder.txt.j2",
    ] {
        cases.push((name, ops.clone()));
    }
    for (kind, status) in [
        ("operator", "investigating"),
        ("scheduled", "identified"),
        ("overdue", "monitoring"),
        ("resolution", "resolved"),
        ("maintenance_scheduled", "scheduled"),
        ("maintenance_completed", "completed"),
        ("ops_reminder", "investigating"),
    ] {
        for signature in [Some("The Acme Cloud team"), None] {
            let m = msg(kind, status, signature);
            cases.push(("social/post.txt.j2", json!({ "msg": m, "max_chars": 500 })));
            let mail = json!({ "msg": m, "site_name": "Acme Cloud", "status_label": "Identified",
                               "components": ["Public API"],
                               "unsubscribe_url": "https://status.acme.test/unsubscribe/x" });
            for name in [
                "email/update/subject.txt.j2",
                "email/update/body.txt.j2",
                "email/update/body.html.j2",
            ] {
                cases.push((name, mail.clone()));
            }
        }
    }
    let confirm = json!({ "site_name": "Acme Cloud", "confirm_url": "https://status.acme.test/subscribe/confirm/abc",
                          "components": ["Public API"], "valid_for": "2days" });
    for name in [
        "email/confirm/subject.txt.j2",
        "email/confirm/body.txt.j2",
        "email/confirm/body.html.j2",
    ] {
        cases.push((name, confirm.clone()));
    }
    // Every shipped template under these folders is exercised.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for dir in ["messages", "ops", "social", "email/update", "email/confirm"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            let name = format!("{dir}/{file}");
            assert!(
                cases.iter().any(|(n, _)| *n == name),
                "{name} is not rendered by this test"
            );
        }
    }
    for (name, ctx) in &cases {
        let text = r
            .render(name, minijinja::Value::from_serialize(ctx))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_no_run_ons(name, ctx, &text);
    }
}

#[test]
fn the_check_itself_catches_a_run_on_and_spares_links_and_numbers() {
    assert_eq!(
        run_ons("during this time.Moving to PostgreSQL 17"),
        ["time.Moving"]
    );
    assert_eq!(
        run_ons("Done!Next up. Really?yes"),
        ["Done!Next", "Really?yes"]
    );
    assert!(run_ons("See https://status.acme.test/incidents/7. Mail help@acme.test or acme.test. Version 1.5 is out.").is_empty());
}
