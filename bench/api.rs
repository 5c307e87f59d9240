//! `cargo bench --bench api`: how fast the v1 API turns a write into a sent message, and how many
//! writes it accepts, on SQLite, with the real system clock and the real background workers.
//!
//! Candor runs in this process exactly as `candor serve` runs it (`App::serve`: HTTP server,
//! scheduler and outbox workers), listening on 127.0.0.1; the benchmark talks to it over HTTP
//! with reqwest. Its only public channel is the `log` channel, appending one JSON line per
//! delivery to a file in a temporary folder; each line carries `logged_at` (wall clock, ms).
//!
//! 1. Latency. Requests are sent one at a time, and the next waits until the previous one's line
//!    is in the file, so nothing queues. For each request: POST→response, and POST→log line
//!    (`logged_at` minus the wall-clock time taken just before sending).
//! 2. Throughput. N clients (each sends its next request when the previous one is answered) for
//!    a fixed time, a fresh database per run: accepted requests/s, request latency, and the
//!    POST→log line latency under that load (the outbox shares SQLite's single writer).
//!
//! Settings (environment variables):
//! - `BENCH_LATENCY_N` (300): incidents and updates measured in part 1 (each).
//! - `BENCH_WARMUP` (10): requests of each kind sent first and left out of part 1.
//! - `BENCH_SECS` (10): length of each throughput run.
//! - `BENCH_CLIENTS` ("8,32"): concurrent clients, one throughput run per value and kind.
//! - `BENCH_UPDATE_INCIDENTS` (200): open incidents the update runs spread their updates over.
//! - `BENCH_SYNC_ROUNDS` (3): part 3, what `synchronous = FULL` costs: incident throughput with
//!   8 clients, alternating FULL (Candor's setting, the anchor) and NORMAL runs this many times
//!   each, side by side in this process; 0 skips it.

// The benchmark compares its own wall-clock send times with the wall-clock `logged_at` the log
// channel writes, so it reads `Utc::now()` directly instead of going through `candor::Clock`.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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

/// Longest wait for one log line in part 1, and for the outbox to catch up after setup.
const LINE_TIMEOUT: Duration = Duration::from_secs(10);
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait, after a throughput run, for the outbox to write the lines still owed. Writes
/// still undelivered then count as slower than any measured one.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// A hard cap on requests per client in a throughput run, besides its time limit.
const MAX_REQUESTS_PER_CLIENT: usize = 1_000_000;

struct Settings {
    latency_n: usize,
    warmup: usize,
    run_for: Duration,
    clients: Vec<usize>,
    update_incidents: usize,
}

fn setting<T: FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}: cannot parse `{v}`")),
        Err(_) => Ok(default),
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let clients: String = setting("BENCH_CLIENTS", "8,32".to_string())?;
        let clients = clients
            .split(',')
            .map(|c| {
                c.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
            })
            .collect::<Option<Vec<_>>>()
            .context("BENCH_CLIENTS: expected numbers from 1 to 256, like `8,32`")?;
        let s = Self {
            latency_n: setting("BENCH_LATENCY_N", 300)?,
            warmup: setting("BENCH_WARMUP", 10)?,
            run_for: Duration::from_secs(setting("BENCH_SECS", 10)?),
            clients,
            update_incidents: setting("BENCH_UPDATE_INCIDENTS", 200)?,
        };
        if s.latency_n == 0 || s.update_incidents == 0 || s.run_for.is_zero() {
            bail!("BENCH_LATENCY_N, BENCH_SECS and BENCH_UPDATE_INCIDENTS must be more than 0");
        }
        Ok(s)
    }
}

/// The two writes measured.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Incident,
    Update,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Incident => "POST /incidents",
            Kind::Update => "POST /incidents/{id}/updates",
        }
    }
}

/// One Candor instance on its own SQLite file and log file, serving on 127.0.0.1.
struct Server {
    app: App,
    api: Api,
    log: PathBuf,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(dir: &Path, name: &str) -> anyhow::Result<Self> {
        Self::start_with(dir, name, Durability::Full).await
    }

    async fn start_with(dir: &Path, name: &str, durability: Durability) -> anyhow::Result<Self> {
        let db = dir.join(format!("{name}.db"));
        let log = dir.join(format!("{name}.log"));
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
            url = Value::from(format!("sqlite://{}", db.display())),
            log = q(&log),
        );
        let config = Config::from_yaml_with_env(&yaml, &Overrides::default(), &|_| None)?;
        let app = App::builder(config)
            .sqlite_durability(durability)
            .build()
            .await?;
        let token = {
            let mut conn = app.db.pool().acquire().await?;
            tokens::create(&mut conn, "bench", app.clock.now()).await?
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
    async fn stop(self) -> anyhow::Result<()> {
        drop(self.api);
        self.stop.cancel();
        self.task.await??;
        drop(self.app);
        Ok(())
    }
}

/// A client of the v1 API.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    auth: String,
}

