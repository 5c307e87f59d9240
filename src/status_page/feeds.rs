//! `/feed.atom` (RFC 4287) and `/feed.rss` (RSS 2.0): one entry per public update, newest
//! first, the same items in both.

use std::collections::BTreeMap;

use atom_syndication as atom;
use chrono::{DateTime, Utc};

use super::snapshot::{status_label, FeedItem, Snapshot};
use crate::config::Config;
use crate::domain::IncidentStatus;

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

fn base(config: &Config) -> &str {
    config.site.public_url.as_str().trim_end_matches('/')
}

/// Where the Atom feed is served; also its `atom:id`.
pub fn atom_url(config: &Config) -> String {
    format!("{}/feed.atom", base(config))
}

/// Where the RSS feed is served.
pub fn rss_url(config: &Config) -> String {
    format!("{}/feed.rss", base(config))
}

/// An entry's id: the incident's page with the update as fragment. It never changes once the
/// update exists, so readers do not show an entry twice.
pub fn entry_id(config: &Config, item: &FeedItem) -> String {
    format!(
        "{}/incidents/{}#update-{}",
        base(config),
        item.update.incident_id,
        item.update.id
    )
}

/// An entry's title: the incident's title and the status the update gave it.
pub fn entry_title(item: &FeedItem) -> String {
    format!("{}: {}", item.title, status_label(item.update.status))
}

/// An entry's text: the update's words, then the facts every channel tells (see
/// `templates/social/post.txt.j2`): the components it affected and, while the incident is
/// open, the estimate (or the honest "no estimate yet") and when the next update is due,
/// worded as the posts word them at the time of the update.
pub fn entry_text(config: &Config, item: &FeedItem) -> String {
    let u = &item.update;
    let mut text = u.message.trim_end().to_string();
    // Corrections follow the original words, never replace them.
    for c in &u.corrections {
        text.push_str("\n\n");
        text.push_str(&crate::domain::correction::corrected_line(
            c.created_at,
            &c.reason,
            config.site.time_zone,
        ));
        text.push_str("\nIt now reads: ");
        text.push_str(c.message.trim_end());
    }
    let names: Vec<&str> = u
        .components
        .keys()
        .map(|id| {
            config
                .component(id)
                .map_or(id.as_str(), |c| c.name.as_str())
        })
        .collect();
    if !names.is_empty() {
        text.push_str("\n\nAffects: ");
        text.push_str(&names.join(", "));
    }
    // A maintenance notice says its planned times in its own words.
    if !u.status.is_maintenance() {
        let open = u.status != IncidentStatus::Resolved;
        let (eta, next) = crate::channels::incident_promise_lines(
            open,
            u.eta_at,
            item.eta_change.as_ref(),
            u.next_update_at,
            u.created_at,
            config.site.time_zone,
        );
        let promise: Vec<String> = eta.into_iter().chain(next).collect();
        if !promise.is_empty() {
            text.push_str("\n\n");
            text.push_str(&promise.join(" "));
        }
    }
    text
}

/// The published postmortems of the stories the page keeps: (incident id, title, url, Markdown,
/// published, last edited).
fn postmortems(snapshot: &Snapshot) -> Vec<PostmortemEntry<'_>> {
    snapshot
        .recent
        .iter()
        .filter_map(|s| {
            let p = s.postmortem.as_ref()?;
            Some(PostmortemEntry {
                id: s.incident.id,
                title: &s.incident.title,
                url: &s.url,
                body: &p.body,
                published: p.published_at?,
                updated: p.updated_at.max(p.published_at?),
            })
        })
        .collect()
}

struct PostmortemEntry<'a> {
    id: i64,
    title: &'a str,
    url: &'a str,
    body: &'a str,
    published: DateTime<Utc>,
    updated: DateTime<Utc>,
}

fn feed_title(config: &Config) -> String {
    format!("{} status", config.site.name)
}

/// The newest entry's time (see [`Snapshot::last_change`] for a feed with none).
fn feed_updated(snapshot: &Snapshot) -> DateTime<Utc> {
    snapshot.last_change()
}

fn atom_link(href: String, rel: &str, mime_type: &str) -> atom::Link {
    atom::Link {
        href,
        rel: rel.to_string(),
        mime_type: Some(mime_type.to_string()),
        ..Default::default()
    }
}

