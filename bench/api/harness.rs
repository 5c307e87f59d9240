//! The benchmark's harness: one Candor instance serving on 127.0.0.1 (`Server`), a client of
//! the v1 API (`Api`), a follower of the log channel's file (`LogTail`), and the histograms.

// The benchmark compares its own wall-clock send times with the wall-clock `logged_at` the log
// channel writes, so it reads `Utc::now()` directly instead of going through `candor::Clock`.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use candor::clock::truncate_ms;
use candor::config::{Config, Overrides};
use candor::store::{tokens, Durability};
use candor::App;
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The two writes measured.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Incident,
    Update,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Incident => "POST /incidents",
            Kind::Update => "POST /incidents/{id}/updates",
        }
    }
}

/// One Candor instance on its own SQLite file and log file, serving on 127.0.0.1.
pub(crate) struct Server {
    pub(crate) app: App,
    pub(crate) api: Api,
    pub(crate) log: PathBuf,
    pub(crate) stop: CancellationToken,
    pub(crate) task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub(crate) async fn start(dir: &Path, name: &str) -> anyhow::Result<Self> {
        Self::start_with(dir, name, Durability::Full).await
    }

    pub(crate) async fn start_with(
        dir: &Path,
        name: &str,
        durability: Durability,
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let url = database_url(dir, name).await?;
        // JSON strings are valid YAML scalars, so paths are quoted safely this way.
        let q = |p: &Path| Value::from(p.display().to_string()).to_string();
        let yaml = format!(
            r#"
site:
  name: "Candor Bench"
  public_url: "http://127.0.0.1:8080"
  support_contact: "bench@example.com"
  templates_dir: {templates}
server:
  shutdown_grace: 5s
database:
  url: {url}
components:
  - {{ id: api, name: "Public API" }}
  - {{ id: web, name: "Website" }}
ops:
  channels: []
channels:
  log:
    type: log
    path: {log}
"#,
            templates = q(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")),
            url = Value::from(url),
            log = q(&log),
        );
        let config = Config::from_yaml_with_env(&yaml, &Overrides::default(), &|_| None)?;
        let app = App::builder(config)
            .sqlite_durability(durability)
            .build()
            .await?;
        let token = {
            let mut conn = app.db.pool().acquire().await?;
            tokens::create(
                &mut conn,
                "bench",
                &tokens::Scope::ALL,
                "bench",
                app.clock.now(),
            )
            .await?
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (app, stop) = (app.clone(), stop.clone());
            async move { app.serve(listener, stop, candor::app::Role::All).await }
        });
        let api = Api {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: format!("http://{addr}/api/v1"),
            auth: format!("Bearer {token}"),
        };
        Ok(Self {
            app,
            api,
            log,
            stop,
            task,
        })
    }

    /// Graceful shutdown, as on SIGTERM.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        drop(self.api);
        self.stop.cancel();
        self.task.await??;
        drop(self.app);
        Ok(())
    }
}

/// A fresh database for one run: a SQLite file in `dir`, or, when `BENCH_DATABASE_URL` names a
/// PostgreSQL server (a URL whose user may create databases), a new database on it.
pub(crate) async fn database_url(dir: &Path, name: &str) -> anyhow::Result<String> {
    match std::env::var("BENCH_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => {
            sqlx::any::install_default_drivers();
            let db = format!(
                "candor_bench_{}_{}",
                name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                    .to_lowercase(),
                std::process::id()
            );
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                .await
                .context("connect to BENCH_DATABASE_URL")?;
            sqlx::Executor::execute(&mut conn, format!("DROP DATABASE IF EXISTS {db}").as_str())
                .await?;
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {db}").as_str()).await?;
            let mut url = url::Url::parse(&admin).context("BENCH_DATABASE_URL is a URL")?;
            url.set_path(&format!("/{db}"));
            Ok(url.to_string())
        }
        _ => Ok(format!(
            "sqlite://{}",
            dir.join(format!("{name}.db")).display()
        )),
    }
}

/// A client of the v1 API.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) auth: String,
}

/// What a write answered.
pub(crate) enum Reply {
    /// 2xx: the incident and the id of the update the write published.
    Accepted {
        incident_id: i64,
        update_id: i64,
    },
    Refused {
        status: u16,
        body: String,
    },
}

