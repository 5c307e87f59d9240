//! The Atom and RSS feeds: one entry per public update, newest first, with ids that never
//! change, read back with an independent parser (feed-rs).

use candor::status_page::feeds;
use chrono::{DateTime, Duration, Utc};
use feed_rs::model::{Feed, FeedType};
use serde_json::json;

use crate::helpers::*;

fn parse(xml: &str) -> Feed {
    feed_rs::parser::parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}:\n{xml}"))
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn ids(feed: &Feed) -> Vec<String> {
    feed.entries.iter().map(|e| e.id.clone()).collect()
}

fn titles(feed: &Feed) -> Vec<String> {
    feed.entries
        .iter()
        .map(|e| e.title.as_ref().expect("entry has a title").content.clone())
        .collect()
}

/// A (declared, updated, resolved) and B (declared): four updates.
async fn two_incidents(t: &TestApp) -> (i64, i64) {
    let a = t
        .declare(json!({
            "title": "Elevated API error rates", "impact": "major", "status": "investigating",
            "message": "About 20% of API requests fail with 502 & <worse>.",
            "components": { "api": "partial_outage" }, "eta_in": "45m"
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    t.advance_to(10);
    let r = t
        .post(
            &format!("/api/v1/incidents/{a}/updates"),
            &json!({ "message": "A bad deploy; rolling back.", "status": "identified" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    t.advance_to(35);
    let r = t
        .post(
            &format!("/api/v1/incidents/{a}/resolve"),
            &json!({ "message": "Error rates are back to normal." }),
        )
        .await;
    assert_eq!(r.status(), 200);
    t.advance_to(40);
    let b = t
        .declare(json!({
            "title": "Slow email delivery", "impact": "minor", "status": "investigating",
            "message": "Some emails arrive late.",
            "components": { "email": "degraded_performance" }
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    (a, b)
}

/// The updates' ids, newest first, as the API lists them.
async fn update_ids(t: &TestApp, incidents: &[i64]) -> Vec<(i64, i64, String)> {
    let mut out = Vec::new();
    for id in incidents {
        for u in t.incident(*id).await["updates"].as_array().unwrap() {
            out.push((
                *id,
                u["id"].as_i64().unwrap(),
                u["created_at"].as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort_by(|x, y| y.2.cmp(&x.2));
    out
}

#[tokio::test]
async fn atom_feed_has_one_entry_per_update_newest_first() {
    let t = spawn_app().await;
    let (a, b) = two_incidents(&t).await;
    let snap = t.snapshot().await;
    let xml = feeds::atom(&snap, &t.app.config);

    assert!(xml.starts_with("<?xml version=\"1.0\""), "{xml}");
    assert!(
        xml.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\""),
        "the Atom namespace is declared: {xml}"
    );
    let feed = parse(&xml);
    assert_eq!(feed.feed_type, FeedType::Atom);
    assert_eq!(feed.id, "https://status.acme.test/feed.atom");
    assert_eq!(feed.title.as_ref().unwrap().content, "Acme Cloud status");
    assert_eq!(feed.updated, Some(at(40)));
    assert_eq!(feed.authors[0].name, "Acme Cloud");
    let link = |rel: &str| {
        feed.links
            .iter()
            .find(|l| l.rel.as_deref() == Some(rel))
            .unwrap_or_else(|| panic!("no {rel} link"))
            .href
            .clone()
    };
    assert_eq!(link("self"), "https://status.acme.test/feed.atom");
    assert_eq!(link("alternate"), "https://status.acme.test/");

    let expected: Vec<String> = update_ids(&t, &[a, b])
        .await
        .iter()
        .map(|(i, u, _)| format!("https://status.acme.test/incidents/{i}#update-{u}"))
        .collect();
    assert_eq!(feed.entries.len(), 4);
    assert_eq!(ids(&feed), expected);
    assert_eq!(
        titles(&feed),
        [
            "Slow email delivery: Investigating",
            "Elevated API error rates: Resolved",
            "Elevated API error rates: Identified",
            "Elevated API error rates: Investigating",
        ]
    );
    let times: Vec<_> = feed.entries.iter().map(|e| e.published).collect();
    assert_eq!(
        times,
        [Some(at(40)), Some(at(35)), Some(at(10)), Some(at(0))]
    );
    for (e, minutes) in feed.entries.iter().zip([40, 35, 10, 0]) {
        assert_eq!(e.updated, Some(at(minutes)));
    }
    let incident_links: Vec<&str> = feed
        .entries
        .iter()
        .map(|e| e.links[0].href.as_str())
        .collect();
    assert_eq!(
        incident_links,
        [
            format!("https://status.acme.test/incidents/{b}"),
            format!("https://status.acme.test/incidents/{a}"),
            format!("https://status.acme.test/incidents/{a}"),
            format!("https://status.acme.test/incidents/{a}"),
        ]
    );
    // The message, as plain text (escaped in the XML, intact once parsed).
    let oldest = feed.entries[3].content.as_ref().expect("entry has content");
    assert_eq!(
        oldest.body.as_deref(),
        Some(
            "About 20% of API requests fail with 502 & <worse>.\n\nAffects: Public API\n\n\
             We expect this fixed by Mon 23 Nov, 12:45 UTC. Next update by Mon 23 Nov, 12:30 UTC."
        )
    );
    assert!(xml.contains("502 &amp; &lt;worse&gt;."));

    // Rendered again after another update: the same updates keep the same ids.
    t.advance_to(50);
    let r = t
        .post(
            &format!("/api/v1/incidents/{b}/updates"),
            &json!({ "message": "A queue is backed up; draining it.", "status": "identified" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let again = parse(&feeds::atom(&t.snapshot().await, &t.app.config));
    assert_eq!(again.entries.len(), 5);
    assert_eq!(ids(&again)[1..], ids(&feed)[..]);
    assert_eq!(
        again.entries[0].title.as_ref().unwrap().content,
        "Slow email delivery: Identified"
    );
    assert_eq!(again.updated, Some(at(50)));

    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn rss_feed_has_the_same_items_with_non_permalink_guids() {
    let t = spawn_app().await;
    let (a, b) = two_incidents(&t).await;
    let snap = t.snapshot().await;
    let xml = feeds::rss(&snap, &t.app.config);

    assert!(xml.contains("<rss version=\"2.0\""), "{xml}");
    let feed = parse(&xml);
    assert_eq!(feed.feed_type, FeedType::RSS2);
    assert_eq!(feed.title.as_ref().unwrap().content, "Acme Cloud status");
    assert!(feed
        .links
        .iter()
        .any(|l| l.href == "https://status.acme.test/"));
    // The channel points at itself.
    assert!(
        xml.contains("xmlns:atom=\"http://www.w3.org/2005/Atom\"")
            && xml.contains("href=\"https://status.acme.test/feed.rss\"")
            && xml.contains("rel=\"self\""),
        "{xml}"
    );

    // The same entries, with the same ids, as the Atom feed.
    let atom = parse(&feeds::atom(&snap, &t.app.config));
    assert_eq!(feed.entries.len(), 4);
    assert_eq!(ids(&feed), ids(&atom));
    assert_eq!(titles(&feed), titles(&atom));
    let (_, newest_update, _) = update_ids(&t, &[a, b]).await[0].clone();
    assert_eq!(
        feed.entries[0].id,
        format!("https://status.acme.test/incidents/{b}#update-{newest_update}")
    );
    assert_eq!(
        xml.matches("<guid isPermaLink=\"false\">").count(),
        4,
        "{xml}"
    );
    let times: Vec<_> = feed.entries.iter().map(|e| e.published).collect();
    assert_eq!(
        times,
        [Some(at(40)), Some(at(35)), Some(at(10)), Some(at(0))]
    );
    // RFC 2822 dates.
    assert!(
        xml.contains("<pubDate>Mon, 23 Nov 2026 12:35:00 +0000</pubDate>"),
        "{xml}"
    );
    assert!(xml.contains("<lastBuildDate>Mon, 23 Nov 2026 12:40:00 +0000</lastBuildDate>"));
    assert_eq!(
        feed.entries[1].links[0].href,
        format!("https://status.acme.test/incidents/{a}")
    );
    assert_eq!(
        feed.entries[1].summary.as_ref().map(|s| s.content.as_str()),
        Some("Error rates are back to normal.<br>\n<br>\nAffects: Public API")
    );
    // Readers take an RSS description as HTML: the message is escaped to show as written.
    assert_eq!(
        feed.entries[3].summary.as_ref().map(|s| s.content.as_str()),
        Some(
            "About 20% of API requests fail with 502 &amp; &lt;worse&gt;.<br>\n<br>\n\
             Affects: Public API<br>\n<br>\n\
             We expect this fixed by Mon 23 Nov, 12:45 UTC. Next update by Mon 23 Nov, 12:30 UTC."
        )
    );
    // Stable across renders.
    assert_eq!(
        feeds::rss(&t.snapshot().await, &t.app.config),
        xml,
        "nothing changed, so the document did not either"
    );

    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn with_no_updates_both_feeds_are_valid_and_empty() {
    let t = spawn_app().await;
    let snap = t.snapshot().await;

    let atom = parse(&feeds::atom(&snap, &t.app.config));
    assert_eq!(atom.feed_type, FeedType::Atom);
    assert!(atom.entries.is_empty());
    assert_eq!(atom.id, "https://status.acme.test/feed.atom");
    // With nothing ever posted, `updated` is the start of the day, so the feed (and its ETag)
    // stays the same however often the page cache is rebuilt that day.
    assert_eq!(atom.updated, Some(t0() - chrono::Duration::hours(12)));
    let xml = feeds::atom(&snap, &t.app.config);
    t.advance(std::time::Duration::from_secs(3 * 3600));
    assert_eq!(feeds::atom(&t.snapshot().await, &t.app.config), xml);

    let rss = parse(&feeds::rss(&snap, &t.app.config));
    assert_eq!(rss.feed_type, FeedType::RSS2);
    assert!(rss.entries.is_empty());
    assert_eq!(rss.title.unwrap().content, "Acme Cloud status");
    t.finish().await;
}
