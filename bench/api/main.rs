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

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use candor::store::Durability;
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;

mod harness;
use harness::*;

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
        "Throughput: {} s per run, fresh database per run; updates spread over {} open incidents",
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
        "{:<30} {:>7} {:>10} {:>9} {:>7} {:>10} {:>10} {:>8} {:>8}",
        "log channel keeps up?",
        "clients",
        "in run",
        "lines/s",
        "÷ acc.",
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
            "{:<30} {:>7} {:>10} {:>9.1} {:>7.2} {:>10} {:>10} {:>8} {:>8}",
            r.kind.label(),
            r.clients,
            r.logged_during_run,
            r.logged_during_run as f64 / r.elapsed.as_secs_f64(),
            pace(r),
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
        " undeliv.: accepted writes with no line {} s after the run; ÷ acc.: lines/s ÷ accepted/s)",
        DRAIN_TIMEOUT.as_secs()
    );
}

/// Log lines written during the run per accepted write: 1.0 when the outbox keeps pace.
fn pace(r: &RunResult) -> f64 {
    if r.accepted == 0 {
        return 0.0;
    }
    r.logged_during_run as f64 / r.accepted as f64
}

/// The figures the outbox is held to, over every throughput run: the lowest pace (lines/s ÷
/// accepted writes/s) and the highest POST → log line p99.
fn print_outbox_summary(runs: &[RunResult]) {
    let worst_pace = runs.iter().map(pace).fold(f64::INFINITY, f64::min);
    let worst_p99 = runs
        .iter()
        .map(|r| quantile_with_missing(&r.to_log, r.undelivered, 0.99))
        .max_by_key(|q| q.parse::<f64>().map_or(u64::MAX, |v| (v * 1000.0) as u64))
        .unwrap_or_default();
    println!();
    println!(
        "outbox pace (log lines/s ÷ accepted writes/s, lowest run): {worst_pace:.2}; POST → log line p99, highest run: {worst_p99} ms"
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let s = Settings::from_env()?;
    let dir = tempfile::tempdir()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let backend = if std::env::var("BENCH_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        "PostgreSQL (BENCH_DATABASE_URL)"
    } else {
        "SQLite (WAL)"
    };
    println!("candor API benchmark: {backend}, in process, 127.0.0.1, system clock, {cpus} CPUs");

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
    print_outbox_summary(&runs);

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
