//! The public HTML pages, rendered from a [`Snapshot`] with the templates under
//! `templates/status/`. Times are written in UTC inside `<time datetime>` elements; a few lines of
//! script show them in the reader's zone where scripts run.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderValue;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::cache::{Asset, Pages};
use super::snapshot::{status_label, Snapshot, Story};
use super::{feeds, v2, RenderError, Renderer};
use crate::config::Config;
use crate::domain::status::Day;
use crate::domain::{ComponentStatus, UpdateKind};
use crate::store::incidents::Incident;

/// A time as the templates show it.
#[derive(Debug, Clone, Serialize)]
pub struct TimeView {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// "14:30 UTC" on the snapshot's day, else "24 Nov 2026, 14:30 UTC".
    pub text: String,
    /// Always with the date: "24 Nov 2026, 14:30 UTC".
    pub long: String,
}

pub fn time(t: DateTime<Utc>, now: DateTime<Utc>) -> TimeView {
    let long = t.format("%-d %b %Y, %H:%M UTC").to_string();
    TimeView {
        iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        text: if t.date_naive() == now.date_naive() {
            t.format("%H:%M UTC").to_string()
        } else {
            long.clone()
        },
        long,
    }
}

pub fn component_label(s: ComponentStatus) -> &'static str {
    match s {
        ComponentStatus::Operational => "Operational",
        ComponentStatus::DegradedPerformance => "Degraded performance",
        ComponentStatus::PartialOutage => "Partial outage",
        ComponentStatus::MajorOutage => "Major outage",
        ComponentStatus::UnderMaintenance => "Under maintenance",
    }
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

fn incident_view(s: &Story, config: &Config, now: DateTime<Utc>) -> Value {
    let i = &s.incident;
    let open = i.is_open();
    let eta = i.eta_at.map(|t| time(t, now));
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
            Some(json!({ "first": time(first, now), "revised": count_words(n) }))
        }
        _ => None,
    };
    // Every move of the estimate, oldest first, with the reason the team gave.
    let eta_revisions: Vec<Value> = s
        .eta_revisions
        .iter()
        .map(|r| {
            json!({
                "at": time(r.created_at, now),
                "old": r.old_eta.map(|t| time(t, now)),
                "new": r.new_eta.map(|t| time(t, now)),
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
                "at": time(u.created_at, now),
            })
        })
        .collect();
    // A maintenance window speaks of its planned times, not of an estimate of a fix.
    let (eta, eta_state, next_update) = match (i.is_maintenance(), i.scheduled_for) {
        (true, Some(start)) => {
            let end = i.eta_at.or(i.scheduled_until).unwrap_or(start);
            let state = match (open, i.status == crate::domain::IncidentStatus::Scheduled) {
                (false, _) => "resolved",
                (true, true) => "planned",
                (true, false) if end > now => "planned",
                (true, false) => "overrun",
            };
            let next = i
                .next_update_at
                .filter(|_| open && i.status != crate::domain::IncidentStatus::Scheduled);
            (Some(time(end, now)), state, next)
        }
        _ => (eta, eta_state, i.next_update_at.filter(|_| open)),
    };
    json!({
        "id": i.id,
        "path": format!("/incidents/{}", i.id),
        "title": i.title,
        "impact": i.impact,
        "status": i.status,
        "status_label": status_label(i.status),
        "open": open,
        "started": time(i.started_at, now),
        "resolved": i.resolved_at.map(|t| time(t, now)),
        "duration": i.resolved_at.map(|r| crate::domain::text::human_duration(r - i.started_at)),
        "eta": eta,
        "eta_state": eta_state,
        "eta_sentence": eta_sentence,
        "eta_history": eta_history,
        "eta_revisions": eta_revisions,
        "next_update": next_update.map(|t| time(t, now)),
        "window_start": i.scheduled_for.map(|t| time(t, now)),
        "components": components,
        "latest": updates.first().cloned(),
        "updates": updates,
    })
}

fn day_view(d: &Day) -> Value {
    let level = match d.worst {
        ComponentStatus::Operational => "ok",
        ComponentStatus::UnderMaintenance => "maint",
        ComponentStatus::DegradedPerformance => "minor",
        ComponentStatus::PartialOutage => "partial",
        ComponentStatus::MajorOutage => "major",
    };
    let names: Vec<&str> = d.incidents.iter().map(|(_, t)| t.as_str()).collect();
    let text = if names.is_empty() {
        "No incidents".to_string()
    } else {
        format!("{}; {} min of impact", names.join(", "), d.minutes)
    };
    json!({
        "iso": d.date.to_string(),
        "label": d.date.format("%-d %b %Y").to_string(),
        "level": level,
        "text": text,
        "first_incident": d.incidents.first().map(|(id, _)| *id),
    })
}

