//! The public HTML pages, rendered from a [`Snapshot`] with the templates under
//! `templates/status/`. Times are written in UTC inside `<time datetime>` elements; a few lines of
//! script show them in the reader's zone where scripts run.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderValue;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{json, Value};

use super::cache::{Asset, Pages};
use super::snapshot::{status_label, Snapshot, Story};
use super::{feeds, v2};
use crate::config::Config;
use crate::domain::status::Day;
use crate::domain::text::{human_date, percent};
use crate::domain::{ComponentStatus, UpdateKind};
use crate::render::views::{component_label, site_view, Times};
use crate::render::{RenderError, Renderer};
use crate::store::incidents::Incident;

/// What every public page's layout needs, with the link to this month's history page (a path,
/// not a query string, so a static mirror serves it too).
fn public_site(config: &Config, now: DateTime<Utc>) -> Value {
    let mut site = site_view(config);
    site["history_path"] = json!(super::on_demand::history_path(super::on_demand::month_of(
        now
    )));
    site
}

fn kind_label(k: UpdateKind) -> &'static str {
    match k {
        UpdateKind::Operator => "Update",
        UpdateKind::Scheduled => "Scheduled check-in",
        UpdateKind::Overdue => "Apology",
        UpdateKind::Resolution => "Resolved",
        UpdateKind::Notice => "Maintenance notice",
    }
}

fn count_words(n: usize) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

fn incident_view(s: &Story, config: &Config, times: &Times) -> Value {
    use crate::domain::IncidentStatus as St;
    let now = times.now;
    let i = &s.incident;
    let open = i.is_open();
    let eta = i.eta_at.map(|t| times.at(t));
    let (eta_state, eta_sentence) = match (open, i.eta_at) {
        (true, Some(t)) if t > now => ("expected", "We expect this fixed by"),
        (true, Some(_)) => ("passed", "Our estimate has passed:"),
        (true, None) => (
            "unknown",
            "We don't have a reliable estimate yet, and we won't guess.",
        ),
        (false, _) => ("resolved", ""),
    };
    // "First estimated <time>, revised twice.": the time is an element, so readers see it in
    // the same zone as the estimate beside it.
    let eta_history = match (s.first_eta(), s.eta_changes()) {
        (Some(first), n) if n > 0 => {
            Some(json!({ "first": times.at(first), "revised": count_words(n) }))
        }
        _ => None,
    };
    // Every move of the estimate, oldest first, with the reason the team gave.
    let eta_revisions: Vec<Value> = s
        .eta_revisions
        .iter()
        .map(|r| {
            json!({
                "at": times.at(r.created_at),
                "old": r.old_eta.map(|t| times.at(t)),
                "new": r.new_eta.map(|t| times.at(t)),
                "reason": r.reason.as_deref()
                    .filter(|r| *r != crate::domain::wording::FIRST_ESTIMATE)
                    .map(crate::domain::wording::clause),
            })
        })
        .collect();
    let components: Vec<Value> = s
        .components
        .iter()
        .map(|(id, st)| {
            json!({
                "name": config.component(id).map(|c| c.name.as_str()).unwrap_or(id),
                "status": st,
                "label": component_label(*st),
            })
        })
        .collect();
    let updates: Vec<Value> = s
        .updates
        .iter()
        .rev()
        .map(|u| {
            json!({
                "id": u.id,
                "kind": u.kind,
                "kind_label": kind_label(u.kind),
                "status_label": status_label(u.status),
                "message": u.message,
                "at": times.at(u.created_at),
                // The original words stay; each correction follows with its time and reason.
                "corrections": u.corrections.iter().map(|c| json!({
                    "at": times.at(c.created_at),
                    "message": c.message,
                    "reason": c.reason,
                })).collect::<Vec<_>>(),
                "current": u.current_message(),
            })
        })
        .collect();
    // A maintenance window speaks of its planned times, not of an estimate of a fix; before it
    // starts it has not "begun" and has no impact to speak of.
    let maintenance = i.is_maintenance();
    let mut window = None;
    let (eta, eta_state, next_update, began) = match (maintenance, i.scheduled_for) {
        (true, Some(start)) => {
            let end = i.eta_at.or(i.scheduled_until).unwrap_or(start);
            window = Some(times.span(start, end));
            let state = match (open, i.status) {
                (false, _) => "resolved",
                (true, St::Scheduled) => "planned",
                (true, _) if end > now => "in_progress",
                (true, _) => "overrun",
            };
            let next = i
                .next_update_at
                .filter(|_| open && i.status != St::Scheduled);
            let began = matches!(i.status, St::InProgress | St::Verifying | St::Completed);
            (Some(times.at(end)), state, next, began)
        }
        _ => (eta, eta_state, i.next_update_at.filter(|_| open), true),
    };
    json!({
        "id": i.id,
        "path": format!("/incidents/{}", i.id),
        "title": i.title,
        "impact": i.impact,
        "maintenance": maintenance,
        "status": i.status,
        "status_label": status_label(i.status),
        "open": open,
        "started": times.at(i.started_at),
        "began": began,
        "resolved": i.resolved_at.map(|t| times.at(t)),
        "duration": i.resolved_at.map(|r| crate::domain::text::human_duration(r - i.started_at)),
        "eta": eta,
        "eta_state": eta_state,
        "eta_sentence": eta_sentence,
        "eta_history": eta_history,
        "eta_revisions": eta_revisions,
        "next_update": next_update.map(|t| times.at(t)),
        "window_start": i.scheduled_for.map(|t| times.at(t)),
        "window": window,
        "components": components,
        "latest": updates.first().cloned(),
        "updates": updates,
        "record": super::record::incident_view(s, times),
        "postmortem": s.postmortem.as_ref().map(|p| super::record::postmortem_view(p, config, times)),
    })
}

