//! Declare, show, update, revise the ETA, resolve; "retry now" for dead deliveries. The forms
//! are parsed in `forms.rs`, the pages built in `views.rs`, the previews and calibration figures
//! in `preview.rs`.
//!
//! Forms carry the incident's version: a form posted after someone else changed the incident is
//! refused (409) with their update shown and the operator's words kept.

mod forms;
pub mod postmortem;
mod preview;
mod views;

pub use forms::{form_error, local_input, local_time, Draft};
pub use preview::{calibration, estimates, estimates_query, preview};
pub use views::{delivery_view, updates_view};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::error::{ConsoleError, DeliveryId, IncidentId};
use super::session::Signed;
use super::{flash, posted_to, see_other};
use crate::app::App;
use crate::commands::{self, CommandError, Resolve};
use forms::{to_declare, to_update};
use views::{declare_page, incident_page, Notice};

#[derive(Debug, Deserialize)]
pub struct NewQuery {
    template: Option<String>,
}

/// `GET /admin/incidents/new`, optionally `?template=ID` (from `console.templates`).
pub async fn new_form(
    State(app): State<App>,
    signed: Signed,
    query: Result<Query<NewQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    let mut draft = Draft {
        impact: "minor".into(),
        status: "investigating".into(),
        eta_mode: "in".into(),
        ..Draft::default()
    };
    let wanted = query.ok().and_then(|Query(q)| q.template);
    if let Some(id) = wanted {
        let Some(t) = app.config.console.templates.iter().find(|t| t.id == id) else {
            let e = format!(
                "There is no template `{}`.",
                crate::http::api::clip(&id, 40)
            );
            return declare_page(&app, &signed, StatusCode::NOT_FOUND, &draft, Some(e), false)
                .await;
        };
        draft.title = t.title.clone();
        draft.impact = t.impact.as_str().into();
        draft.message = t.message.clone();
        draft.components = t
            .components
            .iter()
            .map(|(c, s)| (c.clone(), s.as_str().to_string()))
            .collect();
        match &t.eta_in {
            Some(eta) => draft.eta_in = eta.clone(),
            None => draft.eta_mode = "unknown".into(),
        }
        draft.next_update_in = t.next_update_in.clone().unwrap_or_default();
    }
    declare_page(&app, &signed, StatusCode::OK, &draft, None, false).await
}

/// `POST /admin/incidents/new`: `action=preview` shows the preview step (no script needed);
/// `action=declare` declares.
pub async fn declare(
    State(app): State<App>,
    signed: Signed,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let draft = Draft::from_fields(&fields);
    if draft.action != "declare" {
        return declare_page(&app, &signed, StatusCode::OK, &draft, None, true).await;
    }
    let refused = |e: crate::domain::Invalid| {
        declare_page(
            &app,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            &draft,
            Some(form_error(&e)),
            true,
        )
    };
    let d = match to_declare(&draft, app.config.site.time_zone, &signed.operator.email) {
        Ok(d) => d,
        Err(e) => return refused(e).await,
    };
    let now = app.clock.now();
    let done = async {
        let mut unit = app.begin().await?;
        let id = commands::declare(&app.env(), unit.tx(), &signed.actor(), d, now).await?;
        unit.commit().await?;
        Ok::<_, CommandError>(id)
    }
    .await;
    match done {
        Ok(id) => {
            let posted = posted_to(&app, id, now).await;
            flash(&signed.session, format!("Incident #{id} declared{posted}.")).await;
            Ok(see_other(&format!("/admin/incidents/{id}")))
        }
        Err(CommandError::Invalid(e)) => refused(e).await,
        Err(e) => Err(e.into()),
    }
}

/// `GET /admin/incidents/{id}`
pub async fn show(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
) -> Result<Response, ConsoleError> {
    incident_page(&app, &signed, id, StatusCode::OK, Notice::None, None).await
}

