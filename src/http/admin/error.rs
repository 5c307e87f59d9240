//! The console's one error type. Handlers return `Result<Response, ConsoleError>`; `?` on a
//! store, command or template error lands here, and this file alone decides what the operator
//! sees: the status, and the problem page's title and words. Causes are logged, never shown.
//!
//! A [`ConsoleError`] becomes a response in two steps: [`IntoResponse`] gives the status, a
//! plain-text body and the [`Problem`] as a response extension; the console's [`problem_pages`]
//! layer, which knows the signed-in operator, replaces the body with the problem page in the
//! console's layout (the plain text stays if even that page cannot be rendered).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tower_sessions::Session;

use super::session::{csrf_token, Signed};
use crate::app::App;
use crate::commands::subscribers::SubscriberError;
use crate::commands::CommandError;
use crate::http::extract::PathId;
use crate::render::RenderError;
use crate::store::operators::Operator;
use crate::store::StoreError;

/// What a console path's id named, when there is no such thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Incident,
    Window,
    Delivery,
    Subscriber,
    Conversation,
}

impl Missing {
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Missing::Incident => ("No such incident", "There is no incident with that number."),
            Missing::Window => (
                "No such window",
                "There is no maintenance window with that number.",
            ),
            Missing::Delivery => ("No such delivery", "There is no delivery with that number."),
            Missing::Conversation => (
                "No such conversation",
                "There is no conversation in the inbox with that number.",
            ),
            Missing::Subscriber => (
                "No such subscriber",
                "There is no subscriber with that number (already removed?).",
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0:?} not found")]
    NotFound(Missing),
    /// Refused as it stands (a conflict, a bad field): the status, a title and why.
    #[error("{title}: {message}")]
    Refused {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// The database cannot be reached; logged, and the operator is told to try again.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else that went wrong on our side (a bad query, a broken template); logged.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The problem page's words while the database cannot be reached.
const UNAVAILABLE_TITLE: &str = "The database is unavailable";
const UNAVAILABLE_MESSAGE: &str = "The console cannot reach its database right now, so nobody can sign in or change anything. Nothing was changed. The public status page keeps showing the last state it knew. Try again in a minute.";
/// Seconds a browser or script is told to wait before trying again while the database is down.
const RETRY_AFTER_SECONDS: &str = "30";

/// What the problem page says: its title and one sentence.
#[derive(Debug, Clone)]
pub struct Problem {
    pub title: String,
    pub message: String,
}

impl ConsoleError {
    pub fn conflict(title: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            status: StatusCode::CONFLICT,
            title,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Refused {
            status: StatusCode::BAD_REQUEST,
            title: "Not understood",
            message: message.into(),
        }
    }

    /// The status and the words shown; the cause is logged here, once.
    fn parts(&self) -> (StatusCode, Problem) {
        let (status, title, message) = match self {
            ConsoleError::NotFound(m) => {
                let (t, msg) = m.words();
                (StatusCode::NOT_FOUND, t, msg.to_string())
            }
            ConsoleError::Refused {
                status,
                title,
                message,
            } => (*status, *title, message.clone()),
            ConsoleError::Unavailable(cause) => {
                tracing::error!(error = %cause, "console request failed: database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    UNAVAILABLE_TITLE,
                    UNAVAILABLE_MESSAGE.into(),
                )
            }
            ConsoleError::Internal(cause) => {
                tracing::error!(error = %cause, "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side; it has been logged. Nothing was changed."
                        .into(),
                )
            }
        };
        let problem = Problem {
            title: title.to_string(),
            message,
        };
        (status, problem)
    }

    /// The error as JSON, `{"error": "..."}`, for the console's script (previews, estimates).
    pub fn into_json(self) -> Response {
        let (status, p) = self.parts();
        (status, Json(json!({ "error": p.message }))).into_response()
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, problem) = self.parts();
        let text = format!("{}\n\n{}\n", problem.title, problem.message);
        let mut resp = (status, text).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        resp.extensions_mut().insert(problem);
        resp
    }
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            ConsoleError::Unavailable(e.to_string())
        } else {
            ConsoleError::Internal(e.to_string())
        }
    }
}