fn day_view(d: &Day, today: bool) -> Value {
    let level = match d.worst {
        ComponentStatus::Operational => "ok",
        ComponentStatus::UnderMaintenance => "maint",
        ComponentStatus::DegradedPerformance => "minor",
        ComponentStatus::PartialOutage => "partial",
        ComponentStatus::MajorOutage => "major",
    };
    let names: Vec<&str> = d.incidents.iter().map(|(_, t)| t.as_str()).collect();
    // A day names at most three incidents (a bad day of thousands would otherwise weigh the page
    // down twice over: the tooltip and the link's label). Today is not over: say so, and count what has happened so far.
    let so_far = if today { " so far" } else { "" };
    let text = if names.is_empty() {
        "No incidents".to_string()
    } else {
        format!(
            "{}; {} min of impact{so_far}, {}% uptime{so_far}",
            crate::domain::text::names_and_more(&names, 3),
            d.minutes,
            percent(d.uptime)
        )
    };
    let date = human_date(d.date);
    json!({
        "iso": d.date.to_string(),
        "label": if today { format!("Today, {date}") } else { date },
        "level": level,
        "uptime": percent(d.uptime),
        "text": text,
        "first_incident": d.incidents.first().map(|(id, _)| *id),
    })
}

fn cache_control(config: &Config) -> HeaderValue {
    let max_age = config.status_page.max_age.as_secs();
    HeaderValue::from_str(&format!(
        "public, max-age={max_age}, stale-while-revalidate=30, stale-if-error=86400"
    ))
    .expect("valid header")
}

fn html(
    renderer: &Renderer,
    name: &str,
    ctx: Value,
    cc: &HeaderValue,
) -> Result<Asset, RenderError> {
    let body = renderer.render_page(name, ctx)?;
    Ok(Asset::new("text/html; charset=utf-8", body, cc))
}

/// The home page's context.
fn index_context(s: &Snapshot, config: &Config) -> Value {
    let now = s.now;
    let tz = config.site.time_zone;
    let times = Times::live(now, tz);
    let mut groups: Vec<Value> = Vec::new();
    let component_view = |c: &super::snapshot::ComponentView| {
        json!({
            "id": c.id,
            "name": c.name,
            "description": c.description,
            "status": c.status,
            "label": component_label(c.status),
            "uptime": percent(c.uptime),
            "days": c.days.iter().enumerate().map(|(n, d)| day_view(d, n + 1 == c.days.len())).collect::<Vec<_>>(),
            "today_uptime": c.days.last().map(|d| percent(d.uptime)),
        })
    };
    for g in &config.groups {
        let members: Vec<Value> = s
            .components
            .iter()
            .filter(|c| c.group.as_deref() == Some(g.id.as_str()))
            .map(component_view)
            .collect();
        if !members.is_empty() {
            groups.push(json!({ "name": g.name, "components": members }));
        }
    }
    let loose: Vec<Value> = s
        .components
        .iter()
        .filter(|c| c.group.is_none())
        .map(component_view)
        .collect();
    if !loose.is_empty() {
        groups.push(json!({ "name": Value::Null, "components": loose }));
    }
    // Resolved incidents of the last 7 days, by the day they started.
    let week_ago = now - chrono::Duration::days(7);
    let mut by_day: Vec<(NaiveDate, Vec<Value>)> = Vec::new();
    for story in s
        .recent
        .iter()
        .filter(|st| !st.is_open() && st.incident.started_at >= week_ago)
    {
        let date = story.incident.started_at.with_timezone(&tz).date_naive();
        let view = incident_view(story, config, &times);
        match by_day.iter_mut().find(|(d, _)| *d == date) {
            Some((_, list)) => list.push(view),
            None => by_day.push((date, vec![view])),
        }
    }
    let recent: Vec<Value> = by_day
        .into_iter()
        .map(|(d, list)| json!({ "label": human_date(d), "incidents": list }))
        .collect();
    json!({
        "site": public_site(config, now),
        "indicator": s.indicator.as_str(),
        "description": s.indicator.description(),
        "active": s.active.iter().map(|st| incident_view(st, config, &times)).collect::<Vec<_>>(),
        "maintenance": maintenance_views(s, config, &times),
        "groups": groups,
        "recent": recent,
        "history_days": super::snapshot::HISTORY_DAYS,
        "record": super::record::page_view(&s.record),
        "updated": s.updated_at.map(|t| times.at(t)),
        "stale_since": s.stale_since.map(|t| times.at(t)),
        "subscribe": config.email_channel().map(|_| json!({
            "components": config.components.iter().map(|c| json!({ "id": c.id, "name": c.name })).collect::<Vec<_>>(),
        })),
    })
}

