use std::path::Path;

use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;
use crate::channels::{ComponentFacts, MessageKind};
use crate::domain::{Audience, ComponentStatus, Impact, IncidentStatus};
use crate::render::Renderer;

fn renderer() -> Renderer {
    // No such directory: the built-in templates.
    Renderer::new(Path::new("/nonexistent/candor-templates"))
}

const URL: &str = "https://status.acme.test/incidents/7";
const ETA: &str = "We expect this fixed by 15:30 UTC.";
const NEXT: &str = "Next update by 14:30 UTC.";

fn message(title: &str, body: &str, components: &[&str]) -> Message {
    let t = Utc.with_ymd_and_hms(2026, 11, 24, 14, 0, 0).unwrap();
    Message {
        audience: Audience::Public,
        kind: MessageKind::Operator,
        site_name: "Acme Cloud".into(),
        incident_id: 7,
        incident_url: URL.into(),
        title: title.into(),
        impact: Impact::Major,
        status: IncidentStatus::Investigating,
        components: components
            .iter()
            .map(|n| ComponentFacts {
                id: n.to_lowercase(),
                name: n.to_string(),
                status: ComponentStatus::PartialOutage,
            })
            .collect(),
        update_id: Some(1),
        body: body.into(),
        started_at: t,
        eta_at: None,
        next_update_at: None,
        eta_line: Some(ETA.into()),
        next_update_line: Some(NEXT.into()),
        posted_at: t,
        signature: None,
        correction: None,
    }
}

fn fitted(r: &Renderer, m: &Message, limit: usize, counter: Counter) -> String {
    fit_message(m, limit, counter, |m| r.post_text(m, None)).unwrap()
}

/// X's own verdict on a post: valid and within 280 by the `twitter-text` crate, and within 280
/// by twitter-text's rules as X's clients apply them (bare domains as 23).
fn x_accepts(text: &str) -> bool {
    let r = twitter_text::parse(text, twitter_text_config::config_v3(), true);
    r.is_valid && r.weighted_length <= 280 && x_rules(text) <= 280
}

#[test]
fn weighted_length_is_twitter_texts() {
    assert_eq!(Counter::Weighted.count("hello"), 5);
    // CJK counts two, an emoji sequence counts two, a link counts 23.
    assert_eq!(Counter::Weighted.count("日本"), 4);
    assert_eq!(Counter::Weighted.count("👨‍👩‍👧"), 2);
    assert_eq!(
        Counter::Weighted.count("see https://status.example.com/incidents/1234567890"),
        4 + 23
    );
    // NFC first: e + combining acute is one é.
    assert_eq!(Counter::Weighted.count("e\u{301}"), 1);
}

/// The bug behind issue 13: X counts a bare domain as a 23-character link, so a short host
/// name weighs more than its letters.
#[test]
fn x_counts_bare_domains_as_links() {
    assert_eq!(Counter::Weighted.count("see api.acme.com"), 4 + 23);
    assert_eq!(Counter::Weighted.count("a.io b.io"), 23 + 1 + 23);
    // By X's rules a long one is 23 too; the crate counts its letters, and the larger counts.
    let long = "eu-west-1.session-store.internal.acme-cloud-platform.com";
    assert_eq!(x_rules(long), 23);
    assert_eq!(Counter::Weighted.count(long), long.len());
    // Not a domain: no known top-level domain.
    assert_eq!(Counter::Weighted.count("api.acme.notatld"), 16);
    // What the old counter (scheme links only) let through: 14 bare domains in 280 letters.
    let text = "db.acme.com ".repeat(14);
    assert_eq!(text.trim().len(), 167);
    assert_eq!(Counter::Weighted.count(text.trim()), 14 * 23 + 13);
}

#[test]
fn mastodon_counts_links_with_a_scheme_as_23_and_graphemes_once() {
    let c = Counter::GraphemesShortLinks { url: 23 };
    assert_eq!(
        c.count("a https://x.example.com/very/long/path/indeed"),
        2 + 23
    );
    // twitter-text knows no `.test` top-level domain: that is text, as on Mastodon.
    assert_eq!(c.count("https://x.test/a"), 16);
    // A short link still counts 23; a bare domain is only its letters on Mastodon.
    assert_eq!(c.count("https://a.io"), 23);
    assert_eq!(c.count("api.acme.com"), 12);
    // Punctuation after a link is not part of it.
    assert_eq!(c.count("(https://x.example.com/a)."), 1 + 23 + 2);
    assert_eq!(c.count("👨‍👩‍👧"), 1);
}

