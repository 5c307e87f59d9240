//! Email subscriptions: the status page's form, `POST /api/v1/subscribers`, the double opt-in
//! confirmation, the one-click unsubscribe (RFC 8058), and operators' API (counts, list,
//! remove, send the confirmation again).
//!
//! A subscription request is answered the same way whether the address is new, pending,
//! confirmed or unsubscribed, and the confirmation mail is sent after the answer, so neither the
//! answer nor its timing says whether an address is known. Links in mail are followed by
//! scanners, so a GET never changes anything: it shows a button that POSTs.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::ApiCaller;
use super::error::ApiError;
use super::extract::ApiJson;
use crate::app::App;
use crate::domain::subscriber::SubscriberEmail;
use crate::domain::to_chrono;
use crate::render::pages;
use crate::store::subscribers::{self, Subscribed};

/// A pending address is sent a confirmation at most this often, however often it is entered.
const RESEND_AFTER_SECS: i64 = 60;

/// Public pages: the form's target, confirmation and unsubscribe links.
pub fn public_router() -> Router<App> {
    Router::new()
        .route("/subscribe", post(subscribe_form))
        .route(
            "/subscribe/confirm/{token}",
            get(confirm_page).post(confirm),
        )
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
}

/// Under `/api/v1`.
pub fn api_router() -> Router<App> {
    Router::new()
        .route("/subscribers", post(subscribe_api).get(list))
        .route("/subscribers/counts", get(counts))
        .route("/subscribers/{id}", delete(remove))
        .route("/subscribers/{id}/confirmation", post(resend))
        .route("/deliveries/{id}/reach", get(reach))
}

fn email_channel(
    app: &App,
) -> Result<&std::sync::Arc<crate::channels::email::EmailChannel>, ApiError> {
    app.email.as_ref().ok_or_else(|| {
        ApiError::NotFound("email subscriptions are not enabled on this site".into())
    })
}

/// Validates a request and records it; sends the confirmation in the background when one is
/// due. Answers nothing about the address.
async fn request(
    app: &App,
    email: &str,
    components: Option<Vec<String>>,
    field: &str,
) -> Result<(), ApiError> {
    let channel = email_channel(app)?;
    let email = SubscriberEmail::parse(email)
        .map_err(|e| ApiError::unprocessable("invalid_field", format!("{field}email: {e}")))?;
    let components = components.filter(|c| !c.is_empty());
    if let Some(list) = &components {
        for (i, c) in list.iter().enumerate() {
            if app.config.component(c).is_none() {
                return Err(ApiError::unprocessable(
                    "invalid_field",
                    format!(
                        "{field}components[{i}]: unknown component `{}`",
                        super::api::clip(c, 40)
                    ),
                ));
            }
        }
    }
    if channel.subscribe_limiter.check().is_err() {
        return Err(ApiError::TooManyRequests(
            "too many subscription requests just now; try again in a minute".into(),
        ));
    }
    let now = app.clock.now();
    let expires = now + to_chrono(channel.confirm_within());
    let resend_after = now - chrono::Duration::seconds(RESEND_AFTER_SECS);
    let outcome = {
        let mut conn = app.db.write_conn().await?;
        subscribers::subscribe(
            &mut conn,
            &email,
            components.as_deref(),
            now,
            expires,
            resend_after,
        )
        .await?
    };
    if let Subscribed::SendConfirmation { id, token } = outcome {
        let channel = channel.clone();
        let config = app.config.clone();
        tokio::spawn(async move {
            match channel
                .send_confirmation(&email, &token, components.as_deref(), &config, now)
                .await
            {
                Ok(()) => {
                    tracing::info!(subscriber.id = id, to = %email.masked(), "confirmation mail sent")
                }
                Err(e) => {
                    tracing::warn!(subscriber.id = id, to = %email.masked(), error = %e, "confirmation mail failed; an operator can send it again")
                }
            }
        });
    }
    Ok(())
}

const ACCEPTED: &str = "If this address can receive mail, a confirmation link is on its way. Nothing else is sent until it is followed.";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    email: String,
    /// Component ids; leave out (or empty) for every component.
    #[serde(default)]
    components: Option<Vec<String>>,
}

