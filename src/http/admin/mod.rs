//! The operator console under `/admin`: server-rendered forms that work without scripts, a
//! little script for countdowns and previews. Every page needs a signed-in operator; every
//! POST needs the session's CSRF token; every write goes through [`crate::commands`] with the
//! operator as the actor, in a [`crate::commands::Unit`].
//!
//! Layout: one file per page family. Incidents and maintenance windows are folders, each split
//! into `forms.rs` (the form as posted, parsed into a command), `views.rs` (what the templates
//! get) and the handlers (`mod.rs`, `pages.rs`). Every error a handler returns is a
//! [`error::ConsoleError`], turned into the problem page in one place.
//!
//! After every action the handler leaves a confirmation with [`flash`]; the next console page
//! that renders [`base`] shows it once (`role="status"`), and only then is it taken out of the
//! session (a JSON answer or the dashboard's live list do not use it up).
//!
//! Sessions live in Candor's database ([`crate::store::sessions::DbSessionStore`], a
//! tower-sessions store over the same `Any` pool), so they survive restarts and are shared by
//! every web instance.

pub mod audit;
pub mod dashboard;
pub mod error;
pub mod inbox;
pub mod incidents;
pub mod maintenance;
pub mod session;
pub mod subscribers;
pub mod team;

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::app::App;
use crate::render::{views, RenderError};
use crate::store::operators::Operator;
use crate::store::sessions::DbSessionStore;
use error::ConsoleError;

/// Every route that needs a signed-in operator, as (method, path with sample ids). The tests
/// walk this list; the router puts the sign-in check on every route it builds except
/// [`OPEN_ROUTES`], so a route added without the check cannot exist.
pub const PROTECTED_ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin"),
    ("GET", "/admin/live"),
    ("GET", "/admin/incidents/new"),
    ("POST", "/admin/incidents/new"),
    ("GET", "/admin/incidents/1"),
    ("POST", "/admin/incidents/1/update"),
    ("POST", "/admin/incidents/1/resolve"),
    ("POST", "/admin/incidents/1/own"),
    ("GET", "/admin/incidents/1/inbox"),
    ("POST", "/admin/incidents/1/inbox/tell-fixed"),
    ("POST", "/admin/inbox/1/claim"),
    ("POST", "/admin/inbox/1/answer"),
    ("POST", "/admin/incidents/1/correct"),
    ("POST", "/admin/incidents/1/postmortem"),
    ("POST", "/admin/incidents/1/postmortem/publish"),
    ("POST", "/admin/incidents/1/postmortem/actions"),
    ("POST", "/admin/incidents/1/postmortem/actions/done"),
    ("POST", "/admin/preview"),
    ("GET", "/admin/estimates"),
    ("POST", "/admin/deliveries/1/retry"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/audit.csv"),
    ("GET", "/admin/audit.json"),
    ("GET", "/admin/maintenance"),
    ("GET", "/admin/maintenance/new"),
    ("POST", "/admin/maintenance/new"),
    ("GET", "/admin/maintenance/2"),
    ("POST", "/admin/maintenance/2/edit"),
    ("POST", "/admin/maintenance/2/extend"),
    ("POST", "/admin/maintenance/2/complete"),
    ("POST", "/admin/maintenance/2/cancel"),
    ("POST", "/admin/maintenance/2/incident"),
    ("POST", "/admin/logout"),
];

/// Routes only admins may use (a responder gets 403): operators, API tokens, subscribers. They
/// need a session too, like [`PROTECTED_ROUTES`].
pub const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin/subscribers"),
    ("POST", "/admin/subscribers/1/remove"),
    ("POST", "/admin/subscribers/1/resend"),
    ("GET", "/admin/operators"),
    ("POST", "/admin/operators/new"),
    ("POST", "/admin/operators/1/disable"),
    ("GET", "/admin/tokens"),
    ("POST", "/admin/tokens/new"),
    ("POST", "/admin/tokens/revoke"),
];

/// The only console routes reachable without a session.
pub const OPEN_ROUTES: &[(&str, &str)] = &[("GET", "/admin/login"), ("POST", "/admin/login")];

/// How long a console session lasts without activity.
pub const SESSION_IDLE: time::Duration = time::Duration::hours(12);