#[test]
fn a_post_that_fits_is_the_template_as_written() {
    let r = renderer();
    let m = message(
        "API down",
        "The database is slow and we are on it.",
        &["API"],
    );
    let out = fitted(&r, &m, 500, Counter::Graphemes);
    assert_eq!(
        out,
        format!("Investigating: API down\nAffects: API\n\nThe database is slow and we are on it.\n\n{ETA} {NEXT}\n\n{URL}")
    );
}

/// The first half of issue 13: fitting used to drop words from the end, so the estimate and
/// the next-update line went first.
#[test]
fn a_long_story_is_shortened_and_the_promise_and_link_stay() {
    let r = renderer();
    let body = "Some customers cannot sign in because the session store is refusing connections \
        after a failover; we are moving traffic to the standby region and warming caches. "
        .repeat(4);
    let m = message("Login failures", &body, &["Web app", "API"]);
    for (counter, limit) in [
        (Counter::Weighted, 280),
        (Counter::Graphemes, 300),
        (Counter::GraphemesShortLinks { url: 23 }, 500),
    ] {
        let out = fitted(&r, &m, limit, counter);
        assert!(counter.count(&out) <= limit, "{counter:?}: {out}");
        assert!(out.contains(&format!("{ETA} {NEXT}")), "{counter:?}: {out}");
        assert!(out.ends_with(URL), "{out}");
        assert!(out.starts_with("Investigating: Login failures\nAffects: Web app, API\n\n"));
        // The story was cut after a whole word, marked with "…".
        let story = out.split("\n\n").nth(1).unwrap();
        let kept = story.strip_suffix('…').expect("marked as cut");
        assert!(
            body.starts_with(kept) && body[kept.len()..].starts_with(' '),
            "{kept}"
        );
        // It uses the room it has: one more word would not fit.
        assert!(counter.count(&out) + 12 > limit, "{counter:?}: {out}");
    }
}

#[test]
fn no_room_for_a_story_drops_it_then_shortens_the_title_then_counts_components() {
    let r = renderer();
    let title = "Logins, uploads and billing exports are failing for customers in every region";
    let m = message(title, "Words words words.", &["Web app", "API", "Billing"]);
    let promise = format!("\n\n{ETA} {NEXT}\n\n{URL}");
    let fit = |limit| fitted(&r, &m, limit, Counter::Graphemes);
    assert_eq!(
        fit(160),
        format!("Investigating: Logins,…\nAffects: Web app, API, Billing{promise}")
    );
    assert_eq!(
        fit(150),
        format!("Investigating\nAffects: Web app, API, Billing{promise}")
    );
    assert_eq!(
        fit(135),
        format!("Investigating\nAffects: 3 components{promise}")
    );
    assert_eq!(fit(120), format!("Investigating{promise}"));
    // Not even the promise and the link fit: an error that says so, never a cut promise.
    let err = fit_message(&m, 100, Counter::Graphemes, |m| r.post_text(m, None)).unwrap_err();
    assert!(matches!(err, FitError::TooLong { limit: 100, .. }), "{err}");
}

#[test]
fn the_honest_no_estimate_line_is_kept_like_an_estimate() {
    let r = renderer();
    let mut m = message("API down", &"slow ".repeat(200), &[]);
    m.eta_line = Some("We don't have a reliable estimate yet.".into());
    m.next_update_line = None;
    let out = fitted(&r, &m, 280, Counter::Weighted);
    assert!(
        out.contains("We don't have a reliable estimate yet."),
        "{out}"
    );
    assert!(x_accepts(&out));
}

// ---------------------------------------------------------------------------------------------
// Fuzz: many generated messages, each fitted for every network and measured by its counter.

const WORDS: &[&str] = &[
    "the",
    "database",
    "failover",
    "is",
    "slow",
    "we",
    "are",
    "draining",
    "traffic",
    "région",
    "naïve",
    "Größe",
    "😀",
    "👨‍👩‍👧",
    "🇫🇷",
    "🙋🏽",
    "日本語",
    "서비스",
    "中文字符",
    "שלום",
    "العربية",
    "مرحبا",
    "עברית",
    "e\u{301}",
    "ok.",
    "(see",
    "below)",
    "—",
    "#ops",
    "@acme",
    "$ACME",
    "api.acme.com",
    "a.io",
    "status.acme.test",
    "cdn.example.co.uk",
    "x.com",
    "t.co",
    "foo.bar",
    "eu-west-1.session-store.internal.acme-cloud-platform.com",
    "https://a.io",
    "https://status.acme.test/incidents/7",
    "http://example.com/a/b?c=d&e=f",
    "https://very-long-host-name-for-an-internal-service.eu-central-1.example.org/path/to/a/page",
    "192.168.0.1",
    "v2.3.1",
    "file.txt",
    "node-7.db.internal",
    "1.5x",
];