/// `POST /api/v1/subscribers` (public): `{"email": "...", "components": ["api"]}`. Always 202.
async fn subscribe_api(
    State(app): State<App>,
    ApiJson { value, .. }: ApiJson<SubscribeBody>,
) -> Result<Response, ApiError> {
    request(&app, &value.email, value.components, "").await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "pending_confirmation", "message": ACCEPTED })),
    )
        .into_response())
}

/// The status page's form (`email`, and `components` once per ticked box).
async fn subscribe_form(State(app): State<App>, body: Bytes) -> Response {
    let mut email = String::new();
    let mut components = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "email" => email = v.into_owned(),
            "components" => components.push(v.into_owned()),
            _ => {}
        }
    }
    match request(&app, &email, Some(components), "").await {
        Ok(()) => page(&app, StatusCode::OK, "Check your inbox", ACCEPTED, None),
        Err(e @ ApiError::Unprocessable { .. }) => page(
            &app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check the form",
            &e.to_string(),
            None,
        ),
        Err(e @ ApiError::TooManyRequests(_)) => page(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            "Please try again shortly",
            &e.to_string(),
            None,
        ),
        Err(e) => {
            let status = e.into_response().status();
            page(
                &app,
                status,
                "Something went wrong",
                "Your request could not be recorded; please try again.",
                None,
            )
        }
    }
}

fn page(
    app: &App,
    status: StatusCode,
    title: &str,
    message: &str,
    action: Option<(&str, &str)>,
) -> Response {
    match pages::subscribe_page(&app.config, &app.renderer, title, message, action) {
        Ok(body) => (
            status,
            [
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
            ],
            Html(body),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "subscription page template failed");
            (status, message.to_string()).into_response()
        }
    }
}

