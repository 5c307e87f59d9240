//! Atlassian Statuspage's public API v2 (`/api/v2/*.json`), same paths, shapes and value sets,
//! rendered from a [`Snapshot`]. Candor's extras (the estimate and the next-update promise) are
//! added as extra fields; the known shape is never broken.
//!
//! What the shapes rest on (Statuspage publishes the public API only as an example page under
//! `/api` on every hosted page, for example `https://www.githubstatus.com/api`, plus vendors'
//! copies of it such as MongoDB's "cloud-status" reference):
//!
//! - Confirmed by the documentation text: the eight paths; `incidents.json` is "the 50 most
//!   recent incidents", `unresolved.json` only Investigating, Identified or Monitoring,
//!   `summary.json` holds the indicator, components, unresolved incidents and upcoming or
//!   in-progress maintenances; the page object `{id, name, url, time_zone, updated_at}`; status
//!   `{indicator, description}` with indicator none/minor/major/critical; component fields
//!   (`id, name, status, created_at, updated_at, position, description, showcase, start_date,
//!   group_id, page_id, group, only_show_if_degraded`); incident fields (`id, name, status,
//!   created_at, updated_at, monitoring_at, resolved_at, impact, shortlink, started_at, page_id,
//!   incident_updates, components`); update fields (`id, status, body, incident_id, created_at,
//!   updated_at, display_at, affected_components, deliver_notifications, custom_tweet,
//!   tweet_id`); the status and impact value sets.
//! - Confirmed only by real responses captured in public repositories (Discord, Huobi, Emma,
//!   GitHub pages), not by documentation text: updates are listed newest first; group
//!   components carry `group: true` and `components: [member ids]`, members carry `group_id`;
//!   `position` counts within a level (top level, or inside one group); an incident's
//!   `components` are full component objects with the component's current status;
//!   `affected_components` items are `{code, name, old_status, new_status}` with grouped
//!   components named "Group - Component", or `null` when an update changed none; times have
//!   millisecond precision in the page's time zone, `Z` when that zone is UTC (Rails'
//!   `iso8601(3)`), for example `2019-06-24T06:07:14.463-07:00`.
//! - Not confirmed anywhere, so chosen here: where a group sits among its members in the flat
//!   list (we put it first, then its members); `showcase` (Statuspage's "display uptime"; Candor
//!   shows 90-day bars for every component, so `true`); a component's `created_at` (Candor does
//!   not record when a component was configured: we give the earliest time the snapshot knows,
//!   never after `updated_at`); `start_date` is `null`; the indicator's `description` comes from
//!   [`Indicator::description`](crate::domain::status::Indicator::description), while real pages
//!   also say "Partially Degraded Service" for `minor`. Objects' keys come out in alphabetical
//!   order (serde_json without `preserve_order`); JSON readers do not depend on key order.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::{OffsetName, Tz};
use serde_json::{json, Value};

use super::snapshot::{ComponentView, Snapshot, Story};
use crate::config::{Config, GroupConfig};
use crate::domain::{ComponentStatus, IncidentStatus};
use crate::store::updates::Update;

pub const SUMMARY: &str = "/api/v2/summary.json";
pub const STATUS: &str = "/api/v2/status.json";
pub const COMPONENTS: &str = "/api/v2/components.json";
pub const INCIDENTS: &str = "/api/v2/incidents.json";
pub const UNRESOLVED: &str = "/api/v2/incidents/unresolved.json";
pub const SCHEDULED_MAINTENANCES: &str = "/api/v2/scheduled-maintenances.json";
pub const UPCOMING_MAINTENANCES: &str = "/api/v2/scheduled-maintenances/upcoming.json";
pub const ACTIVE_MAINTENANCES: &str = "/api/v2/scheduled-maintenances/active.json";

/// Every path [`documents`] returns, in that order.
pub const PATHS: [&str; 8] = [
    SUMMARY,
    STATUS,
    COMPONENTS,
    INCIDENTS,
    UNRESOLVED,
    SCHEDULED_MAINTENANCES,
    UPCOMING_MAINTENANCES,
    ACTIVE_MAINTENANCES,
];

