//! Bearer tokens for the API.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

use super::error::ApiError;
use crate::app::App;
use crate::store::tokens::{self, TokenOwner};

/// The caller of an API request, authenticated by `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct ApiCaller(pub TokenOwner);

impl FromRequestParts<App> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("send `Authorization: Bearer <token>`; create one with `candor token create --name NAME`".into()))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        let mut conn = app.db.pool().acquire().await?;
        match tokens::authenticate(&mut conn, token).await? {
            Some(owner) => Ok(ApiCaller(owner)),
            None => Err(ApiError::Unauthorized(
                "the token is not valid or has been revoked".into(),
            )),
        }
    }
}