/// Windows in progress (first), then upcoming ones, soonest first, for the home page.
fn maintenance_views(s: &Snapshot, config: &Config, times: &Times) -> Vec<Value> {
    let now = times.now;
    use crate::domain::IncidentStatus as St;
    let mut list: Vec<&Story> = s
        .maintenances
        .iter()
        .filter(|w| {
            matches!(
                w.incident.status,
                St::Scheduled | St::InProgress | St::Verifying
            )
        })
        .collect();
    list.sort_by_key(|w| {
        (
            w.incident.status == St::Scheduled,
            w.incident.scheduled_for,
            w.incident.id,
        )
    });
    list.into_iter()
        .map(|w| {
            let i = &w.incident;
            let start = i.scheduled_for.unwrap_or(i.started_at);
            let end = i.eta_at.or(i.scheduled_until).unwrap_or(start);
            let mut v = incident_view(w, config, times);
            v["active"] = json!(i.status != St::Scheduled);
            v["overrun"] = json!(i.status != St::Scheduled && end <= now);
            v["starts"] = json!(times.at(start));
            v["ends"] = json!(times.at(end));
            v["description"] = json!(i.description);
            v
        })
        .collect()
}

/// Renders one incident's page on demand (an older incident): kept until the next change, so
/// every time carries its date.
pub fn incident_page(
    story: &Story,
    config: &Config,
    renderer: &Renderer,
    now: DateTime<Utc>,
    stale_since: Option<DateTime<Utc>>,
) -> Result<Asset, RenderError> {
    let times = Times::kept(now, config.site.time_zone);
    incident_page_with(story, config, renderer, &times, stale_since)
}

fn incident_page_with(
    story: &Story,
    config: &Config,
    renderer: &Renderer,
    times: &Times,
    stale_since: Option<DateTime<Utc>>,
) -> Result<Asset, RenderError> {
    html(
        renderer,
        "status/incident.html",
        incident_context(story, config, times, stale_since),
        &cache_control(config),
    )
}

fn incident_context(
    story: &Story,
    config: &Config,
    times: &Times,
    stale_since: Option<DateTime<Utc>>,
) -> Value {
    json!({
        "site": public_site(config, times.now),
        "incident": incident_view(story, config, times),
        "stale_since": stale_since.map(|t| times.at(t)),
    })
}

/// Renders the history page of the month starting on `month`.
pub fn history_page(
    month: NaiveDate,
    incidents: &[Incident],
    first: Option<DateTime<Utc>>,
    config: &Config,
    renderer: &Renderer,
    now: DateTime<Utc>,
) -> Result<Asset, RenderError> {
    let prev = month
        .checked_sub_months(chrono::Months::new(1))
        .filter(|p| {
            first.is_some_and(|f| {
                let f = f.date_naive();
                (f.year(), f.month()) <= (p.year(), p.month())
            })
        });
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .filter(|n| (n.year(), n.month()) <= (now.year(), now.month()));
    // Kept until the next change: every time carries its date.
    let times = Times::kept(now, config.site.time_zone);
    let list: Vec<Value> = incidents
        .iter()
        .map(|i| {
            json!({
                "path": format!("/incidents/{}", i.id),
                "title": i.title,
                "impact": i.impact,
                "status_label": status_label(i.status),
                "started": times.at(i.started_at),
                "duration": i.resolved_at.map(|r| crate::domain::text::human_duration(r - i.started_at)),
            })
        })
        .collect();
    let ctx = json!({
        "site": public_site(config, now),
        "month_label": month.format("%B %Y").to_string(),
        "incidents": list,
        "prev": prev.map(|p| json!({ "param": p.format("%Y-%m").to_string(), "label": p.format("%B %Y").to_string() })),
        "next": next.map(|n| json!({ "param": n.format("%Y-%m").to_string(), "label": n.format("%B %Y").to_string() })),
    });
    html(renderer, "status/history.html", ctx, &cache_control(config))
}