/// The Atom feed document.
pub fn atom(snapshot: &Snapshot, config: &Config) -> String {
    let home = format!("{}/", base(config));
    let mut entries: Vec<atom::Entry> = snapshot
        .feed
        .iter()
        .map(|item| {
            let at = item.update.created_at.fixed_offset();
            let updated = item.update.corrected_at().map_or(at, |c| c.fixed_offset());
            atom::Entry {
                title: atom::Text::plain(entry_title(item)),
                id: entry_id(config, item),
                updated,
                published: Some(at),
                links: vec![atom_link(item.url.clone(), "alternate", "text/html")],
                content: Some(atom::Content {
                    value: Some(entry_text(config, item)),
                    content_type: Some("text".to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    // A published postmortem is an entry of its own (its Markdown as written).
    for p in postmortems(snapshot) {
        entries.push(atom::Entry {
            title: atom::Text::plain(format!("{}: Postmortem", p.title)),
            id: format!("{}/incidents/{}#postmortem", base(config), p.id),
            updated: p.updated.fixed_offset(),
            published: Some(p.published.fixed_offset()),
            links: vec![atom_link(
                format!("{}#postmortem", p.url),
                "alternate",
                "text/html",
            )],
            content: Some(atom::Content {
                value: Some(p.body.to_string()),
                content_type: Some("text".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let feed = atom::Feed {
        title: atom::Text::plain(feed_title(config)),
        id: atom_url(config),
        updated: feed_updated(snapshot).fixed_offset(),
        // RFC 4287 §4.1.1: a feed needs an author unless every entry has one.
        authors: vec![atom::Person {
            name: config.site.name.clone(),
            uri: Some(home.clone()),
            ..Default::default()
        }],
        generator: Some(atom::Generator {
            value: "Candor".to_string(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }),
        links: vec![
            atom_link(atom_url(config), "self", "application/atom+xml"),
            atom_link(home, "alternate", "text/html"),
        ],
        entries,
        ..Default::default()
    };
    // The crate's own declaration leaves out the encoding; say it.
    let mut out = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n".to_vec();
    feed.write_with_config(
        &mut out,
        atom::WriteConfig {
            write_document_declaration: false,
            indent_size: None,
        },
    )
    .expect("an Atom feed writes to memory");
    String::from_utf8(out).expect("the Atom writer writes UTF-8")
}

/// Plain text as HTML that shows it as written: readers take an RSS `description` as HTML.
fn html_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push_str("<br>\n"),
            c => out.push(c),
        }
    }
    out
}

/// The RSS 2.0 feed document.
pub fn rss(snapshot: &Snapshot, config: &Config) -> String {
    let items = snapshot
        .feed
        .iter()
        .map(|item| rss::Item {
            title: Some(entry_title(item)),
            link: Some(item.url.clone()),
            description: Some(html_text(&entry_text(config, item))),
            guid: Some(rss::Guid {
                value: entry_id(config, item),
                permalink: false,
            }),
            pub_date: Some(item.update.created_at.to_rfc2822()),
            ..Default::default()
        })
        .collect();
    let mut items: Vec<rss::Item> = items;
    for p in postmortems(snapshot) {
        items.push(rss::Item {
            title: Some(format!("{}: Postmortem", p.title)),
            link: Some(format!("{}#postmortem", p.url)),
            description: Some(html_text(p.body)),
            guid: Some(rss::Guid {
                value: format!("{}/incidents/{}#postmortem", base(config), p.id),
                permalink: false,
            }),
            pub_date: Some(p.published.to_rfc2822()),
            ..Default::default()
        });
    }
    // `<atom:link rel="self">`, as the RSS Advisory Board recommends.
    let self_link = rss::extension::Extension {
        name: "atom:link".to_string(),
        value: None,
        attrs: BTreeMap::from([
            ("href".to_string(), rss_url(config)),
            ("rel".to_string(), "self".to_string()),
            ("type".to_string(), "application/rss+xml".to_string()),
        ]),
        children: BTreeMap::new(),
    };
    let channel = rss::Channel {
        title: feed_title(config),
        link: format!("{}/", base(config)),
        description: format!("Incidents and their updates, from {}", config.site.name),
        last_build_date: Some(feed_updated(snapshot).to_rfc2822()),
        generator: Some("Candor".to_string()),
        docs: Some("https://www.rssboard.org/rss-specification".to_string()),
        items,
        namespaces: BTreeMap::from([("atom".to_string(), ATOM_NS.to_string())]),
        extensions: BTreeMap::from([(
            "atom".to_string(),
            BTreeMap::from([("link".to_string(), vec![self_link])]),
        )]),
        ..Default::default()
    };
    let out = channel
        .write_to(Vec::new())
        .expect("an RSS channel writes to memory");
    String::from_utf8(out).expect("the RSS writer writes UTF-8")
}
