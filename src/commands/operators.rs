//! Console operators (the people who sign in at /admin): added, or given a new role and
//! password, from the command line; each change audited (never the password).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, CommandError};
use crate::domain::Invalid;
use crate::store::operators::{self, Role};
use crate::store::{audit, Conn};

/// Shortest console password accepted, in characters.
pub const MIN_PASSWORD: usize = 12;

/// An operator's sign-in, checked and with the password hashed: made before the transaction
/// begins, since hashing is slow on purpose.
#[derive(Debug, Clone)]
pub struct NewOperator {
    email: String,
    role: Role,
    password_hash: String,
}

impl NewOperator {
    /// Checks the address (kept lower-case) and the password's length, then hashes the password
    /// (argon2: call it off the async threads, e.g. in `spawn_blocking`).
    pub fn new(email: &str, role: Role, password: &str) -> Result<Self, Invalid> {
        let email = check_email(email)?;
        if password.chars().count() < MIN_PASSWORD {
            return Err(Invalid::new(
                "password",
                format!("must be at least {MIN_PASSWORD} characters"),
            ));
        }
        let password_hash = operators::hash_password(password)
            .map_err(|e| Invalid::new("password", format!("cannot be hashed: {e}")))?;
        Ok(Self {
            email,
            role,
            password_hash,
        })
    }

    pub fn email(&self) -> &str {
        &self.email
    }

    pub fn role(&self) -> Role {
        self.role
    }
}

/// The address an operator signs in with, trimmed and lower-cased, if it looks like one (what
/// [`NewOperator::new`] checks first; a caller may check it before asking for a password).
pub fn check_email(email: &str) -> Result<String, Invalid> {
    let email = email.trim().to_lowercase();
    let looks_like_address = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
    if looks_like_address {
        Ok(email)
    } else {
        Err(Invalid::new(
            "email",
            format!("`{email}` is not an email address"),
        ))
    }
}

/// Adds the operator, or replaces the role and password of the one with this address (and
/// enables it again). Returns whether it was new.
pub async fn add(
    conn: &mut Conn,
    actor: &Actor,
    new: &NewOperator,
    now: DateTime<Utc>,
) -> Result<bool, CommandError> {
    let (_, added) = operators::upsert(conn, &new.email, new.role, &new.password_hash, now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        if added {
            "operator.add"
        } else {
            "operator.reset"
        },
        None,
        &json!({ "email": new.email, "role": new.role }),
        now,
    )
    .await?;
    Ok(added)
}
