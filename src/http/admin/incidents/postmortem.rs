//! The console's postmortem forms: save (and preview), publish, add an action item, mark one
//! done. Each runs its command in a unit and comes back to the incident's page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;

use super::views::{incident_page, Notice};
use crate::app::App;
use crate::commands::{self, CommandError};
use crate::http::admin::error::{ConsoleError, IncidentId};
use crate::http::admin::session::Signed;
use crate::http::admin::{flash, see_other};

fn field(fields: &[(String, String)], k: &str) -> String {
    fields
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Runs `op` in a unit of work; success flashes `done`, bad input comes back as the page's
/// error.
async fn run<F>(
    app: &App,
    signed: &Signed,
    id: i64,
    done: &str,
    op: F,
) -> Result<Response, ConsoleError>
where
    F: for<'c> FnOnce(
        &'c mut crate::store::Conn,
    ) -> futures::future::BoxFuture<'c, Result<(), CommandError>>,
{
    let result = async {
        let mut unit = app.begin().await?;
        op(unit.tx()).await?;
        unit.commit().await?;
        Ok::<(), CommandError>(())
    }
    .await;
    match result {
        Ok(()) => {
            flash(&signed.session, done.to_string()).await;
            Ok(see_other(&format!(
                "/admin/incidents/{id}#postmortem-section"
            )))
        }
        Err(CommandError::Invalid(e)) => {
            incident_page(
                app,
                signed,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Notice::Error(format!("{}: {}", e.field, e.message)),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/incidents/{id}/postmortem`: save the Markdown (the page then previews it).
pub async fn save(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    use futures::FutureExt;
    let (env, actor, now, body) = (
        app.env(),
        signed.actor(),
        app.clock.now(),
        field(&fields, "body"),
    );
    run(&app, &signed, id, "Postmortem saved.", move |c| {
        async move { commands::save_postmortem(&env, c, &actor, id, &body, now).await }.boxed()
    })
    .await
}

/// `POST /admin/incidents/{id}/postmortem/publish`
pub async fn publish(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
) -> Result<Response, ConsoleError> {
    use futures::FutureExt;
    let (env, actor, now) = (app.env(), signed.actor(), app.clock.now());
    run(
        &app,
        &signed,
        id,
        "Postmortem published; the final post is on its way.",
        move |c| {
            async move { commands::publish_postmortem(&env, c, &actor, id, now).await }.boxed()
        },
    )
    .await
}

/// `POST /admin/incidents/{id}/postmortem/actions`: `text`, `owner`, `due_on` (YYYY-MM-DD).
pub async fn add_action(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    use futures::FutureExt;
    let (env, actor, now) = (app.env(), signed.actor(), app.clock.now());
    let (text, owner, due) = (
        field(&fields, "text"),
        field(&fields, "owner"),
        field(&fields, "due_on"),
    );
    run(&app, &signed, id, "Action item added.", move |c| {
        async move {
            commands::add_action(&env, c, &actor, id, (&text, &owner, &due), now)
                .await
                .map(|_| ())
        }
        .boxed()
    })
    .await
}

/// `POST /admin/incidents/{id}/postmortem/actions/done`: `action_id`.
pub async fn complete_action(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    use futures::FutureExt;
    let (env, actor, now) = (app.env(), signed.actor(), app.clock.now());
    let action = crate::http::extract::parse_id(field(&fields, "action_id").trim()).unwrap_or(0);
    run(&app, &signed, id, "Action item marked done.", move |c| {
        async move { commands::complete_action(&env, c, &actor, id, action, now).await }.boxed()
    })
    .await
}
