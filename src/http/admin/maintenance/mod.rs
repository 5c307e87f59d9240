//! Maintenance windows in the console: the upcoming and active ones, a form to schedule one
//! (with a check step that shows the peak hours it overlaps), and one window's page with its
//! updates and deliveries and forms to edit, extend, complete, cancel or turn it into an
//! incident. Every write goes through [`crate::commands::maintenance`] with the operator as
//! the actor; forms carry the window's version so a stale one is refused. The forms are parsed
//! in `forms.rs`, the pages built in `views.rs`.

mod forms;
mod views;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde_json::json;

use super::error::{ConsoleError, Missing, WindowId};
use super::session::Signed;
use super::{base, flash, posted_to, render, see_other};
use crate::app::App;
use crate::commands::maintenance::{self as cmd, ScheduleWindow};
use crate::commands::CommandError;
use crate::domain::Invalid;
use crate::store::incidents::{self, Incident, WindowFilter};
use crate::store::StoreError;
use forms::{opt, Action, WindowDraft};
use views::{new_page, planned_end, summary, window_page};

/// How many windows of each kind the list shows.
const LISTED: i64 = 100;

/// `GET /admin/maintenance`: upcoming and active windows, and the latest ones.
pub async fn list(State(app): State<App>, signed: Signed) -> Result<Response, ConsoleError> {
    let (upcoming, active, recent) = async {
        let mut conn = app.db.pool().acquire().await?;
        let upcoming = incidents::windows(&mut conn, WindowFilter::Upcoming, LISTED).await?;
        let active = incidents::windows(&mut conn, WindowFilter::Active, LISTED).await?;
        let recent = incidents::windows(&mut conn, WindowFilter::All, 20).await?;
        Ok::<_, StoreError>((upcoming, active, recent))
    }
    .await?;
    let now = app.clock.now();
    let view = |ws: &[Incident]| ws.iter().map(|w| summary(&app, w, now)).collect::<Vec<_>>();
    let closed: Vec<Incident> = recent.into_iter().filter(|w| !w.is_open()).collect();
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    ctx.insert("upcoming".into(), json!(view(&upcoming)));
    ctx.insert("active".into(), json!(view(&active)));
    ctx.insert("closed".into(), json!(view(&closed)));
    Ok(render(
        &app,
        StatusCode::OK,
        "admin/maintenance_list.html",
        ctx,
    ))
}

/// `GET /admin/maintenance/new`
pub async fn new_form(State(app): State<App>, signed: Signed) -> Response {
    let draft = WindowDraft {
        end_mode: "duration".into(),
        owner: signed.operator.email.clone(),
        ..WindowDraft::default()
    };
    new_page(&app, &signed, StatusCode::OK, &draft, None, None)
}

/// `POST /admin/maintenance/new`: `action=check` shows the peak hours the window overlaps and
/// writes nothing; `action=schedule` schedules it, unless it overlaps peak hours and the
/// operator has not confirmed these times (the "schedule anyway" button carries them).
pub async fn create(
    State(app): State<App>,
    signed: Signed,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let draft = WindowDraft::from_fields(&fields);
    let tz = app.config.site.time_zone;
    let times = draft
        .start(tz)
        .and_then(|s| draft.end(s, tz).map(|e| (s, e)));
    let (starts_at, ends_at) = match times {
        Ok(t) => t,
        Err(e) => {
            return Ok(new_page(
                &app,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                &draft,
                Some(e.to_string()),
                None,
            ))
        }
    };
    let env = app.env();
    let warnings = cmd::warnings(&env, &draft.components, starts_at, ends_at);
    if draft.action != "schedule" || (!warnings.is_empty() && draft.confirm != draft.fingerprint) {
        return Ok(new_page(
            &app,
            &signed,
            StatusCode::OK,
            &draft,
            None,
            Some(warnings),
        ));
    }
    let s = ScheduleWindow {
        title: draft.title.clone(),
        description: opt(&draft.description),
        components: draft.components.clone(),
        starts_at,
        ends_at,
        message: opt(&draft.message),
        owner: opt(&draft.owner),
    };
    let now = app.clock.now();
    let done = async {
        let mut unit = app.begin().await?;
        let id = cmd::schedule_window(&env, unit.tx(), &signed.actor(), s, None, now).await?;
        unit.commit().await?;
        Ok::<_, CommandError>(id)
    }
    .await;
    let refused = |status, error: String, warnings| {
        Ok(new_page(
            &app,
            &signed,
            status,
            &draft,
            Some(error),
            warnings,
        ))
    };
    match done {
        Ok(Some(id)) => {
            let posted = posted_to(&app, id, now).await;
            let words = format!("Maintenance window #{id} scheduled{posted}.");
            flash(&signed.session, words).await;
            Ok(see_other(&format!("/admin/maintenance/{id}")))
        }
        Ok(None) => refused(
            StatusCode::CONFLICT,
            "This window already exists.".into(),
            None,
        ),
        Err(CommandError::Invalid(e)) => refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
            Some(warnings),
        ),
        Err(e) => Err(e.into()),
    }
}

