//! Honest words: Candor's own messages are composed from the facts of the moment and never
//! read like a stock feed; a later estimate says why; no sentence runs into the next.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::helpers::*;

/// A text with its numbers and times taken out: digit runs, weekday and month names, and the
/// units of durations ("1 hour" and "3 hours" read the same), lower-cased.
fn normalised(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for word in text
        .to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
    {
        let w = if word.chars().all(|c| c.is_ascii_digit()) {
            "#"
        } else {
            word
        };
        let skip = [
            "mon", "tue", "wed", "thu", "fri", "sat", "sun", "nov", "dec", "day", "days", "hour",
            "hours", "minute", "minutes",
        ];
        if skip.contains(&w) || (w == "#" && out.last().is_some_and(|l| l == "#")) {
            continue;
        }
        out.push(w.to_string());
    }
    out.join(" ").replace("less than a #", "#")
}

/// The sentences of a text: split after `.`, `?` or `!` (and a closing quote) before
/// whitespace, and at line breaks.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut cur = String::new();
        for (i, &c) in chars.iter().enumerate() {
            cur.push(c);
            let stop = matches!(c, '.' | '?' | '!')
                || (c == '"' && i > 0 && matches!(chars[i - 1], '.' | '?' | '!'));
            let next = chars.get(i + 1);
            if stop && next.is_none_or(|n| n.is_whitespace()) {
                out.push(cur.trim().to_string());
                cur.clear();
            }
        }
        if !cur.trim().is_empty() {
            out.push(cur.trim().to_string());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn assert_no_sentence_twice(text: &str) {
    let mut seen = HashSet::new();
    for s in sentences(text) {
        assert!(
            seen.insert(normalised(&s)),
            "the sentence {s:?} appears twice in:\n{text}"
        );
    }
}

const OWNER: &str = "Priya from the payments team";

/// An incident left alone for a day at a 15-minute policy, with two missed estimates: every
/// automatic message differs from every other once numbers and times are taken out, none says
/// a sentence twice, and each is signed last.
#[tokio::test]
async fn a_day_of_automatic_messages_never_repeats_itself() {
    let t = spawn_app().await;
    let id = t
        .declare(json!({
            "title": "Checkout is failing", "impact": "critical",
            "message": "Payments fail for most customers. We're on it.",
            "components": { "api": "partial_outage", "web": "degraded_performance" },
            "eta_in": "30m", "owner": OWNER,
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/incidents/{id}/updates");
    for minute in 1..=1440 {
        t.advance_to(minute);
        if minute == 40 {
            // The first estimate (12:30) has passed; a later one needs a reason.
            let later = json!({ "message": "Failing over to the replica.", "status": "identified",
                                "eta_in": "1h" });
            let r = t.post(&path, &later).await;
            assert_eq!(r.status(), 422);
            let err: Value = r.json().await.unwrap();
            assert!(
                err["error"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("eta_reason:"),
                "{err}"
            );
            let mut with_reason = later.clone();
            with_reason["eta_reason"] = json!("The replica needs a full resync.");
            assert_eq!(t.post(&path, &with_reason).await.status(), 200);
        }
        t.tick().await;
    }
    t.dispatch_all().await;

    let incident = t.incident(id).await;
    let automatic: Vec<&Value> = incident["updates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] == "scheduled" || u["kind"] == "overdue")
        .collect();
    let apologies = automatic.iter().filter(|u| u["kind"] == "overdue").count();
    assert_eq!(apologies, 2, "two estimates passed");
    assert!(
        automatic.len() >= 90,
        "a day at 15 minutes: {}",
        automatic.len()
    );

    // As stored (status page, API, feeds): unique, no sentence twice, signed on the last line.
    let mut texts: HashMap<String, String> = HashMap::new();
    for u in &automatic {
        let m = u["message"].as_str().unwrap();
        assert_eq!(m.lines().last().unwrap(), format!("— {OWNER}"), "{m}");
        assert_no_sentence_twice(m);
        if let Some(earlier) = texts.insert(normalised(m), m.to_string()) {
            panic!("two automatic messages read alike:\n{earlier}\n---\n{m}");
        }
    }

    // As posted on the channel, with the estimate and next-update lines: the same, and the
    // signature comes after everything said (only the link to the incident follows it).
    let posts: Vec<String> = t
        .public_log()
        .into_iter()
        .filter(|l| l["kind"] == "scheduled" || l["kind"] == "overdue")
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(posts.len(), automatic.len());
    let mut seen = HashSet::new();
    for p in &posts {
        assert_no_sentence_twice(p);
        assert!(seen.insert(normalised(p)), "posted twice:\n{p}");
        let lines: Vec<&str> = p.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines[lines.len() - 1],
            format!("https://status.acme.test/incidents/{id}")
        );
        assert_eq!(lines[lines.len() - 2], format!("— {OWNER}"), "{p}");
        assert_eq!(p.matches(OWNER).count(), 1, "{p}");
    }
    // The second apology says which estimate it was, and why it had been set.
    let second = automatic
        .iter()
        .filter(|u| u["kind"] == "overdue")
        .nth(1)
        .unwrap();
    let words = second["message"].as_str().unwrap();
    assert!(words.contains("our second estimate"), "{words}");
    assert!(
        words.contains("because the replica needs a full resync"),
        "{words}"
    );
    t.finish().await;
}

/// The console asks for a reason only when the estimate moves later, and its error names the
/// form's label, not the API's field.
#[tokio::test]
async fn the_console_names_the_reason_field_by_its_label() {
    use crate::console::{add_operator, declare_form, Browser};
    let t = spawn_app().await;
    add_operator(
        &t,
        "ana@acme.test",
        candor::store::operators::Role::Responder,
    )
    .await;
    let ana = Browser::new(&t);
    ana.login("ana@acme.test").await;
    let id = declare_form(&ana, "Checkout errors", "1h").await;
    let page = format!("/admin/incidents/{id}");
    let update = format!("/admin/incidents/{id}/update");
    let later = [
        ("version", "1"),
        ("message", "Slower than hoped."),
        ("eta_mode", "in"),
        ("eta_in", "2h"),
    ];
    let r = ana.submit(&page, &update, &later).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Why the estimate changes: the estimate moves later"),
        "{html}"
    );
    assert!(
        !html.contains("eta_reason:"),
        "the API's field name stays out"
    );
    // Earlier: no reason needed.
    let earlier = [
        ("version", "1"),
        ("message", "Faster than feared."),
        ("eta_mode", "in"),
        ("eta_in", "30m"),
    ];
    let r = ana.submit(&page, &update, &earlier).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    t.finish().await;
}

/// Declare and update answer with `warnings` when the words play a major incident down, say
/// nothing new, or repeat an earlier message; the write still happens.
#[tokio::test]
async fn the_api_warns_before_it_is_too_late_but_never_refuses() {
    let t = spawn_app().await;
    let r = t
        .post(
            "/api/v1/incidents",
            &json!({ "title": "Checkout down", "impact": "major",
                     "message": "A small number of users may see intermittent errors.",
                     "components": { "api": "major_outage" } }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let inc: Value = r.json().await.unwrap();
    let id = inc["id"].as_i64().unwrap();
    assert_eq!(inc["warnings"][0]["code"], "minimising", "{inc}");
    let m = inc["warnings"][0]["message"].as_str().unwrap();
    assert!(m.contains("\"intermittent\", \"a small number\""), "{m}");
    assert_eq!(inc["warnings"].as_array().unwrap().len(), 1);

    let path = format!("/api/v1/incidents/{id}/updates");
    // Plain words with a new fact: nothing to say.
    let r = t
        .post(
            &path,
            &json!({ "message": "Checkout fails for everyone; we found the cause.",
                               "status": "identified" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["warnings"], json!([]));
    // Nearly the same words, no new fact.
    let r = t
        .post(
            &path,
            &json!({ "message": "Checkout fails for everyone; we found the cause!" }),
        )
        .await;
    assert_eq!(r.status(), 200, "a warning never refuses");
    let w: Vec<String> = r.json::<Value>().await.unwrap()["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(w, ["nothing_new", "repeats_earlier"]);
    // The first words again, with a new status: a repeat, though not "nothing new".
    let r = t
        .post(
            &path,
            &json!({ "message": "Checkout down: we're on it.", "status": "monitoring" }),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["warnings"], json!([]));
    let r = t
        .post(
            &path,
            &json!({ "message": "Checkout fails for everyone; we found the cause.",
                               "status": "identified" }),
        )
        .await;
    let w = r.json::<Value>().await.unwrap()["warnings"].clone();
    assert_eq!(w.as_array().unwrap().len(), 1, "{w}");
    assert_eq!(w[0]["code"], "repeats_earlier");
    assert_eq!(t.incident(id).await["updates"].as_array().unwrap().len(), 5);
    t.dispatch_all().await;
    t.finish().await;
}

/// The console's preview shows the same warnings before anything is posted; the word list
/// comes from config.
#[tokio::test]
async fn the_console_preview_flags_minimising_words_from_config() {
    use crate::console::{add_operator, Browser};
    let t = spawn_app_with(Options {
        extra: Some("honesty: { minimising_words: [\"a blip\"] }\n".into()),
        ..Options::default()
    })
    .await;
    add_operator(
        &t,
        "ana@acme.test",
        candor::store::operators::Role::Responder,
    )
    .await;
    let ana = Browser::new(&t);
    ana.login("ana@acme.test").await;
    let form = [
        ("title", "Checkout down"),
        ("impact", "critical"),
        ("status", "investigating"),
        ("message", "Just a blip; some users may notice."),
        ("eta_mode", "unknown"),
        ("action", "preview"),
    ];
    let r = ana
        .submit("/admin/incidents/new", "/admin/incidents/new", &form)
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("data-warning=\"minimising\""), "{html}");
    assert!(
        html.contains("(&quot;a blip&quot;)"),
        "configured words, not the defaults"
    );
    let r = ana
        .submit("/admin/incidents/new", "/admin/preview", &form)
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["warnings"][0]["code"], "minimising", "{v}");
    t.finish().await;
}

/// The holding template's promise: with the same facts, its first 2310 messages in an incident
/// all read differently (its four always-present sentences have 7, 5, 11 and 6 phrasings).
#[test]
fn the_holding_template_never_repeats_within_its_period() {
    let r = candor::render::Renderer::new(std::path::Path::new("/nonexistent-template-dir"));
    for status in ["investigating", "identified", "monitoring"] {
        let mut seen = HashSet::new();
        for seq in 0..2310 {
            let ctx = json!({
                "title": "Checkout is failing", "status": status, "elapsed": "3 hours",
                "seq": seq, "variant": seq, "affected_text": "", "affected_count": 0,
                "components": [], "changes": [], "since_automatic": true,
                "team_words": "We're on it.", "latest": "We're on it.",
                "quiet_since": "12:40 UTC", "quiet_for": "2 hours", "in_a_row": seq + 1,
                "missed": 0, "missed_words": "no", "eta_reason": null, "eta_text": null,
                "eta_passed": false, "signature": "Priya",
            });
            let text = r.render("messages/holding.txt.j2", ctx).unwrap();
            assert_no_sentence_twice(&text);
            assert!(seen.insert(normalised(&text)), "seq {seq} repeats:\n{text}");
        }
    }
}

/// The CLI: a later estimate without `--eta-reason` is refused (exit 3, naming the field); with
/// it, the update goes out; warnings go to stderr.
#[tokio::test]
async fn the_cli_asks_for_a_reason_when_the_estimate_moves_later() {
    use crate::cli::client;
    let t = spawn_app().await;
    let (code, _, err) = client(
        &t,
        &[
            "incident",
            "open",
            "--title",
            "Checkout down",
            "--impact",
            "major",
            "--message",
            "Intermittent errors for a small number of users.",
            "--eta-in",
            "1h",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: This is a major incident"), "{err}");
    let later = [
        "incident",
        "update",
        "1",
        "--message",
        "Slower than hoped.",
        "--eta-in",
        "2h",
    ];
    let (code, _, err) = client(&t, &later).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("eta_reason"), "{err}");
    let mut with_reason = later.to_vec();
    with_reason.extend(["--eta-reason", "the restore is slower than planned"]);
    let (code, _, err) = client(&t, &with_reason).await;
    assert_eq!(code, 0, "{err}");
    let inc = t.incident(1).await;
    assert_eq!(
        inc["eta_revisions"][1]["reason"],
        "the restore is slower than planned"
    );
    t.dispatch_all().await;
    t.finish().await;
}