const HOSTS: &[&str] = &[
    "status.acme.test",
    "status.a-very-long-company-name-with-many-words.example.com",
    "s.io",
    "状态.example.com",
];

const ETAS: &[&str] = &[
    "We expect this fixed by 15:30 UTC.",
    "We expect this fixed by Tue 24 Nov 14:30 CET.",
    "We don't have a reliable estimate yet.",
    "Our estimate of 14:00 UTC has passed; a new one will follow.",
    "We expect this fixed by 16:00 UTC (revised: the restore from api.backup.example.com is slower than planned).",
    "Planned to end by Wed 25 Nov 02:00 JST.",
];

fn words(rng: &mut StdRng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(if rng.gen_bool(0.05) { '\n' } else { ' ' });
        }
        if rng.gen_bool(0.03) {
            // A long made-up host name.
            let len = rng.gen_range(20..90);
            let label: String = (0..len)
                .map(|_| *b"abcdefghijklmnopqrstuvwxyz-".choose(rng).unwrap() as char)
                .collect();
            s.push_str(&format!("a{label}z.example.com"));
        } else {
            s.push_str(WORDS.choose(rng).unwrap());
        }
    }
    s
}

#[test]
fn fuzz_every_fitted_post_is_within_the_limit_and_keeps_the_promise_and_link() {
    let r = renderer();
    let mut rng = StdRng::seed_from_u64(13);
    let networks = [
        (Counter::Weighted, 280),
        (Counter::Graphemes, 300),
        (Counter::GraphemesShortLinks { url: 23 }, 500),
        (Counter::Chars, 2000),
    ];
    let mut shortened = 0;
    for case in 0..300 {
        let title_len = if rng.gen_bool(0.2) {
            40
        } else {
            rng.gen_range(1..8)
        };
        let title = words(&mut rng, title_len);
        let body_len = rng.gen_range(0..400);
        let body = words(&mut rng, body_len);
        let components: Vec<String> = (0..rng.gen_range(0..6))
            .map(|_| {
                let n = rng.gen_range(1..4);
                words(&mut rng, n)
            })
            .collect();
        let names: Vec<&str> = components.iter().map(String::as_str).collect();
        let mut m = message(&title, &body, &names);
        m.incident_url = format!(
            "https://{}/incidents/{}",
            HOSTS.choose(&mut rng).unwrap(),
            rng.gen_range(1..100_000)
        );
        m.eta_line = Some(ETAS.choose(&mut rng).unwrap().to_string());
        m.next_update_line = rng
            .gen_bool(0.8)
            .then(|| "Next update by Tue 24 Nov 14:30 UTC.".to_string());
        let full = r.post_text(&m, None).unwrap();
        for (counter, limit) in networks {
            let out = fitted(&r, &m, limit, counter);
            let what = format!("case {case}, {counter:?} {limit}:\n{out}");
            assert!(counter.count(&out) <= limit, "{what}");
            if counter == Counter::Weighted {
                let p = twitter_text::parse(&out, twitter_text_config::config_v3(), true);
                assert!(x_accepts(&out), "X refuses ({p:?}) {what}");
            }
            assert!(out.contains(m.eta_line.as_deref().unwrap()), "{what}");
            if let Some(next) = &m.next_update_line {
                assert!(out.contains(next.as_str()), "{what}");
            }
            assert!(out.ends_with(&m.incident_url), "{what}");
            if out == full {
                continue;
            }
            shortened += 1;
            // Only the story, title or component list was shortened, after whole words.
            assert!(counter.count(&full) > limit, "{what}");
            if let Some(cut) = out.lines().find_map(|l| l.strip_suffix('…')) {
                let cut = cut.strip_prefix("Investigating: ").unwrap_or(cut);
                assert!(
                    full.contains(&format!("{cut} ")) || full.contains(&format!("{cut}\n")),
                    "not cut at a word: {what}"
                );
            }
        }
    }
    assert!(shortened > 300, "the cases exercise fitting ({shortened})");
}
