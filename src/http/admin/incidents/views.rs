//! What the incident templates get: the incident page (with its updates, deliveries and
//! estimate revisions) and the declare page (with every channel's preview), and the pieces the
//! maintenance pages share (updates with their deliveries).

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::forms::{Draft, COMPONENT_STATUSES, IMPACTS, STATUSES};
use super::preview::previews;
use crate::app::App;
use crate::commands;
use crate::domain::ComponentStatus;
use crate::http::admin::error::{ConsoleError, Missing};
use crate::http::admin::session::Signed;
use crate::http::admin::{base, render};
use crate::render::views;
use crate::store::{deliveries, incidents, updates, StoreError};

/// One delivery as the console shows it; an email delivery says how many subscribers it
/// reached.
pub async fn delivery_view(
    app: &App,
    conn: &mut crate::store::Conn,
    d: &deliveries::Delivery,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let reach = match app.config.email_channel() {
        Some((email_id, _)) if email_id == d.channel => {
            Some(crate::store::subscribers::reach(conn, d.id).await?)
        }
        _ => None,
    };
    Ok(json!({
        "id": d.id, "channel": d.channel, "state": d.state, "attempts": d.attempts,
        "delivered": d.delivered_at.map(|t| views::time(t, now, app.config.site.time_zone)),
        "remote_url": crate::http::security::safe_link(d.remote_url.as_deref()), "error": d.last_error,
        "dead": d.state == crate::domain::DeliveryState::Dead,
        "reach": reach,
    }))
}

