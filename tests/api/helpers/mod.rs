//! One place for test plumbing: spawn the app on port 0 with a fresh database and a manual clock,
//! talk to it over HTTP, drive the scheduler and the outbox, read what the channels wrote.
//!
//! The database is a new SQLite file per test, or, when `CANDOR_TEST_DATABASE_URL` names a
//! PostgreSQL server (an admin URL such as `postgres://candor:candor@127.0.0.1/postgres`), a new
//! database created on it per test. `.ci/run` runs the whole suite both ways.
//!
//! Every test ends with `t.finish().await`, which fails if the outbox still holds a delivery the
//! worker would send (pending, or failed and waiting for its retry) unless the test said why with
//! `t.expect_leftover("...")`. A `TestApp` dropped without `finish()` fails its test, so the check
//! cannot be forgotten (see `impl Drop for TestApp`).
//!
//! `TEST_LOG=debug cargo test --test api NAME` shows the app's logs (any `RUST_LOG`-style filter,
//! e.g. `TEST_LOG=candor=debug,info`), captured per test like `println!`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use candor::channels::Channel;
use candor::config::{Config, Overrides};
use candor::store::{deliveries, tokens};
use candor::{App, Clock, ManualClock};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use tempfile::TempDir;
use wiremock::MockServer;

mod logs;
pub use logs::*;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

/// A database for one test: a SQLite file in `dir`, or a fresh PostgreSQL database.
pub async fn fresh_database_url(dir: &TempDir) -> String {
    match std::env::var("CANDOR_TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => {
            sqlx::any::install_default_drivers();
            let name = format!("candor_t_{}", hex(8));
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                .await
                .expect("connect to CANDOR_TEST_DATABASE_URL");
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            let mut url = url::Url::parse(&admin).expect("CANDOR_TEST_DATABASE_URL is a URL");
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
        _ => format!("sqlite://{}", dir.path().join("candor.db").display()),
    }
}

