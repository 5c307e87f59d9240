//! `/maintenance.ics`: the maintenance windows as an iCalendar feed (RFC 5545) that calendar
//! apps subscribe to. Each window is one VEVENT with a stable UID; every public change bumps
//! its SEQUENCE so subscribers replace their copy; a cancelled window stays in the feed with
//! `STATUS:CANCELLED` so calendars remove it rather than keep a stale one.

use icalendar::{Calendar, Component, Event, EventLike, EventStatus};

use super::snapshot::{Snapshot, Story};
use crate::config::Config;
use crate::domain::IncidentStatus;

pub const PATH: &str = "/maintenance.ics";

/// The stable UID of a window: its id at the site's host.
pub fn uid(config: &Config, id: i64) -> String {
    let host = config.site.public_url.host_str().unwrap_or("candor");
    format!("maintenance-{id}@{host}")
}

pub fn calendar(snapshot: &Snapshot, config: &Config) -> String {
    // `Calendar::new()` brings a PRODID of its own; RFC 5545 allows exactly one.
    let mut cal = Calendar::empty();
    cal.append_property(("VERSION", "2.0"));
    cal.append_property(("PRODID", "-//Candor//Scheduled maintenance//EN"));
    cal.append_property(("CALSCALE", "GREGORIAN"));
    cal.append_property(("METHOD", "PUBLISH"));
    cal.name(&format!("{} maintenance", config.site.name));
    for s in &snapshot.maintenances {
        cal.push(event(s, config));
    }
    cal.done().to_string()
}

fn event(s: &Story, config: &Config) -> Event {
    let w = &s.incident;
    let start = w.scheduled_for.unwrap_or(w.started_at);
    let end = match w.status {
        // A completed window ended when it was completed; a running one at its current end.
        IncidentStatus::Completed | IncidentStatus::Resolved => w.resolved_at,
        _ => w.eta_at.or(w.scheduled_until),
    }
    .or(w.scheduled_until)
    .unwrap_or(start);
    let names: Vec<String> = s
        .components
        .keys()
        .map(|c| {
            config
                .component(c)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| c.clone())
        })
        .collect();
    let mut text = String::new();
    if let Some(d) = &w.description {
        text.push_str(&one_line_break(d));
        text.push_str("\n\n");
    }
    if !names.is_empty() {
        text.push_str(&format!("Affected: {}\n", names.join(", ")));
    }
    text.push_str(&s.url);
    let mut e = Event::new();
    e.uid(&uid(config, w.id))
        .timestamp(w.updated_at)
        .created(w.created_at)
        .last_modified(w.updated_at)
        .sequence(u32::try_from(w.sequence).unwrap_or(u32::MAX))
        .summary(&format!("Maintenance: {}", one_line_break(&w.title)))
        .description(&text)
        .starts(start)
        .ends(end)
        .url(&s.url)
        .status(if w.status == IncidentStatus::Cancelled {
            EventStatus::Cancelled
        } else {
            EventStatus::Confirmed
        });
    e.done()
}

/// Text with every line break as `\n` (which the calendar escapes) and no other control
/// characters: a description typed in a browser's text area arrives with CRLF, and a bare CR
/// would otherwise land raw in the file.
fn one_line_break(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_breaks_become_one_kind_and_control_characters_go() {
        assert_eq!(super::one_line_break("a\r\nb\rc\nd\u{7}e"), "a\nb\nc\nde");
    }
}
