//! `/admin/subscribers`: how many email subscribers there are (confirmed by component), a page
//! of them at a time, remove one, send a pending one the confirmation again (both commands of
//! `commands::subscribers`). Addresses are shown in full here, to signed-in operators only,
//! and never logged.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::session::Signed;
use super::{base, problem, render, see_other};
use crate::app::App;
use crate::commands::subscribers::{self as command, SubscriberError};
use crate::render::pages;
use crate::store::{subscribers, StoreError};

/// Subscribers per page.
const PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    after: Option<i64>,
    done: Option<String>,
}

fn unavailable(app: &App, signed: &Signed, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    problem(app, Some(&signed.operator), &signed.csrf, StatusCode::SERVICE_UNAVAILABLE, "Database unavailable", "The console cannot reach its database right now. Nothing was changed; try again in a moment.")
}

/// `GET /admin/subscribers?after=ID`
pub async fn page(
    State(app): State<App>,
    signed: Signed,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    let Some((channel, _)) = app.config.email_channel() else {
        ctx.insert("channel".into(), json!(null));
        return render(&app, StatusCode::OK, "admin/subscribers.html", ctx);
    };
    ctx.insert("channel".into(), json!(channel));
    let q = query.map(|Query(q)| q).unwrap_or(PageQuery {
        after: None,
        done: None,
    });
    let after = q.after.unwrap_or(0).max(0);
    let ids: Vec<&str> = app
        .config
        .components
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    let loaded = async {
        let mut conn = app.db.pool().acquire().await?;
        let counts = subscribers::counts(&mut conn, &ids).await?;
        let rows = subscribers::list(&mut conn, after, PAGE).await?;
        Ok::<_, StoreError>((counts, rows))
    }
    .await;
    let (counts, rows) = match loaded {
        Ok(x) => x,
        Err(e) => return unavailable(&app, &signed, e),
    };
    let now = app.clock.now();
    let name_of = |id: &str| {
        app.config
            .component(id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
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
                "since": pages::time(s.created_at, now, app.config.site.time_zone),
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
    ctx.insert(
        "done".into(),
        json!(match q.done.as_deref() {
            Some("removed") => Some("The subscriber was removed."),
            Some("sent") =>
                Some("The confirmation is on its way again (see the dashboard if it fails)."),
            _ => None,
        }),
    );
    render(&app, StatusCode::OK, "admin/subscribers.html", ctx)
}

fn no_channel(app: &App, signed: &Signed) -> Response {
    problem(
        app,
        Some(&signed.operator),
        &signed.csrf,
        StatusCode::NOT_FOUND,
        "No email channel",
        "This site has no email channel configured, so it has no subscribers.",
    )
}

fn no_subscriber(app: &App, signed: &Signed, status: StatusCode, message: &str) -> Response {
    problem(
        app,
        Some(&signed.operator),
        &signed.csrf,
        status,
        "No such subscriber",
        message,
    )
}

fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|i| *i > 0)
}

/// `POST /admin/subscribers/{id}/remove`: for good; audited.
pub async fn remove(State(app): State<App>, signed: Signed, Path(raw): Path<String>) -> Response {
    if app.email.is_none() {
        return no_channel(&app, &signed);
    }
    let Some(id) = parse_id(&raw) else {
        return no_subscriber(
            &app,
            &signed,
            StatusCode::NOT_FOUND,
            "There is no subscriber with that number.",
        );
    };
    let done = async {
        let mut unit = app.begin().await?;
        command::remove(&app.env(), unit.tx(), &signed.actor(), id, app.clock.now()).await?;
        unit.commit().await?;
        Ok::<_, SubscriberError>(())
    }
    .await;
    match done {
        Ok(()) => see_other("/admin/subscribers?done=removed"),
        Err(SubscriberError::NotFound(_)) => no_subscriber(
            &app,
            &signed,
            StatusCode::NOT_FOUND,
            "There is no subscriber with that number (already removed?).",
        ),
        Err(e) => unavailable(&app, &signed, e),
    }
}

/// `POST /admin/subscribers/{id}/resend`: a pending subscriber is sent a new confirmation mail
/// (queued in the outbox, retried until the mail server takes it; its link replaces the old
/// one once sent); audited.
pub async fn resend(State(app): State<App>, signed: Signed, Path(raw): Path<String>) -> Response {
    if app.email.is_none() {
        return no_channel(&app, &signed);
    }
    let Some(id) = parse_id(&raw) else {
        return no_subscriber(
            &app,
            &signed,
            StatusCode::NOT_FOUND,
            "There is no subscriber with that number.",
        );
    };
    let done = async {
        let mut unit = app.begin().await?;
        command::resend_confirmation(&app.env(), unit.tx(), &signed.actor(), id, app.clock.now())
            .await?;
        unit.commit().await?;
        Ok::<_, SubscriberError>(())
    }
    .await;
    match done {
        Ok(()) => see_other("/admin/subscribers?done=sent"),
        Err(SubscriberError::NotPending(_)) => no_subscriber(
            &app,
            &signed,
            StatusCode::CONFLICT,
            "That subscriber does not exist or is not waiting for confirmation, so no confirmation was sent.",
        ),
        Err(e) => unavailable(&app, &signed, e),
    }
}