/// An incident's or window's updates, newest first, each with its deliveries.
pub async fn updates_view(
    app: &App,
    conn: &mut crate::store::Conn,
    ups: &[updates::Update],
    dels: &[deliveries::Delivery],
    now: DateTime<Utc>,
) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    for u in ups.iter().rev() {
        let mut mine = Vec::new();
        for d in dels.iter().filter(|d| d.update_id == Some(u.id)) {
            mine.push(delivery_view(app, conn, d, now).await?);
        }
        out.push(json!({
            "id": u.id, "kind": u.kind, "status": u.status, "message": u.message,
            "author": u.author, "at": views::time(u.created_at, now, app.config.site.time_zone),
            "eta": u.eta_at.map(|t| views::time(t, now, app.config.site.time_zone)), "deliveries": mine,
            "current": u.current_message(), "correctable": u.kind != crate::domain::UpdateKind::Notice,
            "corrections": u.corrections.iter().map(|c| json!({
                "at": views::time(c.created_at, now, app.config.site.time_zone),
                "message": c.message, "reason": c.reason, "author": c.author,
                "meaning_changed": c.meaning_changed,
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(out)
}

/// The form's fields and choices, as the declare and incident templates take them.
pub fn form_context(app: &App, draft: &Draft) -> Value {
    let components: Vec<Value> = app
        .config
        .components
        .iter()
        .map(|c| {
            json!({ "id": c.id, "name": c.name,
                    "selected": draft.components.get(&c.id).cloned().unwrap_or_default() })
        })
        .collect();
    json!({
        "draft": draft,
        "components": components,
        "impacts": IMPACTS,
        "statuses": STATUSES,
        "component_statuses": COMPONENT_STATUSES.iter().map(|s| json!({
            "id": s,
            "label": s.parse::<ComponentStatus>().map(views::component_label).unwrap_or(s),
        })).collect::<Vec<_>>(),
    })
}

/// The declare form, with every channel's preview of it and the calibration figures.
pub async fn declare_page(
    app: &App,
    signed: &Signed,
    status: StatusCode,
    draft: &Draft,
    error: Option<String>,
    show_preview: bool,
) -> Result<Response, ConsoleError> {
    let (previews, est, warnings) = previews(app, draft).await?;
    let mut ctx = base(app, Some(&signed.operator), &signed.csrf);
    ctx.insert("form".into(), form_context(app, draft));
    ctx.insert("previews".into(), json!(previews));
    ctx.insert("show_preview".into(), json!(show_preview));
    ctx.insert("estimates".into(), json!(est));
    ctx.insert("warnings".into(), json!(warnings));
    ctx.insert("error".into(), json!(error));
    ctx.insert(
        "templates".into(),
        json!(app
            .config
            .console
            .templates
            .iter()
            .map(|t| json!({ "id": t.id, "name": t.name }))
            .collect::<Vec<_>>()),
    );
    Ok(render(app, status, "admin/declare.html", ctx))
}

/// What the incident page says above its forms.
pub enum Notice {
    None,
    Error(String),
    /// Someone else changed the incident after this form was loaded.
    Stale,
}

/// One incident's page: its state, updates with their deliveries, estimate revisions, and the
/// update form (a refused form comes back with its words, on the current version).
pub async fn incident_page(
    app: &App,
    signed: &Signed,
    id: i64,
    status: StatusCode,
    notice: Notice,
    draft: Option<&Draft>,
) -> Result<Response, ConsoleError> {
    let now = app.clock.now();
    let loaded = async {
        let mut conn = app.db.pool().acquire().await?;
        let Some(inc) = incidents::get(&mut conn, id).await? else {
            return Ok(None);
        };
        let comps = incidents::components(&mut conn, id).await?;
        let ups = updates::for_incident(&mut conn, id).await?;
        let dels = deliveries::for_incident(&mut conn, id).await?;
        let revs = incidents::eta_revisions(&mut conn, id).await?;
        let ups = updates_view(app, &mut conn, &ups, &dels, now).await?;
        let pm = crate::store::postmortems::get(&mut conn, id).await?;
        Ok::<_, StoreError>(Some((inc, comps, ups, revs, pm)))
    }
    .await;
    let (inc, comps, updates_view, revs, pm) =
        loaded?.ok_or(ConsoleError::NotFound(Missing::Incident))?;
    let latest = updates_view.first().cloned();
    let mut form_draft = draft.cloned().unwrap_or_default();
    // A refused form is shown again on the current version, with its words kept.
    form_draft.version = Some(inc.version);
    if form_draft.eta_mode.is_empty() {
        form_draft.eta_mode = "keep".into();
    }
    let mut ctx = base(app, Some(&signed.operator), &signed.csrf);
    ctx.insert("incident".into(), json!({
        "id": inc.id, "title": inc.title, "impact": inc.impact, "status": inc.status,
        "owner": inc.owner, "open": inc.is_open(), "version": inc.version,
        "started": views::time(inc.started_at, now, app.config.site.time_zone),
        "resolved": inc.resolved_at.map(|t| views::time(t, now, app.config.site.time_zone)),
        "eta": inc.eta_at.map(|t| views::time(t, now, app.config.site.time_zone)),
        "eta_passed": inc.eta_at.is_some_and(|t| t <= now) && inc.is_open(),
        "next_update": inc.next_update_at.filter(|_| inc.is_open()).map(|t| views::time(t, now, app.config.site.time_zone)),
        "update_overdue": inc.is_open() && inc.next_update_at.is_some_and(|t| t <= now),
        "components": comps.iter().map(|(id, s)| json!({
            "id": id, "status": s, "label": views::component_label(*s),
            "name": app.config.component_name(id),
        })).collect::<Vec<_>>(),
        "public_url": commands::incident_url(&app.config, inc.id),
    }));
    ctx.insert("updates".into(), json!(updates_view));
    ctx.insert("revisions".into(), json!(revs.iter().map(|r| json!({
        "old": r.old_eta.map(|t| views::time(t, now, app.config.site.time_zone)), "new": r.new_eta.map(|t| views::time(t, now, app.config.site.time_zone)),
        "actor": r.actor, "reason": r.reason, "at": views::time(r.created_at, now, app.config.site.time_zone),
    })).collect::<Vec<_>>()));
    ctx.insert("form".into(), form_context(app, &form_draft));
    // The postmortem: its draft, the preview as the public page will show it, its actions.
    let times = crate::render::views::Times::live(now, app.config.site.time_zone);
    ctx.insert(
        "postmortem".into(),
        json!(pm.as_ref().map(|p| {
            let mut v = crate::status_page::record::postmortem_view(p, &app.config, &times);
            v["body"] = json!(p.body);
            v["author"] = json!(crate::render::views::actor_name(&p.author));
            v["action_ids"] = json!(p
                .actions
                .iter()
                .map(|a| json!({ "id": a.id, "done": a.done_at.is_some() }))
                .collect::<Vec<_>>());
            v
        })),
    );
    let (error, stale) = match notice {
        Notice::None => (None, None),
        Notice::Error(e) => (Some(e), None),
        Notice::Stale => (None, latest),
    };
    ctx.insert("error".into(), json!(error));
    ctx.insert("stale".into(), json!(stale));
    Ok(render(app, status, "admin/incident.html", ctx))
}
