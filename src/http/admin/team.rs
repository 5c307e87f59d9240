//! `/admin/operators` and `/admin/tokens` (admins only): the team's sign-ins and the scripts'
//! tokens. Operators are added, disabled, enabled, given another role, a new password (shown
//! once, and every session of theirs ends), unlocked or removed; tokens are created with
//! scopes (shown once) and revoked. Every change is a command of `commands::operators` or
//! `commands::tokens`, audited under the signed-in admin.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;

use super::error::ConsoleError;
use super::session::Signed;
use super::{base, render, see_other};
use crate::app::App;
use crate::commands::operators::{self as command, Change, NewOperator};
use crate::commands::{tokens as token_command, CommandError};
use crate::render::views;
use crate::store::operators::{self, Role};
use crate::store::tokens::{self, Scope};
use crate::store::{throttle, StoreError};

/// The confirmation after a change to an operator.
fn done_words(change: &Change, email: &str) -> String {
    match change {
        Change::Disable => format!("{email} was disabled and signed out everywhere."),
        Change::Enable => format!("{email} can sign in again."),
        Change::Remove => format!("{email} was removed."),
        Change::Role(r) => format!("{email} is now {}.", r.as_str()),
        Change::Password(_) => format!("{email} has a new password; their sessions have ended."),
        Change::Unlock => {
            format!("{email}'s failed sign-ins were forgotten; they can sign in at once.")
        }
    }
}

/// A password nobody chose: 120 random bits, shown once to the admin who reset it.
fn temporary_password() -> String {
    let mut b = [0u8; 15];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A refused change in the console's words (the field names are the form's labels).
fn refused(e: CommandError) -> ConsoleError {
    match e {
        CommandError::Invalid(i) => ConsoleError::Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            title: "Not changed",
            message: i.message,
        },
        other => other.into(),
    }
}