impl From<SubscriberError> for ConsoleError {
    fn from(e: SubscriberError) -> Self {
        match e {
            SubscriberError::Invalid(i) => ConsoleError::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                title: "Not accepted",
                message: i.to_string(),
            },
            SubscriberError::NoEmailChannel => ConsoleError::Refused {
                status: StatusCode::NOT_FOUND,
                title: "No email channel",
                message: "This site has no email channel configured, so it has no subscribers."
                    .into(),
            },
            SubscriberError::NotFound(_) => ConsoleError::NotFound(Missing::Subscriber),
            SubscriberError::NotPending(_) => ConsoleError::conflict(
                "No such subscriber",
                "That subscriber does not exist or is not waiting for confirmation, so no confirmation was sent.",
            ),
            e @ (SubscriberError::AddressLimited | SubscriberError::LinkNotValid) => {
                ConsoleError::conflict("Not sent", e.to_string())
            }
            SubscriberError::Store(e) => e.into(),
        }
    }
}

impl From<RenderError> for ConsoleError {
    fn from(e: RenderError) -> Self {
        ConsoleError::Internal(e.to_string())
    }
}

impl From<CommandError> for ConsoleError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Invalid(i) => ConsoleError::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                title: "Not accepted",
                message: i.to_string(),
            },
            CommandError::NotFound(_) => ConsoleError::NotFound(Missing::Incident),
            CommandError::Stale { .. } => ConsoleError::conflict(
                "Changed meanwhile",
                "Someone else changed this while you were writing; nothing of yours was posted. Read the page again, then post again if it still applies.",
            ),
            CommandError::Resolved(_) => {
                ConsoleError::conflict("Already over", "This is already resolved.")
            }
            CommandError::Store(e) => e.into(),
            CommandError::Render(e) => e.into(),
        }
    }
}

/// The problem page for `problem`, in the console's layout.
fn page(
    app: &App,
    operator: Option<&Operator>,
    csrf: &str,
    status: StatusCode,
    problem: &Problem,
) -> Result<Response, RenderError> {
    let mut ctx = super::base(app, operator, csrf);
    ctx.insert("title".into(), json!(problem.title));
    ctx.insert("message".into(), json!(problem.message));
    super::render_page(app, status, "admin/problem.html", ctx)
}

/// The problem page for `resp`'s [`Problem`], keeping its `Retry-After`.
fn page_for(app: &App, operator: Option<&Operator>, csrf: &str, resp: Response) -> Response {
    let Some(problem) = resp.extensions().get::<Problem>() else {
        return resp;
    };
    match page(app, operator, csrf, resp.status(), problem) {
        Ok(mut page) => {
            if let Some(v) = resp.headers().get(header::RETRY_AFTER) {
                page.headers_mut().insert(header::RETRY_AFTER, v.clone());
            }
            page
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render the console's problem page");
            resp
        }
    }
}

/// Renders `e` as the problem page where no [`problem_pages`] layer is (the sign-in check).
pub fn render(app: &App, operator: Option<&Operator>, csrf: &str, e: ConsoleError) -> Response {
    page_for(app, operator, csrf, e.into_response())
}

/// Whether the database answers: a connection from the pool (which checks it first).
async fn database_down(app: &App) -> bool {
    match app.db.pool().acquire().await {
        Ok(_) => false,
        Err(e) => StoreError::Sqlx(e).is_unavailable(),
    }
}

