//! API bearer tokens. Only a SHA-256 hash is stored: tokens are 256 random bits, so a fast hash is
//! as strong as a slow one here, and lookups stay cheap on every request.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{from_ms, ms, opt_from_ms, Conn, Result};

pub const PREFIX: &str = "candor_";

/// What a token may do. A route names the one scope it needs; no scope implies another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read incidents, maintenance, estimates and subscriber counts.
    Read,
    /// Declare, update and resolve incidents.
    IncidentsWrite,
    /// Schedule, change and end maintenance windows.
    MaintenanceWrite,
    /// Alertmanager's webhook.
    AlertsWrite,
    /// List subscribers' addresses.
    SubscribersRead,
    /// Add, remove and re-confirm subscribers.
    SubscribersWrite,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Read,
        Scope::IncidentsWrite,
        Scope::MaintenanceWrite,
        Scope::AlertsWrite,
        Scope::SubscribersRead,
        Scope::SubscribersWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::IncidentsWrite => "incidents:write",
            Scope::MaintenanceWrite => "maintenance:write",
            Scope::AlertsWrite => "alerts:write",
            Scope::SubscribersRead => "subscribers:read",
            Scope::SubscribersWrite => "subscribers:write",
        }
    }

    /// What a token gets when none are named: everything but subscribers' personal data.
    pub fn defaults() -> Vec<Scope> {
        vec![
            Scope::Read,
            Scope::IncidentsWrite,
            Scope::MaintenanceWrite,
            Scope::AlertsWrite,
        ]
    }

    /// Parses a list separated by spaces or commas (`all` stands for every scope); an empty
    /// list is refused.
    pub fn parse_list(text: &str) -> std::result::Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for word in text.split([' ', ',']).filter(|w| !w.is_empty()) {
            if word == "all" {
                scopes.extend(Scope::ALL);
                continue;
            }
            let s: Scope = word.parse()?;
            scopes.push(s);
        }
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err("name at least one scope".into());
        }
        Ok(scopes)
    }

    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A scope is written as its name (`incidents:write`), in the audit log and everywhere else.
impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scope `{s}`; expected `all` or one of {}",
                    Scope::join(&Scope::ALL).replace(' ', ", ")
                )
            })
    }
}

/// The identity a valid token stands for, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
}

/// Scopes as stored; an unknown word (from a newer version) is skipped, never granted.
fn stored_scopes(text: &str) -> Vec<Scope> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Creates a token named `name` with `scopes`, made by `created_by` (the audit log's name of
/// who made it), and returns its one and only plain-text copy.
pub async fn create(
    conn: &mut Conn,
    name: &str,
    scopes: &[Scope],
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    let token = generate();
    sqlx::query(
        "INSERT INTO api_tokens (name, token_hash, created_at, scopes, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(name)
    .bind(hash(&token))
    .bind(ms(now))
    .bind(Scope::join(scopes))
    .bind(created_by)
    .execute(&mut *conn)
    .await?;
    Ok(token)
}

/// The owner of an unrevoked token, if `token` is one.
pub async fn authenticate(conn: &mut Conn, token: &str) -> Result<Option<TokenOwner>> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT id, name, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(token))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(id, name, scopes)| TokenOwner {
        id,
        name,
        scopes: stored_scopes(&scopes),
    }))
}

pub async fn touch(conn: &mut Conn, id: i64, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(ms(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Revokes the token named `name`. Returns false if there is none.
pub async fn revoke(conn: &mut Conn, name: &str, now: DateTime<Utc>) -> Result<bool> {
    let r =
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL")
            .bind(name)
            .bind(ms(now))
            .execute(&mut *conn)
            .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn list(conn: &mut Conn) -> Result<Vec<TokenInfo>> {
    type Row = (
        String,
        String,
        Option<String>,
        i64,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT name, scopes, created_by, created_at, last_used_at, revoked_at FROM api_tokens \
         ORDER BY revoked_at IS NOT NULL, name",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, scopes, created_by, c, u, r)| TokenInfo {
            name,
            scopes: stored_scopes(&scopes),
            created_by,
            created_at: from_ms(c),
            last_used_at: opt_from_ms(u),
            revoked_at: opt_from_ms(r),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn scope_lists_parse_and_name_what_was_wrong() {
        assert_eq!(
            Scope::parse_list("read, incidents:write read").unwrap(),
            vec![Scope::Read, Scope::IncidentsWrite]
        );
        assert_eq!(Scope::parse_list("all").unwrap(), Scope::ALL.to_vec());
        let e = Scope::parse_list("read,incidents").unwrap_err();
        assert!(
            e.starts_with(
                "unknown scope `incidents`; expected `all` or one of read, incidents:write"
            ),
            "{e}"
        );
        assert_eq!(
            Scope::parse_list(" , ").unwrap_err(),
            "name at least one scope"
        );
        assert!(!Scope::defaults().contains(&Scope::SubscribersRead));
    }
}
