//! `candor token ...`: API tokens for scripts and Alertmanager. Creating and revoking go through
//! [`crate::commands::tokens`], audited under the system user.

use clap::Subcommand;

use super::actor;
use crate::commands::{self, CommandError, Unit};
use crate::store::{tokens, Db};
use crate::{Clock, SystemClock};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, on the last line.
    Create {
        /// A name people recognise in the audit log (e.g. `deploy-script`, `alertmanager`).
        #[arg(long)]
        name: String,
        /// What the token may do, repeated or comma-separated: read, incidents:write,
        /// maintenance:write, alerts:write, subscribers:read, subscribers:write. Without it:
        /// read, incidents:write, maintenance:write, alerts:write (no subscriber addresses).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
    /// List tokens (names and dates; tokens themselves are never stored).
    List,
    /// Revoke the token with this name.
    Revoke {
        /// The token's name, as `token list` shows it.
        #[arg(long)]
        name: String,
    },
}

pub(super) async fn run(db: &Db, command: TokenCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        TokenCommand::Create { name, scopes } => {
            let name = name.trim().to_string();
            let scopes = if scopes.is_empty() {
                tokens::Scope::defaults()
            } else {
                tokens::Scope::parse_list(&scopes.join(","))
                    .map_err(|e| anyhow::anyhow!("--scope: {e}"))?
            };
            let mut unit = Unit::begin(db, None).await?;
            let token = commands::tokens::create(unit.tx(), &actor(), &name, &scopes, now)
                .await
                .map_err(|e| match e {
                    CommandError::Invalid(i) => anyhow::anyhow!("--{} {}", i.field, i.message),
                    CommandError::Store(e) if e.is_unique_violation("api_tokens") => {
                        anyhow::anyhow!(
                            "a token named `{name}` already exists; pick another name or revoke it"
                        )
                    }
                    e => e.into(),
                })?;
            unit.commit().await?;
            println!(
                "Created API token `{name}` ({}). It is shown only once; store it now:",
                tokens::Scope::join(&scopes)
            );
            println!("{token}");
        }
        TokenCommand::List => {
            let mut conn = db.pool().acquire().await?;
            for t in tokens::list(&mut conn).await? {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".into(),
                };
                let used = t
                    .last_used_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{}\t{}\tcreated {}\tlast used {}\t{}",
                    t.name,
                    tokens::Scope::join(&t.scopes),
                    t.created_at.to_rfc3339(),
                    used,
                    state
                );
            }
        }
        TokenCommand::Revoke { name } => {
            let mut unit = Unit::begin(db, None).await?;
            let revoked = commands::tokens::revoke(unit.tx(), &actor(), &name, now).await?;
            anyhow::ensure!(revoked, "no active token named `{name}`");
            unit.commit().await?;
            println!("revoked `{name}`");
        }
    }
    Ok(())
}
