//! Signing in and out, the sign-in check on every console route, and the CSRF check on every
//! POST (a synchronizer token kept in the server-side session).

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Form;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower_sessions::Session;

use super::error::ConsoleError;
use super::{base, render, see_other};
use crate::app::App;
use crate::commands::{console, Actor, CommandError};
use crate::store::operators::{self, Operator};
use crate::store::throttle;

const OPERATOR_KEY: &str = "operator_id";
const CSRF_KEY: &str = "csrf";
/// The operator's session epoch when this session signed in; a reset password or a disabled
/// operator raises it, which ends the session.
const EPOCH_KEY: &str = "epoch";
/// The largest console form body read when checking its CSRF token.
const MAX_FORM: usize = 256 * 1024;

fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The session's CSRF token, made on first use.
pub async fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF_KEY).await {
        return t;
    }
    let t = new_token();
    if let Err(e) = session.insert(CSRF_KEY, &t).await {
        tracing::warn!(error = %e, "cannot store the console CSRF token");
    }
    t
}

/// The signed-in operator, put in the request by [`require_operator`].
#[derive(Clone)]
pub struct Signed {
    pub operator: Operator,
    pub csrf: String,
    pub session: Session,
}

impl Signed {
    pub fn actor(&self) -> crate::commands::Actor {
        crate::commands::Actor::operator(&self.operator.email)
    }
}

impl axum::extract::FromRequestParts<App> for Signed {
    type Rejection = ConsoleError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _app: &App,
    ) -> Result<Self, ConsoleError> {
        parts.extensions.get::<Signed>().cloned().ok_or_else(|| {
            ConsoleError::Internal("a console route without the sign-in check".into())
        })
    }
}