/// `GET /admin/operators`
pub async fn operators_page(
    State(app): State<App>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let now = app.clock.now();
    let zone = app.config.site.time_zone;
    let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
    let mut rows = Vec::new();
    for o in operators::list(&mut conn).await? {
        let throttled = throttle::account_state(&mut conn, &o.email, now).await?;
        rows.push(json!({
            "id": o.id, "email": o.email, "role": o.role, "admin": o.is_admin(),
            "me": o.id == signed.operator.id,
            "added": views::time(o.created_at, now, zone),
            "disabled": o.disabled_at.map(|t| views::time(t, now, zone)),
            "failed_recently": throttled.recent_attempts,
            "slowed_until": throttled.delayed_until.map(|t| views::time(t, now, zone)),
        }));
    }
    drop(conn);
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    ctx.insert("operators".into(), json!(rows));
    Ok(render(&app, StatusCode::OK, "admin/operators.html", ctx))
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /admin/operators/new`: adds an operator with a temporary password, shown once.
pub async fn add_operator(
    State(app): State<App>,
    signed: Signed,
    Form(f): Form<AddForm>,
) -> Result<Response, ConsoleError> {
    let role: Role = f.role.parse().map_err(ConsoleError::bad_request)?;
    let email = command::check_email(&f.email)
        .map_err(|i| ConsoleError::bad_request(format!("Email: {}", i.message)))?;
    {
        let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
        if operators::by_email(&mut conn, &email).await?.is_some() {
            return Err(ConsoleError::conflict(
                "Already an operator",
                format!(
                    "{email} is already an operator; use “Reset password” on their row instead."
                ),
            ));
        }
    }
    let password = temporary_password();
    let (em, pw) = (email.clone(), password.clone());
    let new = tokio::task::spawn_blocking(move || NewOperator::new(&em, role, &pw))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?
        .map_err(|i| ConsoleError::bad_request(i.message))?;
    let mut unit = app.begin().await?;
    command::add(unit.tx(), &signed.actor(), &new, app.clock.now()).await?;
    unit.commit().await?;
    Ok(shown_once(
        &app,
        &signed,
        "Operator added",
        &format!("{email} can now sign in as {} with this password. Pass it on by a private channel; it is shown only once. They should change it by asking an admin for a reset if it was seen by anyone else.", role.as_str()),
        &password,
        "/admin/operators",
    ))
}

#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    role: Option<String>,
    confirm: Option<String>,
}

/// `POST /admin/operators/{id}/{action}`: disable, enable, role, reset-password, unlock, remove.
pub async fn change_operator(
    State(app): State<App>,
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<ChangeForm>,
) -> Result<Response, ConsoleError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ConsoleError::bad_request("That is not an operator's number."))?;
    let target = {
        let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
        operators::list(&mut conn)
            .await?
            .into_iter()
            .find(|o| o.id == id)
    }
    .ok_or_else(|| ConsoleError::Refused {
        status: StatusCode::NOT_FOUND,
        title: "No such operator",
        message: "That operator does not exist (any more).".into(),
    })?;
    let mut password = None;
    let change = match action.as_str() {
        "disable" => Change::Disable,
        "enable" => Change::Enable,
        "unlock" => Change::Unlock,
        "role" => Change::Role(
            f.role
                .as_deref()
                .unwrap_or_default()
                .parse()
                .map_err(ConsoleError::bad_request)?,
        ),
        "remove" => {
            super::ticked(
                f.confirm.as_deref(),
                format!(
                    "Tick “Yes, remove {} for good” to remove them.",
                    target.email
                ),
            )?;
            Change::Remove
        }
        "reset-password" => {
            let pw = temporary_password();
            password = Some(pw.clone());
            let hash = tokio::task::spawn_blocking(move || command::hash_new_password(&pw))
                .await
                .map_err(|e| ConsoleError::Internal(e.to_string()))?
                .map_err(|i| ConsoleError::Internal(i.message))?;
            Change::Password(hash)
        }
        _ => {
            return Err(ConsoleError::Refused {
                status: StatusCode::NOT_FOUND,
                title: "No such action",
                message: format!(
                    "There is no “{}” for operators.",
                    crate::channels::truncate(&action, 40)
                ),
            })
        }
    };
    let mut unit = app.begin().await?;
    command::change(
        unit.tx(),
        &signed.actor(),
        &target.email,
        &change,
        app.clock.now(),
    )
    .await
    .map_err(refused)?;
    unit.commit().await?;
    match password {
        Some(pw) => Ok(shown_once(
            &app,
            &signed,
            "Password reset",
            &format!("{}'s sessions have ended. Their new password is below; pass it on by a private channel. It is shown only once.", target.email),
            &pw,
            "/admin/operators",
        )),
        None => {
            super::flash(&signed.session, done_words(&change, &target.email)).await;
            Ok(see_other("/admin/operators"))
        }
    }
}

/// A secret shown once (a new password or token), never cached.
fn shown_once(
    app: &App,
    signed: &Signed,
    title: &str,
    message: &str,
    secret: &str,
    back: &str,
) -> Response {
    let mut ctx = base(app, Some(&signed.operator), &signed.csrf);
    ctx.insert("title".into(), json!(title));
    ctx.insert("message".into(), json!(message));
    ctx.insert("secret".into(), json!(secret));
    ctx.insert("back".into(), json!(back));
    render(app, StatusCode::OK, "admin/shown_once.html", ctx)
}

/// `GET /admin/tokens`
pub async fn tokens_page(State(app): State<App>, signed: Signed) -> Result<Response, ConsoleError> {
    let now = app.clock.now();
    let zone = app.config.site.time_zone;
    let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
    let list = tokens::list(&mut conn).await?;
    drop(conn);
    let rows: Vec<_> = list
        .iter()
        .map(|t| {
            json!({
                "name": t.name, "scopes": t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "created_by": t.created_by.as_deref().map(views::actor_name),
                "created": views::time(t.created_at, now, zone),
                "used": t.last_used_at.map(|u| views::time(u, now, zone)),
                "revoked": t.revoked_at.map(|r| views::time(r, now, zone)),
            })
        })
        .collect();
    let defaults = Scope::defaults();
    let scopes: Vec<_> = Scope::ALL
        .iter()
        .map(|s| json!({ "name": s.as_str(), "default": defaults.contains(s) }))
        .collect();
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    ctx.insert("tokens".into(), json!(rows));
    ctx.insert("scopes".into(), json!(scopes));
    Ok(render(&app, StatusCode::OK, "admin/tokens.html", ctx))
}

/// `POST /admin/tokens/new`: the form's `name` and one `scope` field per ticked scope (parsed
/// from the raw body, since a form repeats the field).
pub async fn create_token(
    State(app): State<App>,
    signed: Signed,
    body: axum::body::Bytes,
) -> Result<Response, ConsoleError> {
    let mut name = String::new();
    let mut picked = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "name" => name = v.trim().to_string(),
            "scope" => picked.push(v.into_owned()),
            _ => {}
        }
    }
    let scopes = Scope::parse_list(&picked.join(","))
        .map_err(|e| ConsoleError::bad_request(format!("Scopes: {e}.")))?;
    let mut unit = app.begin().await?;
    let token =
        match token_command::create(unit.tx(), &signed.actor(), &name, &scopes, app.clock.now())
            .await
        {
            Err(CommandError::Store(e)) if e.is_unique_violation("api_tokens") => {
                return Err(ConsoleError::conflict(
                    "Name in use",
                    format!(
                        "A token named “{name}” already exists; pick another name or revoke it."
                    ),
                ))
            }
            Err(CommandError::Invalid(i)) => {
                return Err(ConsoleError::bad_request(format!("Name: {}.", i.message)))
            }
            other => other?,
        };
    unit.commit().await?;
    Ok(shown_once(
        &app,
        &signed,
        "API token created",
        &format!(
            "The token “{name}” may: {}. Send it as `Authorization: Bearer <token>`. It is shown only once; store it now.",
            Scope::join(&scopes).replace(' ', ", ")
        ),
        &token,
        "/admin/tokens",
    ))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    name: String,
    confirm: Option<String>,
}

/// `POST /admin/tokens/revoke`
pub async fn revoke_token(
    State(app): State<App>,
    signed: Signed,
    Form(f): Form<RevokeForm>,
) -> Result<Response, ConsoleError> {
    super::ticked(
        f.confirm.as_deref(),
        "Tick “Yes, revoke it” to revoke the token; scripts using it are refused at once.",
    )?;
    let mut unit = app.begin().await?;
    let revoked =
        token_command::revoke(unit.tx(), &signed.actor(), &f.name, app.clock.now()).await?;
    unit.commit().await?;
    if !revoked {
        return Err(ConsoleError::Refused {
            status: StatusCode::NOT_FOUND,
            title: "No such token",
            message: format!(
                "There is no active token named “{}”.",
                crate::channels::truncate(&f.name, 100)
            ),
        });
    }
    super::flash(
        &signed.session,
        format!(
            "The token “{}” was revoked; scripts using it are refused from now on.",
            crate::channels::truncate(&f.name, 100)
        ),
    )
    .await;
    Ok(see_other("/admin/tokens"))
}