/// Every v2 document, by path (for example `/api/v2/summary.json`).
pub fn documents(snapshot: &Snapshot, config: &Config) -> Vec<(&'static str, Value)> {
    let view = View::new(snapshot, config);
    let page = view.page();
    let status = json!({
        "indicator": snapshot.indicator.as_str(),
        "description": snapshot.indicator.description(),
    });
    let components = view.components.clone();

    // An open incident is usually among the 50 newest too: render each story once.
    let mut rendered: BTreeMap<i64, Value> = BTreeMap::new();
    let mut incidents = |stories: &[Story]| -> Vec<Value> {
        stories
            .iter()
            .map(|s| {
                rendered
                    .entry(s.incident.id)
                    .or_insert_with(|| view.incident(s))
                    .clone()
            })
            .collect()
    };
    let unresolved = incidents(&snapshot.active);
    let recent = incidents(&snapshot.recent);
    // Maintenance windows, as Statuspage lists them: every window but cancelled ones (which
    // Statuspage deletes) in `scheduled-maintenances.json`, status `scheduled` in `upcoming`,
    // `in_progress` or `verifying` in `active`, both in the summary. Upcoming soonest first.
    let windows = |keep: &dyn Fn(IncidentStatus) -> bool| -> Vec<Value> {
        let mut w: Vec<&Story> = snapshot
            .maintenances
            .iter()
            .filter(|s| keep(s.incident.status))
            .collect();
        w.sort_by_key(|s| (s.incident.scheduled_for, s.incident.id));
        w.into_iter().map(|s| view.maintenance(s)).collect()
    };
    let upcoming = windows(&|st| st == IncidentStatus::Scheduled);
    let in_progress =
        windows(&|st| matches!(st, IncidentStatus::InProgress | IncidentStatus::Verifying));
    let mut all: Vec<Value> = snapshot
        .maintenances
        .iter()
        .filter(|s| s.incident.status != IncidentStatus::Cancelled)
        .map(|s| view.maintenance(s))
        .collect();
    all.truncate(50);
    let mut summary_windows = in_progress.clone();
    summary_windows.extend(upcoming.iter().cloned());

    vec![
        (
            SUMMARY,
            json!({
                "page": page,
                "status": status,
                "components": components,
                "incidents": unresolved,
                "scheduled_maintenances": summary_windows,
                // Candor's own: the promise record (as `GET /api/v1/record`).
                "record": snapshot.record,
            }),
        ),
        (STATUS, json!({ "page": page, "status": status })),
        (
            COMPONENTS,
            json!({ "page": page, "components": components }),
        ),
        (INCIDENTS, json!({ "page": page, "incidents": recent })),
        (UNRESOLVED, json!({ "page": page, "incidents": unresolved })),
        (
            SCHEDULED_MAINTENANCES,
            json!({ "page": page, "scheduled_maintenances": all }),
        ),
        (
            UPCOMING_MAINTENANCES,
            json!({ "page": page, "scheduled_maintenances": upcoming }),
        ),
        (
            ACTIVE_MAINTENANCES,
            json!({ "page": page, "scheduled_maintenances": in_progress }),
        ),
    ]
}

/// Statuspage ids are strings; the page's is the site name as a slug (`Acme Cloud` →
/// `acme-cloud`), stable as long as the name is.
pub fn page_id(config: &Config) -> String {
    let mut slug = String::new();
    for c in config.site.name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() {
        slug.push_str("candor");
    }
    slug
}

/// A time as Statuspage writes it: milliseconds, in the page's time zone, `Z` when that zone
/// is UTC.
pub fn time(tz: Tz, t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&tz);
    let utc = matches!(local.offset().abbreviation(), Some("UTC" | "UCT"));
    local.to_rfc3339_opts(SecondsFormat::Millis, utc)
}

/// One top-level entry of the component list.
enum Entry<'a> {
    Single(&'a ComponentView),
    Group(&'a GroupConfig, Vec<&'a ComponentView>),
}

struct View<'a> {
    config: &'a Config,
    tz: Tz,
    page_id: String,
    /// The page's last change.
    updated_at: DateTime<Utc>,
    /// The earliest time the snapshot knows: stands in for components' `created_at`.
    epoch: DateTime<Utc>,
    /// Component objects in page order, groups included.
    components: Vec<Value>,
    /// Component objects (not groups) by id, with their index in page order.
    by_id: BTreeMap<&'a str, (usize, Value)>,
    /// Display names as Statuspage writes them in `affected_components`.
    long_names: BTreeMap<&'a str, String>,
}

