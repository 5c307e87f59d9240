//! All SQL lives here: one module per aggregate.
//!
//! One SQL text serves SQLite and PostgreSQL wherever they agree (both accept `$1` placeholders,
//! `RETURNING` and `ON CONFLICT`); a backend-specific variant exists only where they must differ
//! (claiming work, row locks). Times are stored as milliseconds since the epoch, UTC.

pub mod alert_groups;
pub mod audit;
pub mod changes;
pub mod corrections;
pub mod deliveries;
pub mod history;
pub mod idempotency;
pub mod inbox;
pub mod incidents;
pub mod installation;
pub mod mirrors;
pub mod operators;
pub mod postmortems;
pub mod read_model;
pub mod retention;
pub mod schedule;
pub mod sessions;
pub mod subscribe_quota;
pub mod subscribers;
pub mod throttle;
pub mod tokens;
pub mod turn;
pub mod updates;

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};
use turn::{Priority, TurnGuard, WriteTurn};

pub type Conn = AnyConnection;

/// Which database is behind the pool, picked from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("unsupported database URL: {0}")]
    Url(String),
}

impl StoreError {
    /// True when the database could not be reached at all (as opposed to a bad query).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sqlx(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            StoreError::Sqlx(sqlx::Error::Database(e)) => {
                let code = e.code().unwrap_or_default();
                // PostgreSQL: connection exceptions (class 08), the server shutting down or
                // starting (57P01-57P03), too many connections (53300). SQLite: busy or locked
                // for longer than busy_timeout (5, 6 and their extended codes).
                code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || matches!(code.as_ref(), "5" | "6" | "261" | "517" | "262")
            }
            _ => false,
        }
    }

    /// True when a unique or primary-key constraint named `name` was violated.
    pub fn is_unique_violation(&self, name: &str) -> bool {
        match self {
            StoreError::Sqlx(sqlx::Error::Database(e)) => {
                e.is_unique_violation()
                    && (e.constraint() == Some(name) || e.message().contains(name))
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A pool on either backend.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Writers of this process take turns here, first come
    /// first served (the outbox's short writes first: see [`turn`]), instead of spinning in
    /// SQLite's busy handler (whose growing sleeps starve whoever has waited longest). Writers
    /// in other processes still meet `busy_timeout`.
    write_turn: Option<Arc<WriteTurn>>,
    /// On PostgreSQL, the delivery workers' own connections ([`WORKER_CONNECTIONS`], opened
    /// when first needed). A flood of requests holds every connection of `pool`, and the
    /// workers' claims and outcomes would wait in its queue behind them: the line trailed the
    /// answer by about 100 ms at the median under 32 clients. (SQLite needs no second pool:
    /// the write turn already puts the workers first.)
    workers: Option<AnyPool>,
}

/// The delivery workers' own connections on PostgreSQL, besides `database.max_connections`.
pub const WORKER_CONNECTIONS: u32 = 2;

/// SQLite's `synchronous` setting. Candor runs with `Full`: in WAL mode `NORMAL` may lose the
/// last acknowledged commits on power loss, which breaks "nothing acknowledged is lost".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

/// A write transaction (holding this process's write turn on SQLite). Derefs to a connection.
pub struct Tx {
    tx: Transaction<'static, Any>,
    _turn: Option<TurnGuard>,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}

impl Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.tx
    }
}

/// A connection for single-statement writes outside a transaction (holding this process's
/// write turn on SQLite).
pub struct WriteConn {
    conn: PoolConnection<Any>,
    _turn: Option<TurnGuard>,
}

