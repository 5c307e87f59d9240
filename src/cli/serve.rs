//! `candor serve`: the status page, the API, the scheduler and the delivery workers, until
//! SIGTERM or Ctrl-C (then a graceful shutdown, bounded by `server.shutdown_grace`).

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::Role;
use crate::config::Config;
use crate::App;

pub(super) async fn run(config: Config, role: Role) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let app = App::builder(config).build().await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    app.serve(listener, shutdown, role).await
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
