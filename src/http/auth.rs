//! Bearer tokens for the API, and the scope each route needs.
//!
//! A handler asks for `Scoped<scope::X>`: the request is refused with 401 without a valid
//! token, and with 403 when the token lacks scope X. The OpenAPI document names the same scope
//! in each operation's `security` requirement, and a test walks every operation with a token of
//! each scope to check the two agree.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

use super::error::ApiError;
use crate::app::App;
use crate::store::tokens::{self, Scope, TokenOwner};

/// A route's scope, as a type.
pub trait Needs {
    const SCOPE: Scope;
}

/// The scopes as types, one per [`Scope`].
pub mod scope {
    use super::{Needs, Scope};
    macro_rules! scopes {
        ($($name:ident),*) => {$(
            pub struct $name;
            impl Needs for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }
    scopes!(
        Read,
        IncidentsWrite,
        MaintenanceWrite,
        AlertsWrite,
        SubscribersRead,
        SubscribersWrite
    );
}

/// The caller of an API request, authenticated by `Authorization: Bearer <token>` and holding
/// scope `S`.
pub struct Scoped<S>(pub TokenOwner, pub PhantomData<S>);

impl<S: Needs + Send + Sync> FromRequestParts<App> for Scoped<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let owner = authenticate(parts, app).await?;
        if !owner.scopes.contains(&S::SCOPE) {
            return Err(ApiError::Forbidden(format!(
                "the token `{}` lacks the `{}` scope this call needs; create one with \
                 `candor token create --name NAME --scope {}`",
                owner.name,
                S::SCOPE.as_str(),
                S::SCOPE.as_str()
            )));
        }
        Ok(Scoped(owner, PhantomData))
    }
}

async fn authenticate(parts: &Parts, app: &App) -> Result<TokenOwner, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized(
            "send `Authorization: Bearer <token>`; create one with `candor token create --name NAME`"
                .into(),
        )
    })?;
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
    tokens::authenticate(&mut conn, token)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the token is not valid or has been revoked".into()))
}