pub fn on_postgres() -> bool {
    std::env::var("CANDOR_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty())
}

fn hex(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether the tests that need an outside server were opted out of with `var` (set, not `0`):
/// then they pass without running, and say so on stderr past the test harness's capture.
pub fn opted_out(var: &str, why: &str) -> bool {
    let skip = std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0");
    if skip {
        use std::io::Write;
        let name = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let line = format!("SKIPPED {name}: {var} is set ({why})\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    skip
}

/// How a test wants its app.
#[derive(Default)]
pub struct Options {
    /// Adds a `hook` webhook channel pointed at a wiremock server.
    pub webhook: bool,
    /// Replaces configured channels (by id) with these.
    pub channels: Vec<Arc<dyn Channel>>,
    /// Extra `outbox:` settings, as YAML flow-mapping entries.
    pub outbox: Option<String>,
    /// More top-level YAML appended to the config (keys the default leaves out).
    pub extra: Option<String>,
    /// More entries under `channels:`, as YAML lines indented by two spaces.
    pub extra_channels: Option<String>,
}

pub struct TestApp {
    pub app: App,
    /// Set by `finish()`; checked when the value is dropped.
    finished: bool,
    /// Why this test may end with deliveries left in the outbox (`expect_leftover`).
    leftover: std::sync::Mutex<Option<String>>,
    pub clock: Arc<ManualClock>,
    pub addr: SocketAddr,
    pub token: String,
    pub http: reqwest::Client,
    pub dir: Arc<TempDir>,
    pub database_url: String,
    pub mock: Option<MockServer>,
    pub config_yaml: String,
}

pub fn config_yaml(
    dir: &TempDir,
    database_url: &str,
    webhook: Option<&str>,
    outbox: Option<&str>,
) -> String {
    let d = dir.path().display();
    let hook = webhook
        .map(|u| format!("  hook: {{ type: webhook, url: \"{u}/hook\", bearer_token: \"s3cret-token\", limits: {{ timeout: 5s }} }}\n"))
        .unwrap_or_default();
    let outbox =
        outbox.unwrap_or("lease: 60s, max_attempts: 5, backoff_min: 10s, backoff_max: 10m");
    format!(
        r#"
site: {{ name: "Acme Cloud", public_url: "https://status.acme.test", support_contact: "help@acme.test" }}
database: {{ url: "{database_url}", max_connections: 4 }}
groups: [ {{ id: core, name: Core }} ]
components:
  - {{ id: api, name: "Public API", group: core }}
  - {{ id: web, name: "Website", group: core }}
  - {{ id: email, name: "Email delivery" }}
policies: {{ major: {{ update_every: 30m }}, critical: {{ update_every: 15m }} }}
ops: {{ channels: [ops], remind_before: 5m }}
outbox: {{ {outbox} }}
channels:
  log: {{ type: log, path: "{d}/public.log" }}
  ops: {{ type: log, path: "{d}/ops.log" }}
{hook}"#
    )
}

pub fn parse_config(yaml: &str) -> Config {
    Config::from_yaml_with_env(yaml, &Overrides::default(), &|_| None)
        .expect("test config is valid")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    init_test_log();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let database_url = fresh_database_url(&dir).await;
    let mock = if opts.webhook {
        Some(MockServer::start().await)
    } else {
        None
    };
    let yaml = config_yaml(
        &dir,
        &database_url,
        mock.as_ref().map(|m| m.uri()).as_deref(),
        opts.outbox.as_deref(),
    );
    let yaml = match &opts.extra_channels {
        Some(more) => yaml.replace("channels:\n  log:", &format!("channels:\n{more}  log:")),
        None => yaml,
    };
    let yaml = yaml + opts.extra.as_deref().unwrap_or("");
    let clock = Arc::new(ManualClock::new(t0()));
    let app = build(&yaml, clock.clone(), opts.channels).await;
    serve_app(app, clock, dir, database_url, mock, yaml).await
}

/// Serves a built app on port 0 with a `ci-script` token: the `TestApp` a test talks to.
pub async fn serve_app(
    app: App,
    clock: Arc<ManualClock>,
    dir: Arc<TempDir>,
    database_url: String,
    mock: Option<MockServer>,
    config_yaml: String,
) -> TestApp {
    init_test_log();
    let token = {
        let mut conn = app.db.pool().acquire().await.unwrap();
        tokens::create(
            &mut conn,
            "ci-script",
            &tokens::Scope::ALL,
            "test",
            clock.now(),
        )
        .await
        .unwrap()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router();
    let shortcut = candor::http::fast::Shortcut::new(&app);
    let limits = app.config.server.clone();
    tokio::spawn(async move {
        candor::http::server::serve(
            listener,
            router,
            Some(shortcut),
            &limits,
            tokio_util::sync::CancellationToken::new(),
        )
        .await
    });
    TestApp {
        app,
        finished: false,
        leftover: std::sync::Mutex::new(None),
        clock,
        addr,
        token,
        http: reqwest::Client::new(),
        dir,
        database_url,
        mock,
        config_yaml,
    }
}

async fn build(yaml: &str, clock: Arc<ManualClock>, channels: Vec<Arc<dyn Channel>>) -> App {
    let mut b = App::builder(parse_config(yaml)).clock(clock);
    for c in channels {
        b = b.channel(c);
    }
    b.build().await.expect("app builds")
}

impl TestApp {
    /// Another instance on the same database and clock (as a second `candor serve` would be).
    pub async fn another_instance(&self, channels: Vec<Arc<dyn Channel>>) -> App {
        build(&self.config_yaml, self.clock.clone(), channels).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn advance_to(&self, minutes_after_t0: i64) {
        self.clock
            .set(t0() + chrono::Duration::minutes(minutes_after_t0));
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .patch(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// Declares an incident and returns its JSON.
    pub async fn declare(&self, body: Value) -> Value {
        let r = self.post("/api/v1/incidents", &body).await;
        assert_eq!(
            r.status(),
            201,
            "declare failed: {}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    pub async fn incident(&self, id: i64) -> Value {
        let r = self.get(&format!("/api/v1/incidents/{id}")).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Runs one scheduler tick at the clock's time; returns how many actions it took.
    pub async fn tick(&self) -> usize {
        self.app.scheduler().tick().await.expect("tick")
    }

    /// Delivers everything due at the clock's time.
    pub async fn dispatch_all(&self) -> candor::outbox::PassReport {
        self.app.outbox().drain().await.expect("drain")
    }

    /// Lines the public `log` channel wrote.
    pub fn public_log(&self) -> Vec<Value> {
        read_lines(self.dir.path().join("public.log"))
    }

    /// Lines the `ops` channel wrote.
    pub fn ops_log(&self) -> Vec<Value> {
        read_lines(self.dir.path().join("ops.log"))
    }

    pub async fn unfinished_deliveries(&self) -> i64 {
        let mut conn = self.app.db.pool().acquire().await.unwrap();
        deliveries::unfinished(&mut conn).await.unwrap()
    }

    /// Asserts, mid-test, that nothing is left for the workers to send.
    pub async fn assert_outbox_empty(&self) {
        let left = self.leftover_deliveries().await;
        assert!(
            left.is_empty(),
            "{} deliveries were left unprocessed:\n{}",
            left.len(),
            left.join("\n")
        );
    }

    /// Says why this test ends with deliveries the worker would still send (a retry scheduled
    /// for later, a remote kept down, ...). `finish()` then requires at least one to be left,
    /// so a reason that no longer holds fails too.
    pub fn expect_leftover(&self, reason: &str) {
        *self.leftover.lock().unwrap() = Some(reason.to_string());
    }

    /// The last line of every test: fails if the outbox still holds a delivery the worker would
    /// send (pending, or failed and waiting for a retry), unless `expect_leftover` said why.
    pub async fn finish(mut self) {
        self.finished = true;
        let left = self.leftover_deliveries().await;
        match self.leftover.lock().unwrap().take() {
            None => assert!(
                left.is_empty(),
                "the test ended with {} deliveries the worker would still send:\n{}\n\
                 deliver them (`t.dispatch_all().await`) or say why with `t.expect_leftover(\"...\")`",
                left.len(),
                left.join("\n")
            ),
            Some(reason) => assert!(
                !left.is_empty(),
                "`expect_leftover({reason:?})` but the outbox is empty: remove the reason"
            ),
        }
    }

    async fn leftover_deliveries(&self) -> Vec<String> {
        leftover_deliveries(&self.database_url, self.clock.now()).await
    }

    /// Updates of an incident of one kind.
    pub async fn updates_of_kind(&self, id: i64, kind: &str) -> Vec<Value> {
        self.incident(id).await["updates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["kind"] == kind)
            .cloned()
            .collect()
    }
}

/// One line per delivery in the database at `database_url` that a worker would still send
/// (pending, or failed and waiting for a retry), for failure messages. It reads through a
/// connection of its own, so it works after a test closed the app's pool, and on the database of
/// a `candor serve` the test started.
pub async fn leftover_deliveries(database_url: &str, now: DateTime<Utc>) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(database_url)
        .await
        .expect("connect to the test database to check its outbox");
    #[derive(sqlx::FromRow)]
    struct Left {
        id: i64,
        channel: String,
        audience: String,
        state: String,
        attempts: i64,
        next_attempt_at: i64,
        last_error: Option<String>,
    }
    let rows: Vec<Left> = sqlx::query_as(
        "SELECT id, channel, audience, state, attempts, next_attempt_at, last_error \
         FROM deliveries WHERE state IN ('pending', 'in_flight') ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|d| {
            let due = DateTime::<Utc>::from_timestamp_millis(d.next_attempt_at).unwrap_or(now);
            format!(
                "  delivery {} to {} ({}): {}, {} attempts, due {due} ({}s from the clock's now), \
                 last error: {}",
                d.id,
                d.channel,
                d.audience,
                d.state,
                d.attempts,
                (due - now).num_seconds(),
                d.last_error.as_deref().unwrap_or("none")
            )
        })
        .collect()
}

/// A test that ends without `finish()` fails: the outbox check cannot be forgotten.
///
/// Why a flag checked here rather than the outbox check itself: `Drop` runs on the test's tokio
/// runtime thread, where nothing async can be awaited (a nested `block_on` panics, and the pool's
/// connections belong to the runtime this very call is blocking). The check itself is async, so
/// it runs in `finish()`; `Drop` only makes forgetting it fail loudly. A test that is already
/// failing (panicking) is not made to panic twice.
impl Drop for TestApp {
    fn drop(&mut self) {
        if !self.finished && !std::thread::panicking() {
            panic!(
                "this test never called `t.finish().await`: every test ends by checking that the \
                 outbox is empty, or says why not with `t.expect_leftover(\"...\")`"
            );
        }
    }
}

fn read_lines(path: PathBuf) -> Vec<Value> {
    match std::fs::read_to_string(path) {
        Ok(s) => s
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A channel that signals when a send starts and then never finishes: a worker stuck here is
/// what a process killed mid-delivery looks like from the database.
pub struct HangingChannel {
    pub id: String,
    pub started: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl Channel for HangingChannel {
    fn id(&self) -> &str {
        &self.id
    }
    async fn deliver(
        &self,
        _msg: &candor::channels::Message,
        _ctx: &candor::channels::DeliveryContext,
    ) -> Result<candor::channels::Sent, candor::channels::SendError> {
        self.started.notify_one();
        std::future::pending().await
    }
}

impl TestApp {
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

impl TestApp {
    /// GETs a public page after rebuilding the page cache (as the refresher would).
    pub async fn page(&self, path: &str) -> reqwest::Response {
        self.app.rebuild_pages().await.expect("pages rebuild");
        self.http.get(self.url(path)).send().await.unwrap()
    }
}

impl TestApp {
    /// The status page's read model as of the clock's time.
    pub async fn snapshot(&self) -> candor::status_page::snapshot::Snapshot {
        let mut conn = self.app.db.pool().acquire().await.unwrap();
        candor::status_page::snapshot::build(&mut conn, &self.app.config, self.clock_now())
            .await
            .unwrap()
    }
}

/// Mounts `verb route` answering 503 once, then `ok`: a failure the client must retry through.
pub async fn mount_flaky(
    server: &MockServer,
    verb: &str,
    route: &str,
    ok: wiremock::ResponseTemplate,
) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            serde_json::json!({ "error": { "code": "unavailable", "message": "db" } }),
        ))
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(ok)
        .mount(server)
        .await;
}

/// Asserts `server` saw one failed attempt and one retry, both with the same CLI-made
/// `Idempotency-Key`.
pub async fn assert_retried_with_one_key(server: &MockServer) {
    let keys: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers["idempotency-key"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 2, "one attempt and one retry");
    assert_eq!(keys[0], keys[1]);
    assert!(keys[0].starts_with("cli-"));
}
