//! Documents rendered when asked for rather than at every rebuild: older incidents' pages and
//! history months (served by the public routes, and published to mirrors), plus the pages'
//! static files and the heartbeat.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::cache::Asset;
use super::{pages, snapshot};
use crate::app::App;
use crate::store::incidents;

const JS: &str = "text/javascript; charset=utf-8";

/// The pages' scripts, as files (the Content-Security-Policy allows no inline script), and the
/// default mark (favicon and logo): name, content type, body. Served at `/assets/<name>`.
pub const ASSETS: &[(&str, &str, &str)] = &[
    (
        "local-time.js",
        JS,
        include_str!("../../templates/assets/local-time.js"),
    ),
    (
        "countdown.js",
        JS,
        include_str!("../../templates/assets/countdown.js"),
    ),
    (
        "preview.js",
        JS,
        include_str!("../../templates/assets/preview.js"),
    ),
    (
        "mark.svg",
        "image/svg+xml",
        include_str!("../../templates/assets/mark.svg"),
    ),
    (
        "live.js",
        JS,
        include_str!("../../templates/assets/live.js"),
    ),
    (
        "heartbeat.js",
        JS,
        include_str!("../../templates/assets/heartbeat.js"),
    ),
];

/// `Cache-Control` of the static files.
pub const ASSET_CACHE_CONTROL: &str = "public, max-age=3600";

/// `Cache-Control` of `heartbeat.json`: always asked again.
pub const HEARTBEAT_CACHE_CONTROL: &str = "no-cache";

/// The heartbeat's body: when the copy it sits beside was last known current, and to which
/// change. The page's script (`heartbeat.js`) shows a banner when it is old.
pub fn heartbeat(updated_at: DateTime<Utc>, revision: i64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "updated_at": updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "revision": revision,
    }))
    .expect("JSON values serialise")
}

/// `2026-11`: four digits, a dash, two digits, and a real month.
pub fn parse_month(raw: &str) -> Option<NaiveDate> {
    let b = raw.as_bytes();
    let shape = b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    NaiveDate::from_ymd_opt(raw[..4].parse().ok()?, raw[5..].parse().ok()?, 1)
}

/// The first day of `t`'s month.
pub fn month_of(t: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(t.year(), t.month(), 1).expect("a month")
}

/// The path of a month's history page: `/history/2026-11`.
pub fn history_path(month: NaiveDate) -> String {
    format!("/history/{}", month.format("%Y-%m"))
}

/// Every month that has a history page: from the first incident's to `now`'s.
pub fn months(first: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Vec<NaiveDate> {
    let this = month_of(now);
    let mut m = first.map(month_of).unwrap_or(this).min(this);
    let mut out = Vec::new();
    while m <= this {
        out.push(m);
        m = m
            .checked_add_months(chrono::Months::new(1))
            .expect("in range");
    }
    out
}

impl App {
    /// Renders (and compresses) a document on a blocking thread, a few at a time, so the async
    /// threads stay free to answer from the cache.
    pub async fn render_blocking<F>(&self, render: F) -> anyhow::Result<Asset>
    where
        F: FnOnce() -> anyhow::Result<Asset> + Send + 'static,
    {
        let _slot = self
            .pages
            .render_slots
            .acquire()
            .await
            .map_err(|e| anyhow::anyhow!("render slots closed: {e}"))?;
        tokio::task::spawn_blocking(render).await?
    }

    /// Renders incident `id`'s page from the database (`None`: no such incident), with the
    /// incident as read.
    pub async fn render_incident(
        &self,
        id: i64,
    ) -> anyhow::Result<Option<(Asset, crate::store::incidents::Incident)>> {
        let mut conn = self.db.pool().acquire().await?;
        let Some(inc) = incidents::get(&mut conn, id).await? else {
            return Ok(None);
        };
        let story = snapshot::story(&mut conn, &self.config, inc.clone()).await?;
        drop(conn);
        let (config, renderer, now) =
            (self.config.clone(), self.renderer.clone(), self.clock.now());
        let asset = self
            .render_blocking(move || {
                Ok(pages::incident_page(&story, &config, &renderer, now, None)?)
            })
            .await?;
        Ok(Some((asset, inc)))
    }

    /// When the first incident started, as of the pages' current revision (looked up once per
    /// revision).
    pub async fn first_incident(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let revision = self.pages.current().snapshot.revision;
        if let Some(f) = self.pages.first_incident(revision) {
            return Ok(f);
        }
        let mut conn = self.db.pool().acquire().await?;
        let f = incidents::first_started(&mut conn).await?;
        self.pages.keep_first_incident(revision, f);
        Ok(f)
    }

    /// The history page of `month` as of pages revision `revision`: rendered once per revision
    /// and kept with the documents rendered on demand (the public route and every mirror share
    /// it).
    pub async fn history_asset(
        &self,
        revision: i64,
        month: NaiveDate,
        first: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Arc<Asset>> {
        let key = format!("history:{month}");
        if let Some(asset) = self.pages.on_demand(revision, &key) {
            return Ok(asset);
        }
        let asset = Arc::new(self.render_history(month, first).await?);
        self.pages.keep(revision, key, asset.clone());
        Ok(asset)
    }

    /// Renders the history page of `month` (which must lie between the first incident's month
    /// and this one).
    pub async fn render_history(
        &self,
        month: NaiveDate,
        first: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Asset> {
        let now = self.clock.now();
        let from = month.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let to = month
            .checked_add_months(chrono::Months::new(1))
            .expect("in range")
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc();
        let list = {
            let mut conn = self.db.pool().acquire().await?;
            incidents::started_between(&mut conn, from, to).await?
        };
        let (config, renderer) = (self.config.clone(), self.renderer.clone());
        self.render_blocking(move || {
            Ok(pages::history_page(
                month, &list, first, &config, &renderer, now,
            )?)
        })
        .await
    }
}

/// Every static file, as assets by path (`/assets/<name>`): what the mirror publishes.
/// Compressed once per process.
pub fn static_assets() -> &'static [(String, Arc<Asset>)] {
    static ALL: std::sync::LazyLock<Vec<(String, Arc<Asset>)>> = std::sync::LazyLock::new(|| {
        let cc = axum::http::HeaderValue::from_static(ASSET_CACHE_CONTROL);
        ASSETS
            .iter()
            .map(|(n, ct, body)| {
                (
                    format!("/assets/{n}"),
                    Arc::new(Asset::new(ct, body.as_bytes().to_vec(), &cc)),
                )
            })
            .collect()
    });
    &ALL
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn months_run_from_the_first_incident_to_now() {
        let first = Utc.with_ymd_and_hms(2025, 11, 20, 0, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 2, 3, 0, 0, 0).unwrap();
        let m: Vec<String> = months(Some(first), now)
            .iter()
            .map(|d| history_path(*d))
            .collect();
        assert_eq!(
            m,
            [
                "/history/2025-11",
                "/history/2025-12",
                "/history/2026-01",
                "/history/2026-02"
            ]
        );
        assert_eq!(months(None, now).len(), 1);
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("2026-1"), None);
    }
}