/// A friendly HTML error page (404 and the like).
pub fn error_page(
    config: &Config,
    renderer: &Renderer,
    title: &str,
    message: &str,
) -> Result<String, RenderError> {
    renderer.render_page(
        "status/error.html",
        json!({ "site": site_view(config), "title": title, "message": message }),
    )
}

/// A subscription page: a message and, when `action` is given, one button that POSTs there.
pub fn subscribe_page(
    config: &Config,
    renderer: &Renderer,
    title: &str,
    message: &str,
    action: Option<(&str, &str)>,
) -> Result<String, RenderError> {
    renderer.render_page(
        "subscribe/page.html",
        json!({
            "site": site_view(config),
            "title": title,
            "message": message,
            "action": action.map(|a| a.0),
            "button": action.map(|a| a.1),
        }),
    )
}

/// Renders everything served from the cache for this snapshot. A document whose bytes are
/// those of `previous`'s is kept as it was (its compressed encodings and ETag with it), so a
/// change costs the compression of what it changed only.
pub fn build(
    snapshot: Snapshot,
    config: &Config,
    renderer: &Renderer,
    built_at: DateTime<Utc>,
    previous: Option<&Pages>,
) -> Result<Pages, RenderError> {
    let cc = cache_control(config);
    let times = Times::live(snapshot.now, config.site.time_zone);
    let mut assets: HashMap<String, Arc<Asset>> = HashMap::new();
    // Incident pages (thousands with a long window) are compressed when first asked for; the
    // rest, which everyone refreshes after a change, now.
    let mut put = |path: String, content_type: &'static str, body: Vec<u8>| {
        let make = if path.starts_with("/incidents/") {
            Asset::lazy
        } else {
            Asset::new
        };
        let kept = previous
            .and_then(|p| p.assets.get(&path))
            .filter(|a| {
                a.identity == body && a.content_type == content_type && a.cache_control == cc
            })
            .cloned();
        let asset = kept.unwrap_or_else(|| Arc::new(make(content_type, body, &cc)));
        assets.insert(path, asset);
    };
    const HTML: &str = "text/html; charset=utf-8";
    let index = renderer.render_page("status/index.html", index_context(&snapshot, config))?;
    put("/".into(), HTML, index.into_bytes());
    // A closed incident's page depends only on its story, the day (its times say "today") and
    // the stale banner: with all three as they were, the previous page is kept unrendered.
    let same_day = previous.is_some_and(|p| {
        let (a, b) = (p.snapshot.now, snapshot.now);
        let tz = config.site.time_zone;
        a.date_naive() == b.date_naive()
            && a.with_timezone(&tz).date_naive() == b.with_timezone(&tz).date_naive()
            && p.snapshot.stale_since == snapshot.stale_since
    });
    let before: HashMap<i64, &Story> = match previous {
        Some(p) if same_day => (p.snapshot.recent.iter())
            .map(|s| (s.incident.id, s))
            .collect(),
        _ => HashMap::new(),
    };
    let mut unchanged = Vec::new();
    for story in &snapshot.recent {
        let path = format!("/incidents/{}", story.incident.id);
        let kept = before
            .get(&story.incident.id)
            .filter(|old| !story.is_open() && **old == story)
            .and_then(|_| previous?.assets.get(&path))
            .filter(|a| a.cache_control == cc);
        if let Some(asset) = kept {
            unchanged.push((path, asset.clone()));
            continue;
        }
        let page = renderer.render_page(
            "status/incident.html",
            incident_context(story, config, &times, snapshot.stale_since),
        )?;
        put(path, HTML, page.into_bytes());
    }
    put(
        "/feed.atom".into(),
        "application/atom+xml; charset=utf-8",
        feeds::atom(&snapshot, config).into(),
    );
    put(
        "/feed.rss".into(),
        "application/rss+xml; charset=utf-8",
        feeds::rss(&snapshot, config).into(),
    );
    put(
        super::ics::PATH.into(),
        "text/calendar; charset=utf-8",
        super::ics::calendar(&snapshot, config).into(),
    );
    for (path, doc) in v2::documents(&snapshot, config) {
        let body = serde_json::to_vec(&doc).expect("JSON values serialise");
        put(path.to_string(), "application/json", body);
    }
    assets.extend(unchanged);
    Ok(Pages {
        snapshot: Arc::new(snapshot),
        assets,
        built_at,
    })
}