impl<'a> View<'a> {
    fn new(snapshot: &'a Snapshot, config: &'a Config) -> Self {
        let updated_at = snapshot.last_change();
        let epoch = snapshot
            .recent
            .iter()
            .chain(&snapshot.active)
            .map(|s| s.incident.created_at.min(s.incident.started_at))
            .fold(updated_at, DateTime::min);
        let mut view = View {
            config,
            tz: config.site.time_zone,
            page_id: page_id(config),
            updated_at,
            epoch,
            components: Vec::new(),
            by_id: BTreeMap::new(),
            long_names: BTreeMap::new(),
        };

        // Top level in config order: a group takes the place of its first member.
        let mut top: Vec<Entry<'a>> = Vec::new();
        for c in &snapshot.components {
            let group = c
                .group
                .as_deref()
                .and_then(|g| config.groups.iter().find(|x| x.id == g));
            match group {
                None => top.push(Entry::Single(c)),
                Some(g) => {
                    let existing = top.iter_mut().find_map(|e| match e {
                        Entry::Group(x, members) if x.id == g.id => Some(members),
                        _ => None,
                    });
                    match existing {
                        Some(members) => members.push(c),
                        None => top.push(Entry::Group(g, vec![c])),
                    }
                }
            }
        }

        let mut components = Vec::new();
        for (i, entry) in top.iter().enumerate() {
            match entry {
                Entry::Single(c) => {
                    let c: &'a ComponentView = c;
                    let v = view.component(c, i + 1, None);
                    view.by_id.insert(&c.id, (components.len(), v.clone()));
                    view.long_names.insert(&c.id, c.name.clone());
                    components.push(v);
                }
                Entry::Group(g, members) => {
                    components.push(view.group(g, members, i + 1));
                    for (j, c) in members.iter().copied().enumerate() {
                        let v = view.component(c, j + 1, Some(&g.id));
                        view.by_id.insert(&c.id, (components.len(), v.clone()));
                        view.long_names
                            .insert(&c.id, format!("{} - {}", g.name, c.name));
                        components.push(v);
                    }
                }
            }
        }
        view.components = components;
        view
    }

    fn time(&self, t: DateTime<Utc>) -> String {
        time(self.tz, t)
    }

    fn opt_time(&self, t: Option<DateTime<Utc>>) -> Value {
        t.map_or(Value::Null, |t| Value::String(self.time(t)))
    }

    fn page(&self) -> Value {
        json!({
            "id": self.page_id,
            "name": self.config.site.name,
            "url": self.config.site.public_url.as_str().trim_end_matches('/'),
            "time_zone": self.tz.name(),
            "updated_at": self.time(self.updated_at),
        })
    }

    fn component(&self, c: &ComponentView, position: usize, group_id: Option<&str>) -> Value {
        let updated = c.updated_at.unwrap_or(self.updated_at);
        json!({
            "id": c.id,
            "name": c.name,
            "status": c.status.as_str(),
            "created_at": self.time(self.epoch.min(updated)),
            "updated_at": self.time(updated),
            "position": position,
            "description": c.description,
            "showcase": true,
            "start_date": Value::Null,
            "group_id": group_id,
            "page_id": self.page_id,
            "group": false,
            "only_show_if_degraded": false,
        })
    }

    /// A group as Statuspage lists it: a component with `group: true`, the worst status of its
    /// members, and their ids.
    fn group(&self, g: &GroupConfig, members: &[&ComponentView], position: usize) -> Value {
        let status = members
            .iter()
            .map(|c| c.status)
            .max_by_key(|s| s.severity())
            .unwrap_or(ComponentStatus::Operational);
        let updated = members
            .iter()
            .filter_map(|c| c.updated_at)
            .max()
            .unwrap_or(self.updated_at);
        let ids: Vec<&str> = members.iter().map(|c| c.id.as_str()).collect();
        json!({
            "id": g.id,
            "name": g.name,
            "status": status.as_str(),
            "created_at": self.time(self.epoch.min(updated)),
            "updated_at": self.time(updated),
            "position": position,
            "description": Value::Null,
            "showcase": false,
            "start_date": Value::Null,
            "group_id": Value::Null,
            "page_id": self.page_id,
            "group": true,
            "only_show_if_degraded": false,
            "components": ids,
        })
    }

    fn incident(&self, s: &Story) -> Value {
        let i = &s.incident;

        // Every component the incident ever named (a resolved incident's own list is empty),
        // as page component objects, in page order.
        let named: BTreeSet<&str> = s
            .components
            .keys()
            .chain(s.updates.iter().flat_map(|u| u.components.keys()))
            .map(String::as_str)
            .collect();
        let mut components: Vec<&(usize, Value)> =
            named.iter().filter_map(|c| self.by_id.get(c)).collect();
        components.sort_by_key(|(order, _)| *order);
        let components: Vec<&Value> = components.into_iter().map(|(_, v)| v).collect();

        // Newest first, each compared with the one before it.
        let updates: Vec<Value> = s
            .updates
            .iter()
            .enumerate()
            .rev()
            .map(|(n, u)| self.update(u, n.checked_sub(1).map(|p| &s.updates[p])))
            .collect();
        let monitoring_at = s
            .updates
            .iter()
            .find(|u| u.status == IncidentStatus::Monitoring)
            .map(|u| u.created_at);
        let eta_history: Vec<Value> = s
            .eta_revisions
            .iter()
            .map(|r| {
                json!({
                    "old": self.opt_time(r.old_eta),
                    "new": self.opt_time(r.new_eta),
                    "reason": r.reason,
                    "at": self.time(r.created_at),
                })
            })
            .collect();

        let mut v = json!({
            "id": i.id.to_string(),
            "name": i.title,
            "status": i.status.as_str(),
            "created_at": self.time(i.created_at),
            "updated_at": self.time(i.updated_at),
            "monitoring_at": self.opt_time(monitoring_at),
            "resolved_at": self.opt_time(i.resolved_at),
            "impact": i.impact.as_str(),
            "shortlink": s.url,
            "started_at": self.time(i.started_at),
            "page_id": self.page_id,
            "incident_updates": updates,
            "components": components,
            // Candor's extras.
            "eta": self.opt_time(i.eta_at),
            "next_update_at": self.opt_time(i.next_update_at),
            "eta_history": eta_history,
        });
        // Statuspage's postmortem fields, once one is published (Markdown, as written).
        if let Some(pm) = &s.postmortem {
            v["postmortem_body"] = json!(pm.body);
            v["postmortem_body_last_updated_at"] = json!(self.time(pm.updated_at));
            v["postmortem_published_at"] = self.opt_time(pm.published_at);
        }
        v
    }