/// What every page's layout needs.
pub fn site_view(config: &Config) -> Value {
    let s = &config.site;
    let contact = s.support_contact.trim();
    let href = if contact.contains('@') && !contact.contains("://") {
        format!("mailto:{contact}")
    } else {
        contact.to_string()
    };
    json!({
        "name": s.name,
        "url": s.public_url.as_str(),
        "logo_url": s.logo_url,
        "support_contact": contact,
        "support_href": href,
        "accent": s.colours.accent,
        "on_accent": s.colours.on_accent,
        "footer_links": s.footer_links.iter().map(|l| json!({ "label": l.label, "url": l.url })).collect::<Vec<_>>(),
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
    let mut groups: Vec<Value> = Vec::new();
    let component_view = |c: &super::snapshot::ComponentView| {
        json!({
            "id": c.id,
            "name": c.name,
            "description": c.description,
            "status": c.status,
            "label": component_label(c.status),
            "uptime": format!("{:.2}", c.uptime),
            "days": c.days.iter().map(day_view).collect::<Vec<_>>(),
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
        let date = story.incident.started_at.date_naive();
        let view = incident_view(story, config, now);
        match by_day.iter_mut().find(|(d, _)| *d == date) {
            Some((_, list)) => list.push(view),
            None => by_day.push((date, vec![view])),
        }
    }
    let recent: Vec<Value> = by_day
        .into_iter()
        .map(|(d, list)| json!({ "label": d.format("%-d %b %Y").to_string(), "incidents": list }))
        .collect();
    json!({
        "site": site_view(config),
        "indicator": s.indicator.as_str(),
        "description": s.indicator.description(),
        "active": s.active.iter().map(|st| incident_view(st, config, now)).collect::<Vec<_>>(),
        "maintenance": maintenance_views(s, config, now),
        "groups": groups,
        "recent": recent,
        "history_days": super::snapshot::HISTORY_DAYS,
        "updated": s.updated_at.map(|t| time(t, now)),
        "stale_since": s.stale_since.map(|t| time(t, now)),
        "subscribe": config.email_channel().map(|_| json!({
            "components": config.components.iter().map(|c| json!({ "id": c.id, "name": c.name })).collect::<Vec<_>>(),
        })),
    })
}

/// Windows in progress (first), then upcoming ones, soonest first, for the home page.
fn maintenance_views(s: &Snapshot, config: &Config, now: DateTime<Utc>) -> Vec<Value> {
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
            let mut v = incident_view(w, config, now);
            v["active"] = json!(i.status != St::Scheduled);
            v["overrun"] = json!(i.status != St::Scheduled && end <= now);
            v["starts"] = json!(time(start, now));
            v["ends"] = json!(time(end, now));
            v["description"] = json!(i.description);
            v
        })
        .collect()
}

/// Renders one incident's page.
pub fn incident_page(
    story: &Story,
    config: &Config,
    renderer: &Renderer,
    now: DateTime<Utc>,
    stale_since: Option<DateTime<Utc>>,
) -> Result<Asset, RenderError> {
    let ctx = json!({
        "site": site_view(config),
        "incident": incident_view(story, config, now),
        "stale_since": stale_since.map(|t| time(t, now)),
    });
    html(
        renderer,
        "status/incident.html",
        ctx,
        &cache_control(config),
    )
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
    let list: Vec<Value> = incidents
        .iter()
        .map(|i| {
            json!({
                "path": format!("/incidents/{}", i.id),
                "title": i.title,
                "impact": i.impact,
                "status_label": status_label(i.status),
                "started": time(i.started_at, now),
                "duration": i.resolved_at.map(|r| crate::domain::text::human_duration(r - i.started_at)),
            })
        })
        .collect();
    let ctx = json!({
        "site": site_view(config),
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

/// Renders everything served from the cache for this snapshot.
pub fn build(
    snapshot: Snapshot,
    config: &Config,
    renderer: &Renderer,
    built_at: DateTime<Utc>,
) -> Result<Pages, RenderError> {
    let cc = cache_control(config);
    let mut assets: HashMap<String, Arc<Asset>> = HashMap::new();
    let index = html(
        renderer,
        "status/index.html",
        index_context(&snapshot, config),
        &cc,
    )?;
    assets.insert("/".into(), Arc::new(index));
    for story in &snapshot.recent {
        let page = incident_page(story, config, renderer, snapshot.now, snapshot.stale_since)?;
        assets.insert(format!("/incidents/{}", story.incident.id), Arc::new(page));
    }
    assets.insert(
        "/feed.atom".into(),
        Arc::new(Asset::new(
            "application/atom+xml; charset=utf-8",
            feeds::atom(&snapshot, config),
            &cc,
        )),
    );
    assets.insert(
        "/feed.rss".into(),
        Arc::new(Asset::new(
            "application/rss+xml; charset=utf-8",
            feeds::rss(&snapshot, config),
            &cc,
        )),
    );
    assets.insert(
        super::ics::PATH.into(),
        Arc::new(Asset::new(
            "text/calendar; charset=utf-8",
            super::ics::calendar(&snapshot, config),
            &cc,
        )),
    );
    for (path, doc) in v2::documents(&snapshot, config) {
        let body = serde_json::to_vec(&doc).expect("JSON values serialise");
        assets.insert(
            path.to_string(),
            Arc::new(Asset::new("application/json", body, &cc)),
        );
    }
    Ok(Pages {
        snapshot: Arc::new(snapshot),
        assets,
        built_at,
    })
}

/// A JSON Schema as a short phrase for people: `string (date-time) or null`, `array of Delivery`.
fn schema_phrase(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            return alts
                .iter()
                .map(schema_phrase)
                .collect::<Vec<_>>()
                .join(" or ");
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        return all
            .iter()
            .map(schema_phrase)
            .collect::<Vec<_>>()
            .join(" and ");
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect();
        return format!("one of: {}", names.join(", "));
    }
    let types: Vec<String> = match s.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    let mut parts = Vec::new();
    for t in types {
        parts.push(match t.as_str() {
            "array" => format!(
                "array of {}",
                s.get("items")
                    .map(schema_phrase)
                    .unwrap_or_else(|| "anything".into())
            ),
            "object" => match s.get("additionalProperties") {
                Some(v) if v.is_object() => format!("map of names to {}", schema_phrase(v)),
                _ => "object".into(),
            },
            other => match s.get("format").and_then(Value::as_str) {
                Some(f) => format!("{other} ({f})"),
                None => other.to_string(),
            },
        });
    }
    if parts.is_empty() {
        "anything".into()
    } else {
        parts.join(" or ")
    }
}

/// An object schema's fields as table rows (following `allOf` into the schemas it names).
fn schema_rows(s: &Value, schemas: &Value) -> Vec<Value> {
    let mut rows = Vec::new();
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for part in all {
            let resolved = match part.get("$ref").and_then(Value::as_str) {
                Some(r) => schemas
                    .get(r.rsplit('/').next().unwrap_or(r))
                    .cloned()
                    .unwrap_or(Value::Null),
                None => part.clone(),
            };
            rows.extend(schema_rows(&resolved, schemas));
        }
    }
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (name, p) in props {
            rows.push(json!({
                "name": name,
                "type": schema_phrase(p),
                "required": required.contains(&name.as_str()),
                "description": p.get("description").and_then(Value::as_str).unwrap_or(""),
                "default": p.get("default"),
            }));
        }
    }
    rows
}

/// The v1 API reference page, from the OpenAPI document.
pub fn api_docs_page(
    config: &Config,
    renderer: &Renderer,
    doc: &Value,
) -> Result<String, RenderError> {
    let schemas = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or(Value::Null);
    let first_line = |op: &Value, key: &str| -> String {
        op.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut tags: Vec<Value> = doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| json!({ "name": t["name"], "description": t["description"], "operations": [] }))
                .collect()
        })
        .unwrap_or_default();
    let paths = doc.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            let params: Vec<Value> = op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    json!({
                        "name": p["name"],
                        "in": p["in"],
                        "required": p.get("required").and_then(Value::as_bool).unwrap_or(false),
                        "type": p.get("schema").map(schema_phrase).unwrap_or_default(),
                        "description": p.get("description").and_then(Value::as_str).unwrap_or(""),
                    })
                })
                .collect();
            let body = op
                .pointer("/requestBody/content/application~1json/schema")
                .map(|s| {
                    let resolved = match s.get("$ref").and_then(Value::as_str) {
                        Some(r) => schemas
                            .get(r.rsplit('/').next().unwrap_or(r))
                            .cloned()
                            .unwrap_or(Value::Null),
                        None => s.clone(),
                    };
                    json!({
                        "type": schema_phrase(s),
                        "description": resolved.get("description"),
                        "rows": schema_rows(&resolved, &schemas),
                    })
                });
            let responses: Vec<Value> = op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(status, r)| {
                    let content = r.get("content").and_then(Value::as_object);
                    let (media, schema) = content
                        .and_then(|c| c.iter().next())
                        .map(|(m, c)| (m.clone(), c.get("schema").map(schema_phrase)))
                        .unwrap_or_default();
                    json!({
                        "status": status,
                        "description": r.get("description").and_then(Value::as_str).unwrap_or(""),
                        "media": media,
                        "schema": schema,
                    })
                })
                .collect();
            let tag = op
                .pointer("/tags/0")
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string();
            let entry = json!({
                "id": format!("{}-{}", method, path.trim_matches('/').replace(['/', '{', '}'], "-")),
                "method": method.to_uppercase(),
                "path": path,
                "summary": first_line(op, "summary"),
                "description": first_line(op, "description"),
                "auth": op.get("security").is_some(),
                "params": params,
                "body": body,
                "responses": responses,
            });
            match tags.iter_mut().find(|t| t["name"] == tag.as_str()) {
                Some(t) => t["operations"].as_array_mut().expect("array").push(entry),
                None => tags.push(json!({ "name": tag, "description": "", "operations": [entry] })),
            }
        }
    }
    let schema_list: Vec<Value> = schemas
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, s)| {
            json!({
                "name": name,
                "description": s.get("description").and_then(Value::as_str).unwrap_or(""),
                "type": schema_phrase(s),
                "rows": schema_rows(s, &schemas),
            })
        })
        .collect();
    renderer.render_page(
        "api/docs.html",
        json!({
            "site": site_view(config),
            "info": doc.get("info"),
            "version": doc.get("openapi"),
            "tags": tags,
            "schemas": schema_list,
        }),
    )
}
