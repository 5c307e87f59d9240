//! `candor serve`: the status page, the API, the scheduler and the delivery workers, until
//! SIGTERM or Ctrl-C (then a graceful shutdown, bounded by `server.shutdown_grace`).
//!
//! On start-up it prints the addresses it serves (on stderr, like the logs: stdout carries the
//! `log` channel's messages), and warns once when nobody can sign in to the console yet.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::Role;
use crate::config::Config;
use crate::store::operators;
use crate::App;

pub(super) async fn run(mut config: Config, role: Role) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    // Port 0 asks the system for a free port: links and the printed addresses name the real one.
    config.set_listen(listener.local_addr()?);
    let urls = served_urls(&config, role);
    let app = App::builder(config).build().await?;
    eprint!("{urls}");
    if role != Role::Worker {
        let mut conn = app.db.pool().acquire().await?;
        if operators::list(&mut conn).await?.is_empty() {
            tracing::warn!(
                "no operator yet: nobody can sign in at /admin. Add one with \
                 `candor operator add --email you@example.com --role admin`"
            );
        }
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    app.serve(listener, shutdown, role).await
}

/// What `serve` prints on start-up: the public addresses at `site.public_url` (the page, the
/// console, the API reference), and the health checks and metrics at the listen address, which
/// a proxy in front usually does not pass on.
pub fn served_urls(config: &Config, role: Role) -> String {
    let public = &config.site.public_url;
    let local = crate::config::server::url_of(config.server.listen);
    let at = |base: &url::Url, path: &str| base.join(path).map(String::from).unwrap_or_default();
    let mut out = format!("Candor is listening on {}\n", config.server.listen);
    if role != Role::Worker {
        out += &format!("  status page  {}\n", at(public, ""));
        out += &format!("  console      {}\n", at(public, "admin"));
        out += &format!("  API docs     {}\n", at(public, "api/v1/docs"));
    }
    out += &format!("  metrics      {}\n", at(&local, "metrics"));
    out += &format!("  readiness    {}\n", at(&local, "readyz"));
    out
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    const MINIMAL: &str = r#"
site: { name: Acme, support_contact: help@acme.test }
components: [ { id: api, name: API } ]
channels: { log: { type: log } }
"#;

    #[test]
    fn the_printed_urls_follow_listen_or_the_public_url() {
        let o = Overrides {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..Overrides::default()
        };
        let c = Config::from_yaml_with_env(MINIMAL, &o, &|_| None).unwrap();
        let urls = served_urls(&c, Role::All);
        assert!(
            urls.contains("status page  http://127.0.0.1:9000/\n"),
            "{urls}"
        );
        assert!(
            urls.contains("console      http://127.0.0.1:9000/admin\n"),
            "{urls}"
        );
        assert!(
            urls.contains("API docs     http://127.0.0.1:9000/api/v1/docs\n"),
            "{urls}"
        );
        assert!(
            urls.contains("metrics      http://127.0.0.1:9000/metrics\n"),
            "{urls}"
        );

        let text = MINIMAL.replace(
            "name: Acme,",
            "name: Acme, public_url: \"https://s.acme.test\",",
        );
        let c = Config::from_yaml_with_env(&text, &o, &|_| None).unwrap();
        let urls = served_urls(&c, Role::All);
        assert!(
            urls.contains("console      https://s.acme.test/admin\n"),
            "{urls}"
        );
        assert!(
            urls.contains("metrics      http://127.0.0.1:9000/metrics\n"),
            "{urls}"
        );
        let urls = served_urls(&c, Role::Worker);
        assert!(!urls.contains("console"), "{urls}");
    }
}