pub fn router(app: &App) -> Router<App> {
    let admin_only = Router::new()
        .route("/admin/subscribers", get(subscribers::page))
        .route("/admin/subscribers/{id}/remove", post(subscribers::remove))
        .route("/admin/subscribers/{id}/resend", post(subscribers::resend))
        .route("/admin/operators", get(team::operators_page))
        .route("/admin/operators/new", post(team::add_operator))
        .route(
            "/admin/operators/{id}/{action}",
            post(team::change_operator),
        )
        .route("/admin/tokens", get(team::tokens_page))
        .route("/admin/tokens/new", post(team::create_token))
        .route("/admin/tokens/revoke", post(team::revoke_token))
        .route_layer(axum::middleware::from_fn(session::require_admin));
    let protected = Router::new()
        .route("/admin", get(dashboard::page))
        .route("/admin/live", get(dashboard::live))
        .route(
            "/admin/incidents/new",
            get(incidents::new_form).post(incidents::declare),
        )
        .route("/admin/incidents/{id}", get(incidents::show))
        .route("/admin/incidents/{id}/update", post(incidents::update))
        .route("/admin/incidents/{id}/resolve", post(incidents::resolve))
        .route("/admin/incidents/{id}/correct", post(incidents::correct))
        .route(
            "/admin/incidents/{id}/postmortem",
            post(incidents::postmortem::save),
        )
        .route(
            "/admin/incidents/{id}/postmortem/publish",
            post(incidents::postmortem::publish),
        )
        .route(
            "/admin/incidents/{id}/postmortem/actions",
            post(incidents::postmortem::add_action),
        )
        .route(
            "/admin/incidents/{id}/postmortem/actions/done",
            post(incidents::postmortem::complete_action),
        )
        .route("/admin/incidents/{id}/own", post(dashboard::take_ownership))
        .route("/admin/incidents/{id}/inbox", get(inbox::page))
        .route(
            "/admin/incidents/{id}/inbox/tell-fixed",
            post(inbox::tell_fixed),
        )
        .route("/admin/inbox/{id}/claim", post(inbox::claim))
        .route("/admin/inbox/{id}/answer", post(inbox::answer))
        .route("/admin/preview", post(incidents::preview))
        .route("/admin/estimates", get(incidents::estimates))
        .route("/admin/deliveries/{id}/retry", post(incidents::retry))
        .route("/admin/audit", get(audit::page))
        .route("/admin/audit.csv", get(audit::export_csv))
        .route("/admin/audit.json", get(audit::export_json))
        .route("/admin/maintenance", get(maintenance::list))
        .route(
            "/admin/maintenance/new",
            get(maintenance::new_form).post(maintenance::create),
        )
        .route("/admin/maintenance/{id}", get(maintenance::show))
        .route("/admin/maintenance/{id}/edit", post(maintenance::edit))
        .route("/admin/maintenance/{id}/extend", post(maintenance::extend))
        .route(
            "/admin/maintenance/{id}/complete",
            post(maintenance::complete),
        )
        .route("/admin/maintenance/{id}/cancel", post(maintenance::cancel))
        .route(
            "/admin/maintenance/{id}/incident",
            post(maintenance::to_incident),
        )
        .route("/admin/logout", post(session::logout))
        .merge(admin_only)
        // The last route_layer runs first: sign-in, then CSRF, then errors become problem pages
        // (innermost, so it knows the signed-in operator).
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            error::problem_pages,
        ))
        .route_layer(axum::middleware::from_fn(session::csrf))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            session::require_operator,
        ))
        .route_layer(axum::middleware::from_fn(carry_flash));
    let open = Router::new()
        .route(
            "/admin/login",
            get(session::login_form).post(session::login),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            error::problem_pages,
        ))
        .route_layer(axum::middleware::from_fn(session::csrf))
        .route_layer(axum::middleware::from_fn(carry_flash));
    let secure = app.config.site.public_url.scheme() == "https";
    let sessions = SessionManagerLayer::new(store(app))
        .with_name("candor_console")
        .with_path("/admin")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(SESSION_IDLE))
        // Every request moves the expiry on, so a session ends after idleness, not after a
        // fixed time from sign-in.
        .with_always_save(true);
    protected
        .merge(open)
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            error::unavailable_pages,
        ))
}

/// The console's session store.
pub fn store(app: &App) -> DbSessionStore {
    DbSessionStore::new(
        app.db.clone(),
        app.clock.clone(),
        chrono::Duration::seconds(SESSION_IDLE.whole_seconds()),
    )
}

/// What every console page's template gets.
pub fn base(app: &App, operator: Option<&Operator>, csrf: &str) -> serde_json::Map<String, Value> {
    let now = app.clock.now();
    let mut m = serde_json::Map::new();
    m.insert("site".into(), views::site_view(&app.config));
    m.insert(
        "operator".into(),
        operator.map_or(Value::Null, |o| json!({ "email": o.email, "role": o.role })),
    );
    m.insert("csrf".into(), json!(csrf));
    m.insert(
        "now".into(),
        json!(views::time(now, now, app.config.site.time_zone)),
    );
    m.insert("zone".into(), json!(app.config.site.time_zone.name()));
    m.insert("flash".into(), json!(shown_flash()));
    m
}