/// The operator this session is signed in as: enabled, and signed in under their current
/// session epoch (a password reset or a disable since then ends the session).
async fn signed_operator(
    app: &App,
    session: &Session,
) -> Result<Option<Operator>, crate::store::StoreError> {
    let Ok(Some(id)) = session.get::<i64>(OPERATOR_KEY).await else {
        return Ok(None);
    };
    let mut conn = app.db.pool().acquire().await?;
    let Some(operator) = operators::get(&mut conn, id).await? else {
        return Ok(None);
    };
    let epoch = session
        .get::<i64>(EPOCH_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    Ok((operator.session_epoch == epoch).then_some(operator))
}

/// Lets a request through only with a session of an enabled operator; otherwise sends the
/// browser to the sign-in page (scripts get 401).
pub async fn require_operator(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let session = req.extensions().get::<Session>().cloned();
    let mut signed = None;
    if let Some(session) = session {
        match signed_operator(&app, &session).await {
            Ok(Some(operator)) => {
                let csrf = csrf_token(&session).await;
                signed = Some(Signed {
                    operator,
                    csrf,
                    session,
                })
            }
            Ok(None) => {}
            Err(e) => return super::error::render(&app, None, "", e.into()),
        }
    }
    let Some(signed) = signed else {
        let wants_json = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        if wants_json || req.method() != Method::GET {
            let mut resp = see_other("/admin/login");
            *resp.status_mut() = StatusCode::UNAUTHORIZED;
            return resp;
        }
        let next_path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/admin".into());
        let to = format!(
            "/admin/login?next={}",
            url::form_urlencoded::byte_serialize(next_path.as_bytes()).collect::<String>()
        );
        return see_other(&to);
    };
    req.extensions_mut().insert(signed);
    next.run(req).await
}

/// "1 second", "40 seconds", "2 minutes": how long until the next attempt, rounded up.
fn wait_words(d: chrono::Duration) -> String {
    let secs = (d.num_milliseconds().max(1000) + 999) / 1000;
    match secs {
        1 => "1 second".into(),
        2..=59 => format!("{secs} seconds"),
        _ => crate::domain::text::human_duration(chrono::Duration::seconds(secs + 59)),
    }
}

/// Lets only admins through (runs after [`require_operator`]); a responder is told what the
/// page is for and whom to ask.
pub async fn require_admin(req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let admin = req
        .extensions()
        .get::<Signed>()
        .is_some_and(|s| s.operator.is_admin());
    if admin {
        return next.run(req).await;
    }
    ConsoleError::Refused {
        status: StatusCode::FORBIDDEN,
        title: "Admins only",
        message: "Operators, API tokens and subscribers are managed by admins. Ask an admin if you need a change here.".into(),
    }
    .into_response()
}

fn same(a: &str, b: &str) -> bool {
    // Compare digests, so the time taken says nothing about the token.
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// Refuses any POST whose `csrf` form field (or `X-CSRF-Token` header) is not this session's
/// token.
pub async fn csrf(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let expected = match req.extensions().get::<Session>() {
        Some(s) => s.get::<String>(CSRF_KEY).await.ok().flatten(),
        None => None,
    };
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
        Ok(b) => b,
        Err(_) => return refuse("The form is too large."),
    };
    let given = header_token.or_else(|| {
        url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
    });
    match (expected, given) {
        (Some(e), Some(g)) if same(&e, &g) => {
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        _ => refuse("This form has expired or did not come from this console. Go back, reload the page and send it again."),
    }
}

fn refuse(message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Form refused</title></head>\
         <body><h1>Form refused</h1><p>{message}</p><p><a href=\"/admin\">Back to the console</a></p></body></html>"
    );
    let mut resp =
        (StatusCode::FORBIDDEN, axum::response::Html(body)).into_response_with_no_store();
    resp.headers_mut().insert(
        "x-candor-refused",
        axum::http::HeaderValue::from_static("csrf"),
    );
    resp
}

trait NoStore {
    fn into_response_with_no_store(self) -> Response;
}

impl<T: axum::response::IntoResponse> NoStore for T {
    fn into_response_with_no_store(self) -> Response {
        let mut r = self.into_response();
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        r
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a path inside the console may be a redirect target.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/admin") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/admin".into(),
    }
}

pub async fn login_form(
    State(app): State<App>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Response {
    if let Ok(Some(_)) = signed_operator(&app, &session).await {
        return see_other(&safe_next(q.next.as_deref()));
    }
    let csrf = csrf_token(&session).await;
    login_page(&app, &csrf, StatusCode::OK, q.next.as_deref(), "", None)
}

fn login_page(
    app: &App,
    csrf: &str,
    status: StatusCode,
    next: Option<&str>,
    email: &str,
    error: Option<String>,
) -> Response {
    let mut ctx = base(app, None, csrf);
    ctx.insert("next".into(), json!(safe_next(next)));
    ctx.insert("email".into(), json!(email));
    ctx.insert("error".into(), json!(error));
    render(app, status, "admin/login.html", ctx)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /admin/login`. One attempt is reserved on the client's, the account's and the
/// account-from-this-client keys before the password is checked (see [`throttle`]); a key whose
/// free attempts are spent answers 429 with `Retry-After` until its delay has passed.
pub async fn login(
    State(app): State<App>,
    session: Session,
    crate::http::client_addr::ClientAddr(client): crate::http::client_addr::ClientAddr,
    Form(f): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let csrf = csrf_token(&session).await;
    let email = f.email.trim().to_lowercase();
    let now = app.clock.now();
    let keys = throttle::keys(&email, client);
    let mut unit = app.begin().await?;
    let wait = console::reserve_sign_in(unit.tx(), &keys, now).await?;
    unit.commit().await?;
    if let Some(until) = wait {
        let seconds = (until - now).num_seconds().max(1);
        let mut resp = login_page(
            &app,
            &csrf,
            StatusCode::TOO_MANY_REQUESTS,
            f.next.as_deref(),
            &email,
            Some(format!(
                "Too many failed sign-ins for this account or from this network. Try again in {}; \
                 an admin can unlock the account at once.",
                wait_words(until - now)
            )),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        return Ok(resp);
    }
    let creds = async {
        let mut conn = app.db.pool().acquire().await?;
        operators::credentials(&mut conn, &email).await
    }
    .await?;
    let password = f.password;
    let (operator, hash) = match creds {
        Some((o, h)) => (Some(o), h),
        None => (None, operators::decoy_hash().to_string()),
    };
    let ok = tokio::task::spawn_blocking(move || operators::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let mut unit = app.begin().await?;
    let outcome = match operator {
        Some(o) if ok => {
            console::sign_in(unit.tx(), &Actor::operator(&o.email), &keys, now).await?;
            Some(o)
        }
        _ => {
            console::sign_in_failed(unit.tx(), &email, client, now).await?;
            None
        }
    };
    unit.commit().await?;
    Ok(match outcome {
        None => login_page(
            &app,
            &csrf,
            StatusCode::UNAUTHORIZED,
            f.next.as_deref(),
            &email,
            Some("That email and password do not match an operator.".to_string()),
        ),
        Some(operator) => {
            // A new session id on sign-in, so one planted before it is worth nothing.
            let signed_in = async {
                session.cycle_id().await?;
                session.insert(OPERATOR_KEY, operator.id).await?;
                session.insert(EPOCH_KEY, operator.session_epoch).await?;
                session.insert(CSRF_KEY, new_token()).await?;
                Ok::<_, tower_sessions::session::Error>(())
            }
            .await;
            if let Err(e) = signed_in {
                tracing::error!(error = %e, "cannot start a console session");
                return Err(ConsoleError::Refused {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    title: "Cannot sign in",
                    message: "The session could not be stored. Try again in a moment.".into(),
                });
            }
            let store = super::store(&app);
            if let Err(e) = store.delete_expired().await {
                tracing::warn!(error = %e, "cannot delete expired console sessions");
            }
            see_other(&safe_next(f.next.as_deref()))
        }
    })
}

/// `POST /admin/logout`: ends the session everywhere (it is deleted from the database).
pub async fn logout(State(app): State<App>, signed: Signed) -> Response {
    let now = app.clock.now();
    let recorded = async {
        let mut unit = app.begin().await?;
        console::sign_out(unit.tx(), &signed.actor(), now).await?;
        unit.commit().await?;
        Ok::<_, CommandError>(())
    }
    .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "cannot record a console sign-out");
    }
    if let Err(e) = signed.session.flush().await {
        tracing::error!(error = %e, "cannot delete a console session");
    }
    see_other("/admin/login")
}