/// The outermost console layer (around the session store, which lives in the database): while
/// the database is down, the answers that come out of that are not a bare 500 (the session
/// store failing to save), a refused form (the session, with its CSRF token, failing to load)
/// or a trip to the sign-in page (the signed-in operator's session failing to load), but the
/// "database is unavailable" page, 503 with `Retry-After`. The database is asked only for
/// those answers.
pub async fn unavailable_pages(State(app): State<App>, req: Request, next: Next) -> Response {
    let to_login = req.uri().path() != "/admin/login";
    let resp = next.run(req).await;
    let suspicious = match resp.status() {
        StatusCode::INTERNAL_SERVER_ERROR => !resp.headers().contains_key(header::CONTENT_TYPE),
        StatusCode::FORBIDDEN => resp.headers().contains_key("x-candor-refused"),
        StatusCode::SEE_OTHER | StatusCode::UNAUTHORIZED => {
            to_login
                && resp
                    .headers()
                    .get(header::LOCATION)
                    .is_some_and(|l| l.as_bytes().starts_with(b"/admin/login"))
        }
        _ => false,
    };
    if !suspicious || !database_down(&app).await {
        return resp;
    }
    let e = ConsoleError::Unavailable("the console's session store cannot be reached".into());
    // No session (it cannot be read), so no operator and no CSRF token: the page has no forms.
    page_for(&app, None, "", e.into_response())
}

/// The console's layer that turns every [`ConsoleError`] answer (a handler's, or an
/// extractor's rejection) into the problem page, with the operator's header when signed in.
pub async fn problem_pages(State(app): State<App>, req: Request, next: Next) -> Response {
    let signed = req.extensions().get::<Signed>().cloned();
    let session = req.extensions().get::<Session>().cloned();
    let resp = next.run(req).await;
    if resp.extensions().get::<Problem>().is_none() {
        return resp;
    }
    let csrf = match (&signed, session) {
        (Some(s), _) => s.csrf.clone(),
        (None, Some(session)) => csrf_token(&session).await,
        (None, None) => String::new(),
    };
    let operator = signed.as_ref().map(|s| &s.operator);
    page_for(&app, operator, &csrf, resp)
}

/// The `{id}` of a console path, parsed by [`PathId`]: anything but a positive integer is the
/// "No such …" page for what the route names.
macro_rules! console_id {
    ($(#[$doc:meta])* $name:ident, $missing:expr) => {
        $(#[$doc])*
        pub struct $name(pub i64);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ConsoleError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ConsoleError> {
                PathId::from_request_parts(parts, state)
                    .await
                    .map(|PathId(id)| $name(id))
                    .map_err(|_| ConsoleError::NotFound($missing))
            }
        }
    };
}

console_id!(
    /// `/admin/incidents/{id}`
    IncidentId,
    Missing::Incident
);
console_id!(
    /// `/admin/maintenance/{id}`
    WindowId,
    Missing::Window
);
console_id!(
    /// `/admin/deliveries/{id}`
    DeliveryId,
    Missing::Delivery
);
console_id!(
    /// `/admin/inbox/{id}`: a conversation in an incident's inbox.
    ConversationId,
    Missing::Conversation
);
console_id!(
    /// `/admin/subscribers/{id}`
    SubscriberId,
    Missing::Subscriber
);

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(e: ConsoleError) -> (StatusCode, String) {
        let resp = e.into_response();
        let p = resp.extensions().get::<Problem>().unwrap().clone();
        (resp.status(), p.title)
    }

    #[test]
    fn each_cause_has_its_own_page() {
        let down = StoreError::Sqlx(sqlx::Error::PoolClosed);
        assert_eq!(
            shown(down.into()),
            (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_TITLE.into())
        );
        let down = ConsoleError::from(StoreError::Sqlx(sqlx::Error::PoolClosed)).into_response();
        assert_eq!(down.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        let bad_query = StoreError::Sqlx(sqlx::Error::RowNotFound);
        assert_eq!(
            shown(bad_query.into()),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong".into()
            )
        );
        let template = RenderError {
            name: "admin/audit.html".into(),
            message: "undefined value".into(),
        };
        assert_eq!(
            shown(CommandError::Render(template).into()),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong".into()
            ),
            "a template error is ours, not the database's"
        );
        assert_eq!(
            shown(ConsoleError::NotFound(Missing::Window)),
            (StatusCode::NOT_FOUND, "No such window".into())
        );
    }

    #[test]
    fn causes_are_never_shown() {
        let resp = ConsoleError::Internal("password=hunter2 in a query".into()).into_response();
        let p = resp.extensions().get::<Problem>().unwrap();
        assert!(!p.message.contains("hunter2"));
    }
}