/// `GET /admin/maintenance/{id}`
pub async fn show(
    State(app): State<App>,
    signed: Signed,
    WindowId(id): WindowId,
) -> Result<Response, ConsoleError> {
    window_page(&app, &signed, id, StatusCode::OK, None, None).await
}

/// Runs a window action in a unit: back to the window, or its page again with why not (the
/// operator's words kept).
async fn act(
    app: &App,
    signed: &Signed,
    id: i64,
    draft: &WindowDraft,
    action: Result<Action, Invalid>,
) -> Result<Response, ConsoleError> {
    let refused =
        |status, msg: String| window_page(app, signed, id, status, Some(msg), Some(draft));
    let action = match action {
        Ok(a) => a,
        Err(e) => return refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).await,
    };
    let env = app.env();
    let actor = signed.actor();
    let now = app.clock.now();
    let what = match &action {
        Action::Edit(_) => "changed",
        Action::Complete(_) => "completed",
        Action::Cancel(_) => "cancelled",
        Action::Incident(_) => "turned into an incident",
    };
    let done = async {
        let mut unit = app.begin().await?;
        let tx = unit.tx();
        match action {
            Action::Edit(e) => cmd::edit_window(&env, tx, &actor, id, e, now).await?,
            Action::Complete(c) => cmd::complete_window(&env, tx, &actor, id, c, now).await?,
            Action::Cancel(c) => cmd::cancel_window(&env, tx, &actor, id, c, now).await?,
            Action::Incident(t) => cmd::to_incident(&env, tx, &actor, id, t, now).await?,
        }
        unit.commit().await?;
        Ok::<_, CommandError>(())
    }
    .await;
    match done {
        Ok(()) => {
            let posted = posted_to(app, id, now).await;
            let words = format!("Maintenance window #{id} {what}{posted}.");
            flash(&signed.session, words).await;
            Ok(see_other(&format!("/admin/maintenance/{id}")))
        }
        Err(CommandError::Stale { .. }) => {
            refused(
                StatusCode::CONFLICT,
                "Someone else changed this window while you were writing; nothing of yours was posted. Read the page again, then post again if it still applies.".into(),
            )
            .await
        }
        Err(CommandError::Invalid(e)) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).await
        }
        Err(CommandError::Resolved(_)) => {
            refused(
                StatusCode::CONFLICT,
                "This window is already over (completed or cancelled).".into(),
            )
            .await
        }
        Err(CommandError::NotFound(_)) => Err(ConsoleError::NotFound(Missing::Window)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/maintenance/{id}/edit`: before the start anything may change; after it, the
/// title and description.
pub async fn edit(
    State(app): State<App>,
    signed: Signed,
    WindowId(id): WindowId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let draft = WindowDraft::from_fields(&fields);
    let action = draft.edit(app.config.site.time_zone);
    act(&app, &signed, id, &draft, action).await
}

/// `POST /admin/maintenance/{id}/extend`: a later end (a local time or `extend_by`), with the
/// reason customers are told.
pub async fn extend(
    State(app): State<App>,
    signed: Signed,
    WindowId(id): WindowId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let draft = WindowDraft::from_fields(&fields);
    let current = async {
        let mut conn = app.db.pool().acquire().await?;
        incidents::get(&mut conn, id).await
    }
    .await?;
    let w = current
        .filter(Incident::is_maintenance)
        .ok_or(ConsoleError::NotFound(Missing::Window))?;
    let action = draft.extend(planned_end(&w), app.config.site.time_zone);
    act(&app, &signed, id, &draft, action).await
}

/// `POST /admin/maintenance/{id}/complete`
pub async fn complete(
    State(app): State<App>,
    signed: Signed,
    WindowId(id): WindowId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let draft = WindowDraft::from_fields(&fields);
    let action = draft.close().map(Action::Complete);
    act(&app, &signed, id, &draft, action).await
}

/// `POST /admin/maintenance/{id}/cancel` (only before the window starts).
pub async fn cancel(
    State(app): State<App>,
    signed: Signed,
    WindowId(id): WindowId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let draft = WindowDraft::from_fields(&fields);
    let action = draft.close().map(Action::Cancel);
    act(&app, &signed, id, &draft, action).await
}

/// `POST /admin/maintenance/{id}/incident`: the window went wrong; it continues as an incident.
pub async fn to_incident(
    State(app): State<App>,
    signed: Signed,
    WindowId(id): WindowId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let draft = WindowDraft::from_fields(&fields);
    let action = draft.to_incident();
    let resp = act(&app, &signed, id, &draft, action).await?;
    if resp.status() == StatusCode::SEE_OTHER {
        return Ok(see_other(&format!("/admin/incidents/{id}")));
    }
    Ok(resp)
}
