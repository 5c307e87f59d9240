//! `/admin/subscribers`: how many email subscribers there are (confirmed by component), a page
//! of them at a time, remove one, send a pending one the confirmation again (both commands of
//! `commands::subscribers`). Addresses are shown in full here, to signed-in operators only,
//! and never logged.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::error::{ConsoleError, SubscriberId};
use super::session::Signed;
use super::{base, flash, render, see_other};
use crate::app::App;
use crate::commands::subscribers::{self as command, SubscriberError};
use crate::render::views;
use crate::store::{subscribers, StoreError};

/// Subscribers per page.
const PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    after: Option<i64>,
}

/// `GET /admin/subscribers?after=ID`
pub async fn page(
    State(app): State<App>,
    signed: Signed,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    let Some((channel, _)) = app.config.email_channel() else {
        ctx.insert("channel".into(), json!(null));
        return Ok(render(&app, StatusCode::OK, "admin/subscribers.html", ctx));
    };
    ctx.insert("channel".into(), json!(channel));
    let q = query.map(|Query(q)| q).unwrap_or(PageQuery { after: None });
    let after = q.after.unwrap_or(0).max(0);
    let ids: Vec<&str> = app
        .config
        .components
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
    let counts = subscribers::counts(&mut conn, &ids).await?;
    let rows = subscribers::list(&mut conn, after, PAGE).await?;
    drop(conn);
    let now = app.clock.now();
    let name_of = |id: &str| app.config.component_name(id);
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id));
    let list: Vec<_> = rows
        .iter()
        .map(|s| {
            let state = if s.unsubscribed_at.is_some() {
                "unsubscribed"
            } else if s.confirmed_at.is_some() {
                "confirmed"
            } else {
                "pending"
            };
            json!({
                "id": s.id, "email": s.email, "state": state,
                "components": s.components.as_ref().map(|c| c.iter().map(|id| name_of(id)).collect::<Vec<_>>()),
                "since": views::time(s.created_at, now, app.config.site.time_zone),
            })
        })
        .collect();
    ctx.insert(
        "counts".into(),
        json!({
            "confirmed": counts.confirmed, "pending": counts.pending,
            "unsubscribed": counts.unsubscribed, "all_components": counts.all_components,
            "by_component": app.config.components.iter().map(|c| json!({
                "name": c.name, "count": counts.by_component.get(&c.id).copied().unwrap_or(0),
            })).collect::<Vec<_>>(),
        }),
    );
    ctx.insert("subscribers".into(), json!(list));
    ctx.insert("next".into(), json!(next.flatten()));
    ctx.insert("paged".into(), json!(after > 0));
    Ok(render(&app, StatusCode::OK, "admin/subscribers.html", ctx))
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    confirm: Option<String>,
}

/// `POST /admin/subscribers/{id}/remove`: for good, only with the confirmation box ticked;
/// audited.
pub async fn remove(
    State(app): State<App>,
    signed: Signed,
    SubscriberId(id): SubscriberId,
    axum::Form(f): axum::Form<RemoveForm>,
) -> Result<Response, ConsoleError> {
    if app.email.is_none() {
        return Err(SubscriberError::NoEmailChannel.into());
    }
    super::ticked(
        f.confirm.as_deref(),
        "Tick “Yes, remove for good” to remove a subscriber; they would have to subscribe and confirm again.",
    )?;
    let mut unit = app.begin().await?;
    command::remove(&app.env(), unit.tx(), &signed.actor(), id, app.clock.now()).await?;
    unit.commit().await?;
    flash(&signed.session, "The subscriber was removed.").await;
    Ok(see_other("/admin/subscribers"))
}

/// `POST /admin/subscribers/{id}/resend`: a pending subscriber is sent a new confirmation mail
/// (queued in the outbox, retried until the mail server takes it; its link replaces the old
/// one once sent); audited.
pub async fn resend(
    State(app): State<App>,
    signed: Signed,
    SubscriberId(id): SubscriberId,
) -> Result<Response, ConsoleError> {
    if app.email.is_none() {
        return Err(SubscriberError::NoEmailChannel.into());
    }
    let mut unit = app.begin().await?;
    command::resend_confirmation(&app.env(), unit.tx(), &signed.actor(), id, app.clock.now())
        .await?;
    unit.commit().await?;
    flash(
        &signed.session,
        "The confirmation is on its way again (see the dashboard if it fails).",
    )
    .await;
    Ok(see_other("/admin/subscribers"))
}
