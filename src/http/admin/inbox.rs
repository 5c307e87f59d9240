//! An incident's inbox: customers' replies and mentions grouped by author (one conversation per
//! author and channel), who holds each, Candor's answers and whether they went out, and who was
//! told it is fixed. Claim, answer (the claimer only) and the "tell them it is fixed" opt-out
//! are commands of `commands::inbox`. Inbound text is shown escaped, as text; only `http(s)`
//! links are links.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use serde_json::json;

use super::error::{ConsoleError, ConversationId, IncidentId, Missing};
use super::session::Signed;
use super::{base, flash, render, see_other};
use crate::app::App;
use crate::commands::inbox::{self as command, AnswerRefused};
use crate::commands::CommandError;
use crate::domain::inbox::suggested_openings;
use crate::render::views;
use crate::store::inbox::{self as store, Claim};
use crate::store::{incidents, StoreError};

/// `GET /admin/incidents/{id}/inbox`
pub async fn page(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
) -> Result<Response, ConsoleError> {
    let now = app.clock.now();
    let tz = app.config.site.time_zone;
    let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
    let incident = incidents::get(&mut conn, id)
        .await?
        .filter(|i| !i.is_maintenance())
        .ok_or(ConsoleError::NotFound(Missing::Incident))?;
    let conversations = store::conversations(&mut conn, id).await?;
    let items = store::items(&mut conn, id).await?;
    let answers = store::answers(&mut conn, id).await?;
    let (tell_fixed, dropped) = store::incident_settings(&mut conn, id).await?;
    let sources = store::sources(&mut conn).await?;
    drop(conn);
    let waiting_after = crate::domain::to_chrono(app.config.inbox.unclaimed_after);
    let me = command::claimant(&signed.actor());
    let rows: Vec<_> = conversations
        .iter()
        .map(|c| {
            let mut entries: Vec<(chrono::DateTime<chrono::Utc>, serde_json::Value)> = items
                .iter()
                .filter(|i| i.conversation_id == c.id)
                .map(|i| {
                    (
                        i.posted_at,
                        json!({
                            "from": "customer", "body": i.body, "url": i.url,
                            "actor": null, "state": null,
                            "at": views::time(i.posted_at, now, tz),
                        }),
                    )
                })
                .collect();
            entries.extend(
                answers
                    .iter()
                    .filter(|a| a.conversation_id == c.id)
                    .map(|a| {
                        (
                            a.created_at,
                            json!({
                                "from": a.kind, "body": a.body, "state": a.state,
                    "actor": a.actor.strip_prefix("operator:").unwrap_or(&a.actor),
                                "url": crate::domain::inbox::safe_link(a.remote_url.as_deref()),
                                "at": views::time(a.created_at, now, tz),
                            }),
                        )
                    }),
            );
            entries.sort_by_key(|(t, _)| *t);
            let state = if c.answered_at.is_some() {
                "answered"
            } else if c.claimed_by.is_some() {
                "claimed"
            } else {
                "waiting"
            };
            json!({
                "id": c.id, "channel": c.channel, "handle": c.author_handle,
                "name": c.author_name, "state": state,
                "claimed_by": c.claimed_by, "mine": c.claimed_by.as_deref() == Some(me.as_str()),
                "overdue": c.claimed_by.is_none() && c.first_at <= now - waiting_after,
                "first": views::time(c.first_at, now, tz),
                "told_fixed": c.fixed_told_at.map(|t| views::time(t, now, tz)),
                "entries": entries.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
            })
        })
        .collect();
    let sources: Vec<_> = sources
        .iter()
        .filter(|s| app.config.inbox.channels.contains(&s.channel))
        .map(|s| {
            json!({
                "channel": s.channel, "error": s.last_error,
                "polled": s.last_polled_at.map(|t| views::time(t, now, tz)),
            })
        })
        .collect();
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    ctx.insert(
        "incident".into(),
        json!({ "id": incident.id, "title": incident.title, "open": incident.is_open() }),
    );
    ctx.insert("conversations".into(), json!(rows));
    ctx.insert("tell_fixed".into(), json!(tell_fixed));
    ctx.insert("dropped".into(), json!(dropped));
    ctx.insert("listening".into(), json!(app.config.inbox.channels));
    ctx.insert("sources".into(), json!(sources));
    ctx.insert(
        "suggestions".into(),
        json!(suggested_openings(&app.config.site.name, &incident.title)),
    );
    ctx.insert(
        "told".into(),
        json!(conversations
            .iter()
            .filter(|c| c.fixed_told_at.is_some())
            .map(|c| c.author_handle.clone())
            .collect::<Vec<_>>()),
    );
    Ok(render(&app, StatusCode::OK, "admin/inbox.html", ctx))
}

