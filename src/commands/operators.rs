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
        let password_hash = hash_new_password(password)?;
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

/// A change to an existing operator, from the console (admins only) or the command line.
#[derive(Debug, Clone)]
pub enum Change {
    /// Signs them out everywhere and refuses their sign-ins until enabled again.
    Disable,
    Enable,
    /// For good; the audit log keeps their address in its entries.
    Remove,
    Role(Role),
    /// A new password hash (see [`hash_new_password`]); every session of theirs ends.
    Password(String),
    /// Forgets the failed sign-ins counted against their account, from every client.
    Unlock,
}

impl Change {
    fn action(&self) -> &'static str {
        match self {
            Change::Disable => "operator.disable",
            Change::Enable => "operator.enable",
            Change::Remove => "operator.remove",
            Change::Role(_) => "operator.role",
            Change::Password(_) => "operator.password_reset",
            Change::Unlock => "operator.unlock",
        }
    }

    /// True when the change leaves one admin fewer able to sign in.
    fn loses_an_admin(&self) -> bool {
        matches!(
            self,
            Change::Disable | Change::Remove | Change::Role(Role::Responder)
        )
    }
}

/// Checks a new password's length and hashes it (slow on purpose: call it off the async
/// threads).
pub fn hash_new_password(password: &str) -> Result<String, Invalid> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(Invalid::new(
            "password",
            format!("must be at least {MIN_PASSWORD} characters"),
        ));
    }
    operators::hash_password(password).map_err(|e| Invalid::new("password", e))
}

/// Applies `change` to the operator with this address, audited (never the password). The last
/// enabled admin cannot be disabled, removed or made a responder, so the team can never lock
/// itself out of managing operators.
pub async fn change(
    conn: &mut Conn,
    actor: &Actor,
    email: &str,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let email = email.trim().to_lowercase();
    let Some(op) = operators::by_email(conn, &email).await? else {
        return Err(Invalid::new("email", format!("there is no operator `{email}`")).into());
    };
    let enabled_admin = op.is_admin() && op.disabled_at.is_none();
    if enabled_admin && change.loses_an_admin() && operators::enabled_admins(conn).await? <= 1 {
        return Err(Invalid::new(
            "email",
            format!("{email} is the last enabled admin; make another operator an admin first"),
        )
        .into());
    }
    let mut detail = json!({ "email": email });
    match change {
        Change::Disable => {
            operators::set_disabled(conn, op.id, true, now).await?;
        }
        Change::Enable => {
            operators::set_disabled(conn, op.id, false, now).await?;
        }
        Change::Remove => {
            operators::remove(conn, op.id).await?;
            crate::store::throttle::unlock_account(conn, &email).await?;
        }
        Change::Role(role) => {
            operators::set_role(conn, op.id, *role).await?;
            detail["from"] = json!(op.role);
            detail["to"] = json!(role);
        }
        Change::Password(hash) => {
            operators::set_password(conn, op.id, hash).await?;
        }
        Change::Unlock => {
            let keys = crate::store::throttle::unlock_account(conn, &email).await?;
            detail["keys"] = json!(keys);
        }
    }
    audit::record(
        conn,
        &actor.to_string(),
        change.action(),
        None,
        &detail,
        now,
    )
    .await?;
    Ok(())
}
