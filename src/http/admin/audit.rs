//! `/admin/audit`: who did what and when, from the console, the API, the command line and the
//! scheduler alike. Newest first, a page at a time, filtered by who, what and which incident,
//! and exported as CSV or JSON with the same filters.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ConsoleError;
use super::session::Signed;
use super::{base, render};
use crate::app::App;
use crate::render::views;
use crate::store::audit::{self, AuditEntry, Filter};

/// Entries per page.
const PAGE: i64 = 100;
/// The most entries one export holds (narrow it with the filters for more).
const EXPORT_MAX: i64 = 50_000;

/// The page's query string. Empty fields (an untouched filter) mean "any".
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    incident: Option<String>,
    before: Option<String>,
}

impl AuditQuery {
    fn filter(&self) -> Result<Filter, ConsoleError> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let number = |v: &Option<String>, label: &str| -> Result<Option<i64>, ConsoleError> {
            given(v)
                .map(|s| {
                    s.trim_start_matches('#').parse::<i64>().map_err(|_| {
                        ConsoleError::bad_request(format!(
                            "{label}: “{}” is not a number.",
                            crate::channels::truncate(&s, 40)
                        ))
                    })
                })
                .transpose()
        };
        Ok(Filter {
            actor: given(&self.actor),
            action: given(&self.action),
            incident_id: number(&self.incident, "Incident")?,
            before: number(&self.before, "Page")?,
        })
    }
}

fn query_string(f: &Filter, before: Option<i64>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(a) = &f.actor {
        q.append_pair("actor", a);
    }
    if let Some(a) = &f.action {
        q.append_pair("action", a);
    }
    if let Some(i) = f.incident_id {
        q.append_pair("incident", &i.to_string());
    }
    if let Some(b) = before {
        q.append_pair("before", &b.to_string());
    }
    q.finish()
}

/// A detail value as people read it: a time in the site's zone with its day, a list joined
/// with commas, a map as `key: value` pairs (`api: major outage`), `none` for nothing.
fn text(v: &Value, now: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    match v {
        Value::String(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => views::time(t.with_timezone(&Utc), now, zone).long,
            Err(_) => s.clone(),
        },
        Value::Null => "none".into(),
        Value::Array(items) if items.is_empty() => "none".into(),
        Value::Array(items) => items
            .iter()
            .map(|i| text(i, now, zone))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(m) if m.is_empty() => "none".into(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}: {}", text(v, now, zone).replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The entry's details as (label, text) pairs: `old_eta` → "old eta".
fn details(detail: &Value, now: DateTime<Utc>, zone: chrono_tz::Tz) -> Vec<(String, String)> {
    match detail {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.replace('_', " "), text(v, now, zone)))
            .collect(),
        Value::Null => Vec::new(),
        other => vec![("detail".into(), other.to_string())],
    }
}

pub async fn page(
    State(app): State<App>,
    signed: Signed,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let filter = q.filter()?;
    let mut conn = app
        .db
        .pool()
        .acquire()
        .await
        .map_err(crate::store::StoreError::from)?;
    let entries = audit::query(&mut conn, &filter, PAGE).await?;
    let (actors, actions) = audit::choices(&mut conn, 500).await?;
    drop(conn);
    let now = app.clock.now();
    let zone = app.config.site.time_zone;
    let next = (entries.len() as i64 == PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "actor": e.actor, "who": views::actor_name(&e.actor),
                "action": e.action, "incident_id": e.incident_id,
                "details": details(&e.detail, now, zone).into_iter().map(|(k, v)| json!({ "label": k, "text": v })).collect::<Vec<_>>(),
                "at": views::time(e.created_at, now, zone),
            })
        })
        .collect();
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    ctx.insert("entries".into(), json!(rows));
    ctx.insert(
        "actors".into(),
        json!(actors
            .iter()
            .map(|a| json!({ "value": a, "name": views::actor_name(a) }))
            .collect::<Vec<_>>()),
    );
    ctx.insert("actions".into(), json!(actions));
    ctx.insert(
        "filter".into(),
        json!({ "actor": filter.actor, "action": filter.action, "incident": filter.incident_id }),
    );
    ctx.insert(
        "filtered".into(),
        json!(
            filter
                != Filter {
                    before: filter.before,
                    ..Filter::default()
                }
        ),
    );
    ctx.insert(
        "next".into(),
        json!(next.map(|n| query_string(&filter, Some(n)))),
    );
    ctx.insert("paged".into(), json!(filter.before.is_some()));
    ctx.insert("first".into(), json!(query_string(&filter, None)));
    Ok(render(&app, StatusCode::OK, "admin/audit.html", ctx))
}

/// Neutralises a cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR).
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

async fn export_entries(app: &App, q: &AuditQuery) -> Result<Vec<AuditEntry>, ConsoleError> {
    let filter = q.filter()?;
    let mut conn = app
        .db
        .pool()
        .acquire()
        .await
        .map_err(crate::store::StoreError::from)?;
    Ok(audit::query(&mut conn, &filter, EXPORT_MAX).await?)
}

fn download(body: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `GET /admin/audit.csv`: the filtered log, newest first, one row per entry (`id, time (UTC,
/// RFC 3339), actor, who, action, incident, detail` with detail as JSON).
pub async fn export_csv(
    State(app): State<App>,
    _signed: Signed,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let entries = export_entries(&app, &q).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let write = |w: &mut csv::Writer<Vec<u8>>, row: [String; 7]| {
        w.write_record(row)
            .map_err(|e| ConsoleError::Internal(e.to_string()))
    };
    write(
        &mut w,
        ["id", "time", "actor", "who", "action", "incident", "detail"].map(String::from),
    )?;
    for e in &entries {
        write(
            &mut w,
            [
                e.id.to_string(),
                e.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                cell(&e.actor),
                cell(&views::actor_name(&e.actor)),
                cell(&e.action),
                e.incident_id.map(|i| i.to_string()).unwrap_or_default(),
                cell(&e.detail.to_string()),
            ],
        )?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    Ok(download(
        body,
        "text/csv; charset=utf-8",
        "candor-audit.csv",
    ))
}

/// `GET /admin/audit.json`: the same as an array of objects.
pub async fn export_json(
    State(app): State<App>,
    _signed: Signed,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let entries = export_entries(&app, &q).await?;
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "time": e.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "actor": e.actor, "who": views::actor_name(&e.actor), "action": e.action,
                "incident_id": e.incident_id, "detail": e.detail,
            })
        })
        .collect();
    let body =
        serde_json::to_vec_pretty(&rows).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    Ok(download(body, "application/json", "candor-audit.json"))
}
