//! Email subscriptions: the status page's form, the double opt-in confirmation and the
//! one-click unsubscribe (RFC 8058); the JSON API's subscriber handlers are in [`api`].
//!
//! Handlers here parse and answer; every change is a command of
//! [`crate::commands::subscribers`] run in one [`crate::commands::Unit`]. A subscription
//! request is answered the same way whether the address is new, pending, confirmed or
//! unsubscribed, and its confirmation mail is queued in the outbox in the same transaction
//! (the email channel's worker sends it, retried until it goes), so neither the answer nor its
//! timing says whether an address is known, and a mail the customer was promised is not lost.
//! Links in mail are followed by scanners, so a GET never changes anything: it shows a button
//! that POSTs.

mod api;
pub use api::*;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::client_addr::ClientAddr;
use super::error::ApiError;
use super::subscribe_limits::{SubscribeLimits, ADDRESS_LIMITED};
use crate::app::App;
use crate::commands::subscribers::{self as command, SubscribeRequest, SubscriberError};
use crate::commands::Actor;

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

fn email_channel(
    app: &App,
) -> Result<&std::sync::Arc<crate::channels::email::EmailChannel>, ApiError> {
    app.email.as_ref().ok_or_else(|| {
        ApiError::NotFound("email subscriptions are not enabled on this site".into())
    })
}

/// The API's words for why a subscriber command did not happen (the pages have their own).
impl From<SubscriberError> for ApiError {
    fn from(e: SubscriberError) -> Self {
        match e {
            SubscriberError::Invalid(i) => ApiError::unprocessable("invalid_field", i.to_string()),
            SubscriberError::NoEmailChannel => {
                ApiError::NotFound("email subscriptions are not enabled on this site".into())
            }
            SubscriberError::AddressLimited => ApiError::TooManyRequests(ADDRESS_LIMITED.into()),
            e @ (SubscriberError::NotFound(_) | SubscriberError::LinkNotValid) => {
                ApiError::NotFound(e.to_string())
            }
            e @ SubscriberError::NotPending(_) => ApiError::Conflict {
                code: "not_pending",
                message: e.to_string(),
            },
            SubscriberError::Store(e) => e.into(),
        }
    }
}

/// Checks a subscription request (the form's or the API's), holds back floods, then records
/// it and queues its confirmation mail. Answers nothing about the address.
async fn request(
    app: &App,
    limits: &SubscribeLimits,
    client: Option<std::net::IpAddr>,
    email: &str,
    components: Option<Vec<String>>,
) -> Result<(), ApiError> {
    let channel = email_channel(app)?;
    let request =
        SubscribeRequest::parse(&app.config, email, components).map_err(SubscriberError::from)?;
    limits.check_client(client)?;
    if channel.subscribe_limiter.check().is_err() {
        return Err(ApiError::TooManyRequests(
            "too many subscription requests just now; try again in a minute".into(),
        ));
    }
    let mut unit = app.begin().await?;
    command::request(
        &app.env(),
        unit.tx(),
        &Actor::Public,
        &request,
        app.clock.now(),
    )
    .await?;
    unit.commit().await?;
    Ok(())
}

const ACCEPTED: &str = "If this address can receive mail, a confirmation link is on its way. Nothing else is sent until it is followed.";

/// The status page's form (`email`, and `components` once per ticked box).
async fn subscribe_form(
    State(app): State<App>,
    ClientAddr(client): ClientAddr,
    Extension(limits): Extension<Arc<SubscribeLimits>>,
    body: Bytes,
) -> Response {
    let mut email = String::new();
    let mut components = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "email" => email = v.into_owned(),
            "components" => components.push(v.into_owned()),
            _ => {}
        }
    }
    match request(&app, &limits, client, &email, Some(components)).await {
        Ok(()) => page(&app, StatusCode::OK, "Check your inbox", ACCEPTED, None),
        Err(e @ ApiError::Unprocessable { .. }) => page(
            &app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check the form",
            &e.to_string(),
            None,
        ),
        Err(ApiError::TooManyRequests(m)) if m == ADDRESS_LIMITED => page(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            "No more mails to this address today",
            &m,
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
    match crate::status_page::pages::subscribe_page(
        &app.config,
        &app.renderer,
        title,
        message,
        action,
    ) {
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
        let mut unit = app.begin().await?;
        let id = command::confirm(
            &app.env(),
            unit.tx(),
            &Actor::Public,
            &token,
            app.clock.now(),
        )
        .await?;
        unit.commit().await?;
        Ok::<_, SubscriberError>(id)
    }
    .await;
    match done {
        Ok(id) => {
            tracing::info!(subscriber.id = id, "subscription confirmed");
            page(&app, StatusCode::OK, "You are subscribed", "You will receive status updates by email. Every mail has a link to unsubscribe.", None)
        }
        Err(SubscriberError::LinkNotValid) => page(&app, StatusCode::NOT_FOUND, "Link expired or already used", "This confirmation link has expired or was already used. Subscribe again from the status page to get a new one.", None),
        Err(SubscriberError::NoEmailChannel) => not_enabled(&app),
        Err(e) => {
            tracing::warn!(error = %e, "could not confirm a subscription");
            page(&app, StatusCode::SERVICE_UNAVAILABLE, "Temporarily unavailable", "Please try again shortly.", None)
        }
    }
}

fn not_enabled(app: &App) -> Response {
    page(
        app,
        StatusCode::NOT_FOUND,
        "Not found",
        "Email subscriptions are not enabled.",
        None,
    )
}

async fn unsubscribe_page(State(app): State<App>, Path(token): Path<String>) -> Response {
    if !plausible(&token) || crate::store::subscribers::token_id(&token).is_none() {
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
        return not_enabled(&app);
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
        let mut unit = app.begin().await?;
        let id = command::unsubscribe(
            &app.env(),
            unit.tx(),
            &Actor::Public,
            channel.unsubscribe_key(),
            &token,
            app.clock.now(),
        )
        .await?;
        unit.commit().await?;
        Ok::<_, SubscriberError>(id)
    }
    .await;
    match done {
        Ok(id) => {
            tracing::info!(subscriber.id = id, "unsubscribed");
            page(
                &app,
                StatusCode::OK,
                "You are unsubscribed",
                "You will receive no more status updates by email.",
                None,
            )
        }
        Err(SubscriberError::LinkNotValid) => page(
            &app,
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This unsubscribe link is not valid.",
            None,
        ),
        Err(SubscriberError::NoEmailChannel) => not_enabled(&app),
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