impl Api {
    pub(crate) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Ok(Reply::Refused {
                status: status.as_u16(),
                body,
            });
        }
        let body: Value = resp.json().await?;
        let incident_id = body["id"].as_i64().context("response has no incident id")?;
        // The write's own update is the newest one on the incident.
        let update_id = body["updates"]
            .as_array()
            .and_then(|u| u.iter().filter_map(|u| u["id"].as_i64()).max())
            .context("response has no updates")?;
        Ok(Reply::Accepted {
            incident_id,
            update_id,
        })
    }

    pub(crate) async fn declare(&self, n: usize) -> anyhow::Result<Reply> {
        let body = json!({
            "title": format!("Bench incident {n}"),
            "impact": "major",
            "message": "We are seeing elevated error rates on the API and are investigating.",
            "components": { "api": "partial_outage" },
            "eta_in": "45m",
        });
        self.post("/incidents", &body).await
    }

    pub(crate) async fn update(&self, incident_id: i64, n: usize) -> anyhow::Result<Reply> {
        let body =
            json!({ "message": format!("Still investigating; a fix is being tested ({n}).") });
        self.post(&format!("/incidents/{incident_id}/updates"), &body)
            .await
    }

    /// Sends one write of `kind`, which must be accepted (setup and part 1).
    pub(crate) async fn must(
        &self,
        kind: Kind,
        incident_id: i64,
        n: usize,
    ) -> anyhow::Result<(i64, i64)> {
        let reply = match kind {
            Kind::Incident => self.declare(n).await?,
            Kind::Update => self.update(incident_id, n).await?,
        };
        match reply {
            Reply::Accepted {
                incident_id,
                update_id,
            } => Ok((incident_id, update_id)),
            Reply::Refused { status, body } => bail!("{} answered {status}: {body}", kind.label()),
        }
    }
}

/// Follows the log file, counting complete lines.
pub(crate) struct LogTail {
    pub(crate) path: PathBuf,
    pub(crate) offset: u64,
    pub(crate) lines: usize,
}

impl LogTail {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            lines: 0,
        }
    }

    pub(crate) fn poll(&mut self) -> anyhow::Result<usize> {
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        // Count only complete lines; a partly written one is read again next time.
        if let Some(last) = buf.iter().rposition(|b| *b == b'\n') {
            self.lines += buf[..=last].iter().filter(|b| **b == b'\n').count();
            self.offset += last as u64 + 1;
        }
        Ok(self.lines)
    }

    /// Waits (polling every millisecond, at most `timeout`) until the file has `lines` lines.
    /// Returns whether it got there.
    pub(crate) async fn wait_for(
        &mut self,
        lines: usize,
        timeout: Duration,
    ) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        while self.poll()? < lines {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(true)
    }
}

/// When each line was logged, by update id (the first line if a delivery was retried).
pub(crate) fn logged_at(path: &Path) -> anyhow::Result<HashMap<i64, DateTime<Utc>>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = HashMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).context("log line is not JSON")?;
        let (Some(update_id), Some(at)) = (v["update_id"].as_i64(), v["logged_at"].as_str()) else {
            continue;
        };
        let at = DateTime::parse_from_rfc3339(at)?.with_timezone(&Utc);
        out.entry(update_id)
            .and_modify(|t: &mut DateTime<Utc>| *t = (*t).min(at))
            .or_insert(at);
    }
    Ok(out)
}

/// The send time, at the log's millisecond precision so the two ends round alike.
pub(crate) fn wall_now() -> DateTime<Utc> {
    truncate_ms(Utc::now())
}

/// Microseconds from 0 to 10 minutes, 3 significant figures. Fixed bounds: `saturating_record`
/// clamps to the histogram's current range, so an auto-resizing one would lose values.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records `log - sent` (µs) for every sent update found in the log; returns how many were found.
pub(crate) fn record_log_latency(
    sent: &[(i64, DateTime<Utc>)],
    logged: &HashMap<i64, DateTime<Utc>>,
    hist: &mut Histogram<u64>,
) -> usize {
    let mut found = 0;
    for (update_id, t0) in sent {
        if let Some(at) = logged.get(update_id) {
            let us = (*at - *t0).num_microseconds().unwrap_or(i64::MAX).max(0);
            hist.saturating_record(us as u64);
            found += 1;
        }
    }
    found
}

pub(crate) fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}