    /// A scheduled maintenance: an incident object with Statuspage's `scheduled_for` and
    /// `scheduled_until`, and impact `maintenance`.
    fn maintenance(&self, s: &Story) -> Value {
        let mut v = self.incident(s);
        let i = &s.incident;
        v["impact"] = json!("maintenance");
        v["scheduled_for"] = self.opt_time(i.scheduled_for);
        v["scheduled_until"] = self.opt_time(i.scheduled_until);
        // As the page says: a window that has not started promises no update yet.
        if i.status == IncidentStatus::Scheduled {
            v["next_update_at"] = Value::Null;
        }
        v
    }

    /// One update. Candor stores each update's full set of component statuses; Statuspage
    /// lists the components an update changed, so compare with the previous update (the first
    /// one lists every component it named).
    fn update(&self, u: &Update, previous: Option<&Update>) -> Value {
        let before = previous.map(|p| &p.components);
        let names: BTreeSet<&str> = u
            .components
            .keys()
            .chain(before.into_iter().flat_map(|b| b.keys()))
            .map(String::as_str)
            .collect();
        let mut affected: Vec<(usize, Value)> = Vec::new();
        for code in names {
            let old = before
                .and_then(|b| b.get(code))
                .copied()
                .unwrap_or(ComponentStatus::Operational);
            let new = u
                .components
                .get(code)
                .copied()
                .unwrap_or(ComponentStatus::Operational);
            if old == new && before.is_some() {
                continue;
            }
            let order = self.by_id.get(code).map_or(usize::MAX, |(o, _)| *o);
            let name = self
                .long_names
                .get(code)
                .cloned()
                .unwrap_or_else(|| code.to_string());
            affected.push((
                order,
                json!({
                    "code": code,
                    "name": name,
                    "old_status": old.as_str(),
                    "new_status": new.as_str(),
                }),
            ));
        }
        affected.sort_by_key(|(order, _)| *order);
        let affected = if affected.is_empty() {
            Value::Null
        } else {
            Value::Array(affected.into_iter().map(|(_, v)| v).collect())
        };
        let at = self.time(u.created_at);
        let mut v = json!({
            "id": u.id.to_string(),
            "status": u.status.as_str(),
            "body": u.message,
            "incident_id": u.incident_id.to_string(),
            "created_at": at,
            "updated_at": u.corrected_at().map_or_else(|| at.clone(), |c| self.time(c)),
            "display_at": at,
            "affected_components": affected,
            // Every update goes to every channel.
            "deliver_notifications": true,
            "custom_tweet": Value::Null,
            "tweet_id": Value::Null,
        });
        // Candor's own: corrections, oldest first; `body` keeps the words as first posted.
        if !u.corrections.is_empty() {
            v["corrections"] = u
                .corrections
                .iter()
                .map(|c| {
                    json!({ "body": c.message, "reason": c.reason,
                            "created_at": self.time(c.created_at) })
                })
                .collect();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_are_written_like_statuspage() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        assert_eq!(time(chrono_tz::UTC, t), "2026-11-23T12:00:00.000Z");
        assert_eq!(time(chrono_tz::Etc::UTC, t), "2026-11-23T12:00:00.000Z");
        assert_eq!(
            time(chrono_tz::Europe::Berlin, t),
            "2026-11-23T13:00:00.000+01:00"
        );
        assert_eq!(
            time(chrono_tz::America::Tijuana, t),
            "2026-11-23T04:00:00.000-08:00"
        );
        // London in winter is GMT, not UTC: Statuspage (Rails) writes the offset.
        assert_eq!(
            time(chrono_tz::Europe::London, t),
            "2026-11-23T12:00:00.000+00:00"
        );
    }
}