fn plausible(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 200
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

async fn confirm_page(State(app): State<App>, Path(token): Path<String>) -> Response {
    if !plausible(&token) {
        return page(
            &app,
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This confirmation link is not valid.",
            None,
        );
    }
    let action = format!("/subscribe/confirm/{token}");
    page(
        &app,
        StatusCode::OK,
        "Confirm your subscription",
        "Press the button to start receiving status updates by email.",
        Some((&action, "Confirm my subscription")),
    )
}

async fn confirm(State(app): State<App>, Path(token): Path<String>) -> Response {
    if !plausible(&token) {
        return page(
            &app,
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This confirmation link is not valid.",
            None,
        );
    }
    let done = async {
        let mut conn = app.db.write_conn().await?;
        subscribers::confirm(&mut conn, &token, app.clock.now()).await
    }
    .await;
    match done {
        Ok(true) => {
            tracing::info!("subscription confirmed");
            page(&app, StatusCode::OK, "You are subscribed", "You will receive status updates by email. Every mail has a link to unsubscribe.", None)
        }
        Ok(false) => page(&app, StatusCode::NOT_FOUND, "Link expired or already used", "This confirmation link has expired or was already used. Subscribe again from the status page to get a new one.", None),
        Err(e) => {
            tracing::warn!(error = %e, "could not confirm a subscription");
            page(&app, StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable", "Please try again shortly.", None)
        }
    }
}

async fn unsubscribe_page(State(app): State<App>, Path(token): Path<String>) -> Response {
    if !plausible(&token) || subscribers::token_id(&token).is_none() {
        return page(
            &app,
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This unsubscribe link is not valid.",
            None,
        );
    }
    let action = format!("/unsubscribe/{token}");
    page(
        &app,
        StatusCode::OK,
        "Unsubscribe",
        "Press the button to stop receiving status updates by email.",
        Some((&action, "Unsubscribe")),
    )
}

/// The one-click unsubscribe (RFC 8058): mail providers POST `List-Unsubscribe=One-Click` here
/// without cookies and expect an answer, not a redirect. The status page's button posts here too.
async fn unsubscribe(State(app): State<App>, Path(token): Path<String>) -> Response {
    let Some(channel) = app.email.clone() else {
        return page(
            &app,
            StatusCode::NOT_FOUND,
            "Not found",
            "Email subscriptions are not enabled.",
            None,
        );
    };
    if !plausible(&token) {
        return page(
            &app,
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This unsubscribe link is not valid.",
            None,
        );
    }
    let done = async {
        let mut conn = app.db.write_conn().await?;
        subscribers::unsubscribe(
            &mut conn,
            channel.unsubscribe_key(),
            &token,
            app.clock.now(),
        )
        .await
    }
    .await;
    match done {
        Ok(true) => {
            tracing::info!(
                subscriber.id = subscribers::token_id(&token),
                "unsubscribed"
            );
            page(
                &app,
                StatusCode::OK,
                "You are unsubscribed",
                "You will receive no more status updates by email.",
                None,
            )
        }
        Ok(false) => page(
            &app,
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This unsubscribe link is not valid.",
            None,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not unsubscribe");
            page(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Please try again shortly.",
                None,
            )
        }
    }
}

/// `GET /api/v1/subscribers/counts`: confirmed, pending and unsubscribed, and confirmed by
/// component (for the console).
async fn counts(State(app): State<App>, _caller: ApiCaller) -> Result<Response, ApiError> {
    email_channel(&app)?;
    let ids: Vec<&str> = app
        .config
        .components
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    let mut conn = app.db.pool().acquire().await?;
    let c = subscribers::counts(&mut conn, &ids).await?;
    Ok(Json(c).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/v1/subscribers?after=ID&limit=N`: subscribers by id, a page at a time.
async fn list(
    State(app): State<App>,
    _caller: ApiCaller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    email_channel(&app)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    let mut conn = app.db.pool().acquire().await?;
    let rows = subscribers::list(&mut conn, q.after.unwrap_or(0), limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(json!({ "subscribers": rows, "next_after": next })).into_response())
}

/// `GET /api/v1/deliveries/{id}/reach`: how many subscribers an email delivery has reached so
/// far (`sent`) and how many addresses the server refused for good (`failed`).
async fn reach(
    State(app): State<App>,
    _caller: ApiCaller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    email_channel(&app)?;
    let id = raw.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no delivery with id `{}`",
            super::api::clip(&raw, 40)
        ))
    })?;
    let mut conn = app.db.pool().acquire().await?;
    let r = subscribers::reach(&mut conn, id).await?;
    Ok(Json(json!({ "delivery_id": id, "sent": r.sent, "failed": r.failed })).into_response())
}

fn subscriber_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no subscriber with id `{}`",
            super::api::clip(raw, 40)
        ))
    })
}

/// `DELETE /api/v1/subscribers/{id}`: removes a subscriber for good.
async fn remove(
    State(app): State<App>,
    caller: ApiCaller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    email_channel(&app)?;
    let id = subscriber_id(&raw)?;
    let mut tx = app.db.begin_write().await?;
    if !subscribers::remove(&mut tx, id).await? {
        return Err(ApiError::NotFound(format!("no subscriber with id {id}")));
    }
    crate::store::audit::record(
        &mut tx,
        &caller.0.name,
        "subscriber.remove",
        None,
        &json!({ "subscriber_id": id }),
        app.clock.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/subscribers/{id}/confirmation`: sends a pending subscriber a new confirmation
/// link (the old one stops working).
async fn resend(
    State(app): State<App>,
    _caller: ApiCaller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let channel = email_channel(&app)?.clone();
    let id = subscriber_id(&raw)?;
    let now = app.clock.now();
    let renewed = {
        let mut conn = app.db.write_conn().await?;
        subscribers::renew_confirmation(
            &mut conn,
            id,
            now,
            now + to_chrono(channel.confirm_within()),
        )
        .await?
    };
    let Some((email, token)) = renewed else {
        return Err(ApiError::Conflict {
            code: "not_pending",
            message: format!("subscriber {id} does not exist or is not waiting for confirmation"),
        });
    };
    let components = {
        let mut conn = app.db.pool().acquire().await?;
        subscribers::list(&mut conn, id - 1, 1)
            .await?
            .into_iter()
            .next()
            .and_then(|s| s.components)
    };
    channel
        .send_confirmation(&email, &token, components.as_deref(), &app.config, now)
        .await
        .map_err(|e| {
            ApiError::Internal(format!(
                "the mail server did not take the confirmation: {e}"
            ))
        })?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "sent" }))).into_response())
}