const FLASH_KEY: &str = "flash";

/// Leaves `message` for the operator's next console page, e.g.
/// `flash(&signed.session, "Incident #12 declared; posted to 4 channels").await`. A message
/// already waiting is kept in front of it. Never fails: a session that cannot be written is
/// logged and the confirmation is lost, never the action.
pub async fn flash(session: &Session, message: impl Into<String>) {
    let message = message.into();
    let text = match session.get::<String>(FLASH_KEY).await {
        Ok(Some(earlier)) if !earlier.is_empty() => format!("{earlier} {message}"),
        _ => message,
    };
    if let Err(e) = session.insert(FLASH_KEY, text).await {
        tracing::warn!(error = %e, "cannot store a console confirmation");
    }
}

/// "; posted to 3 channels": how many channels got a message about incident (or window) `id`
/// queued at `since` (the command's `now`). Empty when none was, or it cannot be read.
pub async fn posted_to(app: &App, id: i64, since: chrono::DateTime<chrono::Utc>) -> String {
    let found = async {
        let mut conn = app.db.pool().acquire().await?;
        crate::store::deliveries::for_incident(&mut conn, id).await
    }
    .await;
    let mut channels: Vec<String> = match found {
        Ok(ds) => ds
            .into_iter()
            .filter(|d| d.created_at >= since)
            .map(|d| d.channel)
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot count the channels posted to");
            return String::new();
        }
    };
    channels.sort();
    channels.dedup();
    match channels.len() {
        0 => String::new(),
        1 => "; posted to 1 channel".into(),
        n => format!("; posted to {n} channels"),
    }
}

/// The flash waiting for this request, and whether a page showed it.
#[derive(Default)]
struct FlashSlot {
    message: Option<String>,
    shown: bool,
}

tokio::task_local! {
    static FLASH: Arc<Mutex<FlashSlot>>;
}

/// The waiting confirmation, marked as shown; called by [`base`], so only pages show it.
fn shown_flash() -> Option<String> {
    FLASH
        .try_with(|slot| {
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            slot.shown = slot.message.is_some();
            slot.message.clone()
        })
        .ok()
        .flatten()
}

/// Hands a GET request's waiting confirmation to [`base`], and takes it out of the session
/// once a page (a 2xx answer that rendered [`base`]) showed it.
async fn carry_flash(req: Request, next: Next) -> Response {
    let session = req.extensions().get::<Session>().cloned();
    let Some(session) = session.filter(|_| req.method() == Method::GET) else {
        return next.run(req).await;
    };
    let message = session.get::<String>(FLASH_KEY).await.ok().flatten();
    if message.is_none() {
        return next.run(req).await;
    }
    let slot = Arc::new(Mutex::new(FlashSlot {
        message,
        shown: false,
    }));
    let resp = FLASH.scope(slot.clone(), next.run(req)).await;
    let shown = slot.lock().map(|s| s.shown).unwrap_or(false);
    if shown && resp.status().is_success() {
        if let Err(e) = session.remove::<String>(FLASH_KEY).await {
            tracing::warn!(error = %e, "cannot clear a console confirmation");
        }
    }
    resp
}

/// A console page: never cached, never framed. A template that fails is the problem page.
pub fn render(
    app: &App,
    status: StatusCode,
    name: &str,
    ctx: serde_json::Map<String, Value>,
) -> Response {
    render_page(app, status, name, ctx).unwrap_or_else(|e| ConsoleError::from(e).into_response())
}

/// [`render`], with the template's error returned.
pub fn render_page(
    app: &App,
    status: StatusCode,
    name: &str,
    ctx: serde_json::Map<String, Value>,
) -> Result<Response, RenderError> {
    let body = app.renderer.render_page(name, Value::Object(ctx))?;
    let mut resp = (status, Html(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    Ok(resp)
}

/// A short error page with a way back.
pub fn problem(
    app: &App,
    operator: Option<&Operator>,
    csrf: &str,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    let mut ctx = base(app, operator, csrf);
    ctx.insert("title".into(), json!(title));
    ctx.insert("message".into(), json!(message));
    render(app, status, "admin/problem.html", ctx)
}

/// Lets a removal for good through only when the form's confirmation box (`confirm=yes`) was
/// ticked; otherwise 400 with `message`, which names the box. Browsers check the box's
/// `required` too, but a form posted without it must not remove anything.
pub fn ticked(confirm: Option<&str>, message: impl Into<String>) -> Result<(), ConsoleError> {
    if confirm == Some("yes") {
        Ok(())
    } else {
        Err(ConsoleError::bad_request(message))
    }
}

/// 303 See Other: after a successful POST, so a reload does not post twice.
pub fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}
