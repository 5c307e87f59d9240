//! Logging: tracing with a `RUST_LOG` filter, as text or JSON lines.

use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber (logs go to stderr; stdout belongs to the `log` channel).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    // Colour only on a terminal: log files and journald get plain text (and `NO_COLOR` wins).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// An actor as log lines and spans name it: its audit name, with an operator's address masked
/// (`operator:a***@acme.test`), since logs carry no full email addresses.
pub fn actor(actor: &crate::commands::Actor) -> String {
    match actor {
        crate::commands::Actor::Operator(email) => {
            format!("operator:{}", crate::domain::subscriber::mask(email))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::Actor;

    #[test]
    fn spans_name_the_actor_by_its_audit_name_with_an_operators_address_masked() {
        assert_eq!(
            super::actor(&Actor::operator("ann@acme.test")),
            "operator:a***@acme.test"
        );
        assert_eq!(super::actor(&Actor::token("ci")), "token:ci");
        assert_eq!(super::actor(&Actor::Scheduler), "candor");
        assert_eq!(super::actor(&Actor::Cli("root".into())), "cli:root");
    }
}
