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
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::api::doc::{ErrorBody, ReadErrors, WriteErrors};
use serde_json::json;

use std::sync::Arc;

use axum::Extension;

use super::auth::ApiCaller;
use super::client_addr::ClientAddr;
use super::error::ApiError;
use super::extract::ApiJson;
use super::subscribe_limits::{SubscribeLimits, ADDRESS_LIMITED};
use crate::app::App;
use crate::domain::subscriber::SubscriberEmail;
use crate::domain::to_chrono;
use crate::render::pages;
use crate::store::subscribe_quota;
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
    limits: &SubscribeLimits,
    client: Option<std::net::IpAddr>,
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
    limits.check_client(client)?;
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
        // Counted whatever the address's state, so the answer says nothing about it.
        if !subscribe_quota::take(&mut conn, &email, limits.per_address_per_day, now).await? {
            return Err(ApiError::TooManyRequests(ADDRESS_LIMITED.into()));
        }
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

/// A request to hear about incidents by email.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// Component ids; leave out (or empty) for every component.
    #[serde(default)]
    components: Option<Vec<String>>,
}

/// The answer to a subscription request, the same whatever Candor knows of the address.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// `pending_confirmation`, or `sent` for a confirmation sent again.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
}

/// A page of subscribers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriberList {
    pub subscribers: Vec<subscribers::SubscriberInfo>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_after: Option<i64>,
}

/// How far one email delivery got.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReachView {
    pub delivery_id: i64,
    /// Subscribers it was sent to so far.
    pub sent: i64,
    /// Addresses the mail server refused for good.
    pub failed: i64,
}

/// Subscribe to incident mail
///
/// Public, no token. Double opt-in: only a confirmation mail is sent until its link is
/// followed. The answer is the same whether the address is new or known. 404 when the site has
/// no email channel.
#[utoipa::path(
    post, path = "/subscribers", operation_id = "subscribe", tag = "subscribers",
    request_body = SubscribeBody,
    responses(
        (status = 202, description = "A confirmation is on its way (if the address takes mail).", body = Accepted),
        WriteErrors,
        (status = 429, description = "Too many subscription requests; try again later.", body = ErrorBody),
    )
)]
pub async fn subscribe_api(
    State(app): State<App>,
    ClientAddr(client): ClientAddr,
    Extension(limits): Extension<Arc<SubscribeLimits>>,
    ApiJson { value, .. }: ApiJson<SubscribeBody>,
) -> Result<Response, ApiError> {
    request(&app, &limits, client, &value.email, value.components, "").await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "pending_confirmation",
            message: Some(ACCEPTED),
        }),
    )
        .into_response())
}

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
    match request(&app, &limits, client, &email, Some(components), "").await {
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

/// Count subscribers
///
/// Confirmed, pending and unsubscribed, and confirmed by component.
#[utoipa::path(
    get, path = "/subscribers/counts", operation_id = "subscriberCounts", tag = "subscribers",
    security(("bearer" = [])),
    responses((status = 200, description = "The numbers.", body = subscribers::Counts), ReadErrors)
)]
pub async fn counts(State(app): State<App>, _caller: ApiCaller) -> Result<Response, ApiError> {
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only subscribers with a larger id: the previous page's `next_after`.
    #[serde(default)]
    after: Option<i64>,
    /// 1 to 1000 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// List subscribers
///
/// By id, a page at a time (addresses in full: for operators only).
#[utoipa::path(
    get, path = "/subscribers", operation_id = "listSubscribers", tag = "subscribers",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page.", body = SubscriberList), ReadErrors)
)]
pub async fn list(
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
    Ok(Json(SubscriberList {
        subscribers: rows,
        next_after: next,
    })
    .into_response())
}

/// How many subscribers a delivery reached
///
/// For an email delivery: how many subscribers it has reached so far (`sent`) and how many
/// addresses the server refused for good (`failed`).
#[utoipa::path(
    get, path = "/deliveries/{id}/reach", operation_id = "deliveryReach", tag = "subscribers",
    params(("id" = i64, Path, description = "The delivery's id, as in an update's `deliveries`.")),
    security(("bearer" = [])),
    responses((status = 200, description = "The numbers.", body = ReachView), ReadErrors)
)]
pub async fn reach(
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
    Ok(Json(ReachView {
        delivery_id: id,
        sent: r.sent,
        failed: r.failed,
    })
    .into_response())
}

fn subscriber_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no subscriber with id `{}`",
            super::api::clip(raw, 40)
        ))
    })
}

/// Remove a subscriber
///
/// For good; audited.
#[utoipa::path(
    delete, path = "/subscribers/{id}", operation_id = "removeSubscriber", tag = "subscribers",
    params(("id" = i64, Path, description = "The subscriber's id.")),
    security(("bearer" = [])),
    responses((status = 204, description = "Removed."), ReadErrors)
)]
pub async fn remove(
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

/// Send the confirmation again
///
/// A pending subscriber gets a new confirmation link (the old one stops working).
#[utoipa::path(
    post, path = "/subscribers/{id}/confirmation", operation_id = "resendConfirmation", tag = "subscribers",
    params(("id" = i64, Path, description = "The subscriber's id.")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent.", body = Accepted),
        (status = 409, description = "Not waiting for confirmation.", body = ErrorBody),
        ReadErrors,
    )
)]
pub async fn resend(
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
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "sent",
            message: None,
        }),
    )
        .into_response())
}