/// The conversation's incident, for redirects.
async fn incident_of(app: &App, id: i64) -> Result<i64, ConsoleError> {
    let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
    store::conversation(&mut conn, id)
        .await?
        .map(|c| c.incident_id)
        .ok_or(ConsoleError::NotFound(Missing::Conversation))
}

/// `POST /admin/inbox/{id}/claim`: refused (409, naming who) if someone holds it.
pub async fn claim(
    State(app): State<App>,
    signed: Signed,
    ConversationId(id): ConversationId,
) -> Result<Response, ConsoleError> {
    let incident = incident_of(&app, id).await?;
    let mut unit = app.begin().await?;
    let claim = command::claim(unit.tx(), &signed.actor(), id, app.clock.now()).await?;
    unit.commit().await?;
    match claim {
        Claim::Claimed => {
            flash(
                &signed.session,
                "The conversation is yours: answer it below.",
            )
            .await;
            Ok(see_other(&format!(
                "/admin/incidents/{incident}/inbox#c{id}"
            )))
        }
        Claim::HeldBy(holder) if holder == command::claimant(&signed.actor()) => Ok(see_other(
            &format!("/admin/incidents/{incident}/inbox#c{id}"),
        )),
        Claim::HeldBy(holder) => Err(ConsoleError::conflict(
            "Already claimed",
            format!("{holder} holds this conversation already; only they answer it."),
        )),
        Claim::Missing => Err(ConsoleError::NotFound(Missing::Conversation)),
    }
}

#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    text: String,
}

/// `POST /admin/inbox/{id}/answer`: the claimer's reply, queued in the outbox as a reply to the
/// customer's latest post.
pub async fn answer(
    State(app): State<App>,
    signed: Signed,
    ConversationId(id): ConversationId,
    Form(f): Form<AnswerForm>,
) -> Result<Response, ConsoleError> {
    let incident = incident_of(&app, id).await?;
    let channel = {
        let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
        store::conversation(&mut conn, id)
            .await?
            .map(|c| c.channel)
            .unwrap_or_default()
    };
    let Some(listener) = app.channels.get(&channel).and_then(|c| c.listener()) else {
        return Err(ConsoleError::conflict(
            "Cannot answer",
            format!("The channel `{channel}` is no longer configured, so it cannot be answered."),
        ));
    };
    let mut unit = app.begin().await?;
    let done = command::answer(
        unit.tx(),
        &signed.actor(),
        id,
        &f.text,
        listener,
        app.clock.now(),
    )
    .await;
    match done {
        Ok(_) => {}
        Err(AnswerRefused::Command(CommandError::Invalid(e))) => {
            return Err(ConsoleError::bad_request(format!(
                "The answer {}.",
                e.message
            )))
        }
        Err(AnswerRefused::Command(e)) => return Err(e.into()),
        Err(AnswerRefused::Missing(_)) => {
            return Err(ConsoleError::NotFound(Missing::Conversation))
        }
        Err(e @ (AnswerRefused::HeldBy(_) | AnswerRefused::Unclaimed)) => {
            return Err(ConsoleError::conflict("Not yours to answer", e.to_string()))
        }
    }
    unit.commit().await?;
    flash(
        &signed.session,
        "Your answer is on its way, in the customer's thread.",
    )
    .await;
    Ok(see_other(&format!(
        "/admin/incidents/{incident}/inbox#c{id}"
    )))
}

#[derive(Debug, Deserialize)]
pub struct TellFixedForm {
    tell: Option<String>,
}

/// `POST /admin/incidents/{id}/inbox/tell-fixed`: `tell=yes` (the default) or `no`.
pub async fn tell_fixed(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
    Form(f): Form<TellFixedForm>,
) -> Result<Response, ConsoleError> {
    let tell = match f.tell.as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(ConsoleError::bad_request("`tell` must be yes or no.")),
    };
    let mut unit = app.begin().await?;
    command::set_tell_fixed(unit.tx(), &signed.actor(), id, tell, app.clock.now()).await?;
    unit.commit().await?;
    let words = if tell {
        "Those answered will be told in their thread when this is fixed."
    } else {
        "Nobody will be told in their thread when this is fixed."
    };
    flash(&signed.session, words).await;
    Ok(see_other(&format!("/admin/incidents/{id}/inbox")))
}