/// After an update or resolution: back to the incident, or its page again with why not (the
/// operator's words kept).
async fn after_write(
    app: &App,
    signed: &Signed,
    id: i64,
    draft: &Draft,
    done: Result<(), CommandError>,
    (what, now): (&str, chrono::DateTime<chrono::Utc>),
) -> Result<Response, ConsoleError> {
    let again = |status, notice| incident_page(app, signed, id, status, notice, Some(draft));
    match done {
        Ok(()) => {
            let posted = posted_to(app, id, now).await;
            flash(&signed.session, format!("Incident #{id} {what}{posted}.")).await;
            Ok(see_other(&format!("/admin/incidents/{id}")))
        }
        Err(CommandError::Stale { .. }) => again(StatusCode::CONFLICT, Notice::Stale).await,
        Err(CommandError::Invalid(e)) => {
            again(
                StatusCode::UNPROCESSABLE_ENTITY,
                Notice::Error(form_error(&e)),
            )
            .await
        }
        Err(CommandError::Resolved(_)) => {
            again(
                StatusCode::CONFLICT,
                Notice::Error("This incident is already resolved.".into()),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/incidents/{id}/update`: a public update, optionally a new ETA (with a reason).
pub async fn update(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let draft = Draft::from_fields(&fields);
    let now = app.clock.now();
    let u = match to_update(&draft, app.config.site.time_zone) {
        Ok(u) => u,
        Err(e) => {
            let done = Err(e.into());
            return after_write(&app, &signed, id, &draft, done, ("updated", now)).await;
        }
    };
    let done = async {
        let mut unit = app.begin().await?;
        commands::post_update(&app.env(), unit.tx(), &signed.actor(), id, u, now).await?;
        unit.commit().await?;
        Ok(())
    }
    .await;
    after_write(&app, &signed, id, &draft, done, ("updated", now)).await
}

/// `POST /admin/incidents/{id}/correct`: a correction of one published update (fields
/// `update_id`, `message`, `reason`, `meaning_changed`).
pub async fn correct(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let field = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let draft = Draft::from_fields(&[]);
    let Some(update_id) = crate::http::extract::parse_id(field("update_id").trim()) else {
        return incident_page(
            &app,
            &signed,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::Error(
                "update_id: the form lost which update to correct; reload the page".into(),
            ),
            None,
        )
        .await;
    };
    let fix = commands::Correct {
        message: field("message"),
        reason: field("reason"),
        meaning_changed: !field("meaning_changed").is_empty(),
    };
    let now = app.clock.now();
    let done = async {
        let mut unit = app.begin().await?;
        commands::correct(
            &app.env(),
            unit.tx(),
            &signed.actor(),
            (id, update_id),
            fix,
            now,
        )
        .await?;
        unit.commit().await?;
        Ok(())
    }
    .await;
    after_write(&app, &signed, id, &draft, done, ("corrected", now)).await
}

/// `POST /admin/incidents/{id}/resolve`
pub async fn resolve(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let draft = Draft::from_fields(&fields);
    let Some(version) = draft.version else {
        return incident_page(
            &app,
            &signed,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::Error("version: the form lost the incident's version; reload the page".into()),
            Some(&draft),
        )
        .await;
    };
    let r = Resolve {
        message: draft.message.clone(),
        expected_version: Some(version),
    };
    let now = app.clock.now();
    let done = async {
        let mut unit = app.begin().await?;
        commands::resolve(&app.env(), unit.tx(), &signed.actor(), id, r, now).await?;
        unit.commit().await?;
        Ok(())
    }
    .await;
    after_write(&app, &signed, id, &draft, done, ("resolved", now)).await
}

/// `POST /admin/deliveries/{id}/retry`: a dead delivery goes back in its lane, due now.
pub async fn retry(
    State(app): State<App>,
    signed: Signed,
    DeliveryId(id): DeliveryId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let back = fields
        .iter()
        .find(|(k, _)| k == "back")
        .map(|(_, v)| v.clone())
        .filter(|b| b.starts_with("/admin") && !b.starts_with("//"))
        .unwrap_or_else(|| "/admin".into());
    let now = app.clock.now();
    let mut unit = app.begin().await?;
    let retried = commands::retry_delivery(unit.tx(), &signed.actor(), id, now).await?;
    unit.commit().await?;
    if !retried {
        return Err(ConsoleError::conflict(
            "Not dead",
            "That delivery is not dead any more (it was delivered or retried meanwhile), so there is nothing to retry.",
        ));
    }
    flash(
        &signed.session,
        format!("Delivery #{id} queued again; it will be sent in a moment."),
    )
    .await;
    Ok(see_other(&back))
}