impl Deref for WriteConn {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Connects to `url`. A SQLite file (and its folder) is created if missing, in WAL mode,
    /// with `synchronous = FULL`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_with(url, max_connections, Durability::Full).await
    }

    /// As [`Db::connect`], choosing SQLite's durability. Only the API benchmark uses
    /// [`Durability::Normal`], to measure what `FULL` costs side by side.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        durability: Durability,
    ) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(url)?;
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // synchronous = FULL: a commit is on disk before it is acknowledged,
                        // even across a power loss (NORMAL in WAL mode may lose the last ones).
                        conn.execute(match durability {
                            Durability::Full => {
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
                            }
                            Durability::Normal => {
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
                            }
                        })
                        .await?;
                    }
                    Ok(())
                })
            })
            .after_release(move |conn, _meta| {
                Box::pin(async move {
                    if backend != Backend::Sqlite {
                        return Ok(true);
                    }
                    // A write that failed inside a transaction (SQLITE_FULL, SQLITE_IOERR) can
                    // make SQLite roll the transaction back by itself; the ROLLBACK the dropped
                    // `Transaction` then queues fails ("no transaction is active"), and sqlx
                    // still counts the connection as inside one, so every later BEGIN on it
                    // fails. The ping runs after that queued ROLLBACK; a connection that still
                    // counts itself in a transaction is closed, not pooled (a new one is opened).
                    conn.ping().await?;
                    if conn.is_in_transaction() {
                        tracing::warn!(
                            "closing a database connection left inside a failed transaction"
                        );
                        return Ok(false);
                    }
                    Ok(true)
                })
            })
            .connect_with(opts.clone())
            .await?;
        let write_turn = (backend == Backend::Sqlite).then(|| Arc::new(WriteTurn::default()));
        let workers = match backend {
            Backend::Postgres => Some(
                AnyPoolOptions::new()
                    .max_connections(WORKER_CONNECTIONS)
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy_with(opts),
            ),
            Backend::Sqlite => None,
        };
        Ok(Self {
            pool,
            backend,
            write_turn,
            workers,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies pending migrations (on PostgreSQL under an advisory lock, so several instances
    /// starting together are safe).
    pub async fn migrate(&self) -> Result<()> {
        self.migrator().run(&self.pool).await?;
        Ok(())
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }

    /// True when every shipped migration has been applied.
    pub async fn migrations_current(&self) -> Result<bool> {
        let applied: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
        Ok(self
            .migrator()
            .iter()
            .all(|m| applied.iter().any(|(v,)| *v == m.version)))
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a read-then-write transaction cannot fail to upgrade.
    pub async fn begin_write(&self) -> Result<Tx> {
        self.begin_write_as(Priority::Normal).await
    }

    /// As [`Db::begin_write`], taking the write turn with `priority` (the outbox's batches of
    /// outcomes are `Urgent`).
    pub async fn begin_write_as(&self, priority: Priority) -> Result<Tx> {
        let turn = self.write_turn(priority).await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool_for(priority).begin().await?,
        };
        Ok(Tx { tx, _turn: turn })
    }

    /// A connection for one-statement writes (claims, outcomes), taken in turn on SQLite.
    pub async fn write_conn(&self) -> Result<WriteConn> {
        self.write_conn_as(Priority::Normal).await
    }

    /// As [`Db::write_conn`], taking the write turn with `priority` (the outbox's claims are
    /// `Urgent`).
    pub async fn write_conn_as(&self, priority: Priority) -> Result<WriteConn> {
        let turn = self.write_turn(priority).await;
        Ok(WriteConn {
            conn: self.pool_for(priority).acquire().await?,
            _turn: turn,
        })
    }

    /// A connection for reads; `Urgent` (the delivery workers) takes one of the workers' own on
    /// PostgreSQL.
    pub async fn read_conn_as(&self, priority: Priority) -> Result<PoolConnection<Any>> {
        Ok(self.pool_for(priority).acquire().await?)
    }

    fn pool_for(&self, priority: Priority) -> &AnyPool {
        match (&self.workers, priority) {
            (Some(workers), Priority::Urgent) => workers,
            _ => &self.pool,
        }
    }

    async fn write_turn(&self, priority: Priority) -> Option<TurnGuard> {
        match &self.write_turn {
            Some(t) => Some(t.take(priority).await),
            None => None,
        }
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(workers) = &self.workers {
            workers.close().await;
        }
    }
}

fn normalise_url(url: &str) -> Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.trim_start_matches("//");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path != ":memory:" && !path.is_empty() {
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Url(format!("cannot create folder {}: {e}", parent.display()))
                    })?;
                }
            }
        }
        let mut q = query.to_string();
        if !q.split('&').any(|kv| kv.starts_with("mode=")) {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str("mode=rwc");
        }
        return Ok((Backend::Sqlite, format!("sqlite://{path}?{q}")));
    }
    Err(StoreError::Url(
        "expected a URL starting with `sqlite:` or `postgres://`".into(),
    ))
}

/// Milliseconds since the epoch, as stored.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

/// Reads a stored time back.
pub fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn opt_from_ms(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(from_ms)
}

/// Parses a stored enum value, reporting corruption rather than panicking.
pub fn parse_enum<T: FromStr<Err = String>>(s: &str) -> Result<T> {
    s.parse().map_err(StoreError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_are_created_on_first_run() {
        let (b, u) = normalise_url("sqlite://data.db").unwrap();
        assert_eq!(b, Backend::Sqlite);
        assert_eq!(u, "sqlite://data.db?mode=rwc");
        let (_, u) = normalise_url("sqlite:x.db?mode=ro").unwrap();
        assert_eq!(u, "sqlite://x.db?mode=ro");
        assert!(normalise_url("mysql://x").is_err());
    }

    /// A full disk fails a write with a clear error; once there is space again the next write
    /// succeeds (before, the failed transaction's connection went back to the pool still
    /// counting itself inside a transaction, and every later `BEGIN` on it failed).
    #[tokio::test]
    async fn sqlite_writes_recover_once_a_full_disk_has_space_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/full.db", dir.path().display()), 1)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE blobs (b BLOB NOT NULL)")
            .execute(db.pool())
            .await
            .unwrap();
        // The disk is full: the file may not grow past its current size (the limit belongs to
        // the connection; the pool has only one).
        sqlx::query("PRAGMA max_page_count = 1")
            .execute(db.pool())
            .await
            .unwrap();
        let write = |db: Db| async move {
            let mut tx = db.begin_write().await?;
            sqlx::query("INSERT INTO blobs (b) VALUES (zeroblob(200000))")
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        };
        let err = write(db.clone()).await.unwrap_err().to_string();
        assert!(err.contains("database or disk is full"), "{err}");
        // Space again.
        sqlx::query("PRAGMA max_page_count = 1000000")
            .execute(db.pool())
            .await
            .unwrap();
        write(db.clone()).await.expect("the next write succeeds");
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM blobs")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