/// What a write answered.
enum Reply {
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
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
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

    async fn declare(&self, n: usize) -> anyhow::Result<Reply> {
        let body = json!({
            "title": format!("Bench incident {n}"),
            "impact": "major",
            "message": "We are seeing elevated error rates on the API and are investigating.",
            "components": { "api": "partial_outage" },
            "eta_in": "45m",
        });
        self.post("/incidents", &body).await
    }

    async fn update(&self, incident_id: i64, n: usize) -> anyhow::Result<Reply> {
        let body =
            json!({ "message": format!("Still investigating; a fix is being tested ({n}).") });
        self.post(&format!("/incidents/{incident_id}/updates"), &body)
            .await
    }

    /// Sends one write of `kind`, which must be accepted (setup and part 1).
    async fn must(&self, kind: Kind, incident_id: i64, n: usize) -> anyhow::Result<(i64, i64)> {
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
struct LogTail {
    path: PathBuf,
    offset: u64,
    lines: usize,
}

impl LogTail {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            lines: 0,
        }
    }

    fn poll(&mut self) -> anyhow::Result<usize> {
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
    async fn wait_for(&mut self, lines: usize, timeout: Duration) -> anyhow::Result<bool> {
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
fn logged_at(path: &Path) -> anyhow::Result<HashMap<i64, DateTime<Utc>>> {
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
fn wall_now() -> DateTime<Utc> {
    truncate_ms(Utc::now())
}

/// Microseconds from 0 to 10 minutes, 3 significant figures. Fixed bounds: `saturating_record`
/// clamps to the histogram's current range, so an auto-resizing one would lose values.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records `log - sent` (µs) for every sent update found in the log; returns how many were found.
fn record_log_latency(
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

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

// ---------------------------------------------------------------------------------------------
// Part 1: latency, one request at a time.

struct LatencyRow {
    kind: Kind,
    what: &'static str,
    hist: Histogram<u64>,
}

async fn latency(dir: &Path, s: &Settings) -> anyhow::Result<Vec<LatencyRow>> {
    let server = Server::start(dir, "latency").await?;
    let mut tail = LogTail::new(&server.log);
    let mut response = BTreeMap::from([(Kind::Incident, histogram()), (Kind::Update, histogram())]);
    let mut sent: BTreeMap<Kind, Vec<(i64, DateTime<Utc>)>> = BTreeMap::new();
    for n in 0..s.warmup + s.latency_n {
        let mut incident_id = 0;
        for kind in [Kind::Incident, Kind::Update] {
            let t0 = wall_now();
            let start = Instant::now();
            let (id, update_id) = server.api.must(kind, incident_id, n).await?;
            let took = start.elapsed();
            incident_id = id;
            if !tail.wait_for(tail.lines + 1, LINE_TIMEOUT).await? {
                bail!("no log line within {LINE_TIMEOUT:?} of {}", kind.label());
            }
            if n >= s.warmup {
                let hist = response.get_mut(&kind).expect("both kinds present");
                hist.saturating_record(took.as_micros() as u64);
                sent.entry(kind).or_default().push((update_id, t0));
            }
        }
    }
    server.stop().await?;
    let logged = logged_at(&tail.path)?;
    let mut rows = Vec::new();
    for (kind, hist) in response {
        let mut to_log = histogram();
        let sent = &sent[&kind];
        let found = record_log_latency(sent, &logged, &mut to_log);
        if found != sent.len() {
            bail!(
                "{} of {} log lines are missing",
                sent.len() - found,
                sent.len()
            );
        }
        rows.push(LatencyRow {
            kind,
            what: "POST → response",
            hist,
        });
        rows.push(LatencyRow {
            kind,
            what: "POST → log line",
            hist: to_log,
        });
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Part 2: throughput, N clients for a fixed time.

struct RunResult {
    kind: Kind,
    clients: usize,
    elapsed: Duration,
    accepted: usize,
    refused: BTreeMap<String, usize>,
    response: Histogram<u64>,
    /// Lines the outbox wrote while the clients were running.
    logged_during_run: usize,
    /// POST → log line of the accepted writes whose line was written.
    to_log: Histogram<u64>,
    /// Time after the run until every accepted write's line was written (None: not within
    /// DRAIN_TIMEOUT).
    drain: Option<Duration>,
    /// Accepted writes with no line by the end of the drain wait.
    undelivered: usize,
}

/// What one client saw.
struct ClientResult {
    response: Histogram<u64>,
    sent: Vec<(i64, DateTime<Utc>)>,
    refused: BTreeMap<String, usize>,
}

async fn client(
    api: Api,
    kind: Kind,
    incidents: Arc<Vec<i64>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> ClientResult {
    let mut r = ClientResult {
        response: histogram(),
        sent: Vec::new(),
        refused: BTreeMap::new(),
    };
    for _ in 0..MAX_REQUESTS_PER_CLIENT {
        if Instant::now() >= deadline {
            break;
        }
        // Updates go round-robin over the open incidents.
        let n = next.fetch_add(1, Ordering::Relaxed);
        let t0 = wall_now();
        let start = Instant::now();
        let reply = match kind {
            Kind::Incident => api.declare(n).await,
            Kind::Update => api.update(incidents[n % incidents.len()], n).await,
        };
        let took = start.elapsed();
        match reply {
            Ok(Reply::Accepted { update_id, .. }) => {
                r.response.saturating_record(took.as_micros() as u64);
                r.sent.push((update_id, t0));
            }
            Ok(Reply::Refused { status, .. }) => {
                *r.refused.entry(status.to_string()).or_default() += 1;
            }
            Err(e) => {
                let what = if e
                    .downcast_ref::<reqwest::Error>()
                    .is_some_and(|e| e.is_timeout())
                {
                    "timeout"
                } else {
                    "transport error"
                };
                *r.refused.entry(what.to_string()).or_default() += 1;
            }
        }
    }
    r
}

async fn throughput(
    dir: &Path,
    s: &Settings,
    kind: Kind,
    clients: usize,
) -> anyhow::Result<RunResult> {
    let name = match kind {
        Kind::Incident => format!("incidents-{clients}"),
        Kind::Update => format!("updates-{clients}"),
    };
    throughput_with(dir, s, kind, clients, &name, Durability::Full).await
}

async fn throughput_with(
    dir: &Path,
    s: &Settings,
    kind: Kind,
    clients: usize,
    name: &str,
    durability: Durability,
) -> anyhow::Result<RunResult> {
    let server = Server::start_with(dir, name, durability).await?;
    let mut tail = LogTail::new(&server.log);

    // Updates need open incidents; declare them first and let the outbox catch up.
    let mut incidents = Vec::new();
    if kind == Kind::Update {
        for n in 0..s.update_incidents {
            incidents.push(server.api.must(Kind::Incident, 0, n).await?.0);
        }
        if !tail.wait_for(incidents.len(), SETUP_TIMEOUT).await? {
            bail!("setup: the outbox did not catch up within {SETUP_TIMEOUT:?}");
        }
    }
    let before = tail.lines;

    let incidents = Arc::new(incidents);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + s.run_for;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(client(
                server.api.clone(),
                kind,
                incidents.clone(),
                next.clone(),
                deadline,
            ))
        })
        .collect();
    let mut response = histogram();
    let mut sent = Vec::new();
    let mut refused = BTreeMap::new();
    for t in tasks {
        let r = t.await?;
        response.add(&r.response)?;
        sent.extend(r.sent);
        for (k, v) in r.refused {
            *refused.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed();
    let logged_during_run = tail.poll()? - before;

    let drained = tail
        .wait_for(before + sent.len(), DRAIN_TIMEOUT)
        .await?
        .then(|| start.elapsed().saturating_sub(elapsed));
    server.stop().await?;

    let mut to_log = histogram();
    let found = record_log_latency(&sent, &logged_at(&tail.path)?, &mut to_log);
    Ok(RunResult {
        kind,
        clients,
        elapsed,
        accepted: sent.len(),
        refused,
        response,
        logged_during_run,
        to_log,
        drain: drained,
        undelivered: sent.len() - found,
    })
}

// ---------------------------------------------------------------------------------------------

fn print_latency(s: &Settings, rows: &[LatencyRow]) {
    println!();
    println!(
        "Latency, sequential: {} incidents + {} updates ({} of each sent first as warm-up and not counted)",
        s.latency_n, s.latency_n, s.warmup
    );
    println!(
        "{:<30} {:<16} {:>8} {:>8} {:>8} {:>8}",
        "request", "interval", "median", "p90", "p99", "max"
    );
    for r in rows {
        let h = &r.hist;
        println!(
            "{:<30} {:<16} {:>8} {:>8} {:>8} {:>8}",
            r.kind.label(),
            r.what,
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.9)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
        );
    }
    println!("(ms; POST → log line has 1 ms resolution: `logged_at` is written in whole ms)");
}

/// The `q` quantile of `hist` in ms, counting `missing` more values as larger than any in it.
fn quantile_with_missing(hist: &Histogram<u64>, missing: usize, q: f64) -> String {
    let seen = hist.len() as f64;
    let rank = q * (seen + missing as f64);
    if seen == 0.0 || rank > seen {
        return "undeliv.".to_string();
    }
    ms(hist.value_at_quantile(rank / seen))
}

fn print_throughput(s: &Settings, runs: &[RunResult]) {
    println!();
    println!(
        "Throughput: {} s per run, fresh SQLite file per run; updates spread over {} open incidents",
        s.run_for.as_secs(),
        s.update_incidents
    );
    println!(
        "{:<30} {:>7} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8}  refused",
        "API accepts", "clients", "accepted", "secs", "req/s", "p50", "p99", "max"
    );
    for r in runs {
        let refused = if r.refused.is_empty() {
            "0".to_string()
        } else {
            r.refused
                .iter()
                .map(|(k, v)| format!("{v}×{k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let secs = r.elapsed.as_secs_f64();
        println!(
            "{:<30} {:>7} {:>9} {:>6.1} {:>8.1} {:>8} {:>8} {:>8}  {refused}",
            r.kind.label(),
            r.clients,
            r.accepted,
            secs,
            r.accepted as f64 / secs,
            ms(r.response.value_at_quantile(0.5)),
            ms(r.response.value_at_quantile(0.99)),
            ms(r.response.max()),
        );
    }
    println!("(secs: until the last client's last answer; p50/p99/max: response time, ms)");
    println!();
    println!(
        "{:<30} {:>7} {:>10} {:>9} {:>10} {:>10} {:>8} {:>8}",
        "log channel keeps up?",
        "clients",
        "in run",
        "lines/s",
        "→log p50",
        "→log p99",
        "drain s",
        "undeliv."
    );
    for r in runs {
        let drain = match r.drain {
            Some(d) => format!("{:.1}", d.as_secs_f64()),
            None => format!(">{}", DRAIN_TIMEOUT.as_secs()),
        };
        println!(
            "{:<30} {:>7} {:>10} {:>9.1} {:>10} {:>10} {:>8} {:>8}",
            r.kind.label(),
            r.clients,
            r.logged_during_run,
            r.logged_during_run as f64 / r.elapsed.as_secs_f64(),
            quantile_with_missing(&r.to_log, r.undelivered, 0.5),
            quantile_with_missing(&r.to_log, r.undelivered, 0.99),
            drain,
            r.undelivered,
        );
    }
    println!(
        "(in run, lines/s: log lines written while the clients ran; →log: POST → log line, ms,"
    );
    println!(
        " over all accepted writes; drain s: time after the run until the last line was written;"
    );
    println!(
        " undeliv.: accepted writes with no line {} s after the run)",
        DRAIN_TIMEOUT.as_secs()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let s = Settings::from_env()?;
    let dir = tempfile::tempdir()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "candor API benchmark: SQLite (WAL), in process, 127.0.0.1, system clock, {cpus} CPUs"
    );

    eprintln!("part 1: latency ...");
    let rows = latency(dir.path(), &s).await?;
    print_latency(&s, &rows);

    let mut runs = Vec::new();
    for kind in [Kind::Incident, Kind::Update] {
        for &clients in &s.clients {
            eprintln!("part 2: {} with {clients} clients ...", kind.label());
            runs.push(throughput(dir.path(), &s, kind, clients).await?);
        }
    }
    print_throughput(&s, &runs);

    let rounds: usize = setting("BENCH_SYNC_ROUNDS", 3)?;
    if rounds > 0 {
        let mut full = Vec::new();
        let mut normal = Vec::new();
        for round in 0..rounds {
            for (durability, into) in [
                (Durability::Full, &mut full),
                (Durability::Normal, &mut normal),
            ] {
                eprintln!("part 3: {durability:?}, round {} ...", round + 1);
                let name = format!("sync-{durability:?}-{round}");
                let r =
                    throughput_with(dir.path(), &s, Kind::Incident, 8, &name, durability).await?;
                into.push(r);
            }
        }
        print_durability(&full, &normal);
    }
    Ok(())
}

/// Part 3: accepted incidents/s and response p99 with `synchronous = FULL` (the anchor) and
/// `NORMAL`, and their ratio, from runs alternated in this process.
fn print_durability(full: &[RunResult], normal: &[RunResult]) {
    let rate = |r: &RunResult| r.accepted as f64 / r.elapsed.as_secs_f64();
    let p99 = |r: &RunResult| r.response.value_at_quantile(0.99) as f64 / 1000.0;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!();
    println!("part 3: SQLite synchronous, incidents with 8 clients (runs alternated)");
    println!("| setting | incidents/s per run | median | response p99 per run (ms) |");
    println!("| --- | --- | --- | --- |");
    for (label, runs) in [("FULL (Candor)", full), ("NORMAL", normal)] {
        let rates: Vec<f64> = runs.iter().map(rate).collect();
        println!(
            "| {label} | {} | {:.0} | {} |",
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            median(rates.clone()),
            runs.iter()
                .map(|r| format!("{:.1}", p99(r)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let f = median(full.iter().map(rate).collect());
    let n = median(normal.iter().map(rate).collect());
    println!("FULL / NORMAL throughput ratio (medians): {:.2}", f / n);
}
