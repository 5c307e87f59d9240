//! One publish to one mirror: what to write, in what order, and what to delete.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;

use super::target::Object;
use super::{key_of, MirrorChannel};
use crate::app::App;
use crate::channels::{DeliveryContext, SendError};
use crate::status_page::cache::Asset;
use crate::status_page::on_demand::{self, history_path, month_of};
use crate::store::{changes, incidents, mirrors};

/// Objects written side by side, at most.
const PARALLEL: usize = 16;
/// Manifest rows are recorded every this many objects, so a publish killed half way resumes
/// close to where it stopped.
const RECORD_EVERY: usize = 200;
/// How long a publish may hold a mirror before another worker may take it over; renewed after
/// every batch.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// What a publish did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub written: usize,
    pub deleted: usize,
    pub unchanged: usize,
    /// The public change counter the mirror is now current to.
    pub revision: i64,
}

/// One document to publish.
struct Doc {
    key: String,
    asset: Arc<Asset>,
    /// Written in rank order: files, pages, feeds and JSON, then the front page.
    rank: u8,
}

fn rank(path: &str) -> u8 {
    if path.starts_with("/assets/") {
        0
    } else if path.starts_with("/incidents/") || path.starts_with("/history/") {
        1
    } else if path == "/" {
        3
    } else {
        2
    }
}

/// What the manifest remembers of a document: its ETag and the headers a bucket stores with it.
fn fingerprint(a: &Asset) -> String {
    format!(
        "{}|{}|{}",
        a.etag.to_str().unwrap_or(""),
        a.content_type.to_str().unwrap_or(""),
        a.cache_control.to_str().unwrap_or("")
    )
}

fn store_err(e: impl std::fmt::Display) -> SendError {
    SendError::retryable(format!("the database could not be read: {e}"))
}

fn render_err(e: anyhow::Error) -> SendError {
    SendError::retryable(format!("cannot render the pages: {e}"))
}

impl MirrorChannel {
    pub(super) async fn run(
        &self,
        app: &App,
        full: bool,
        ctx: &DeliveryContext,
    ) -> Result<Report, SendError> {
        let owner = format!("{}:{}", app.instance, ctx.delivery_id);
        self.lease(app, &owner).await?;
        let result = self.run_leased(app, full, &owner).await;
        if let Ok(mut conn) = app.db.write_conn().await {
            let _ = mirrors::release_lease(&mut conn, &self.name, &owner).await;
        }
        result
    }

    async fn lease(&self, app: &App, owner: &str) -> Result<(), SendError> {
        let now = app.clock.now();
        let mut conn = app.db.write_conn().await.map_err(store_err)?;
        if mirrors::take_lease(&mut conn, &self.name, owner, now, now + LEASE)
            .await
            .map_err(store_err)?
        {
            Ok(())
        } else {
            Err(SendError::Retryable {
                reason: "another worker is publishing to this mirror".into(),
                retry_after: Some(std::time::Duration::from_secs(5)),
            })
        }
    }

    async fn run_leased(&self, app: &App, full: bool, owner: &str) -> Result<Report, SendError> {
        // The pages as of now: whatever changed before this publish is in them.
        app.refresh_pages().await.map_err(render_err)?;
        let pages = app.pages.current();
        if pages.snapshot.stale_since.is_some() {
            return Err(SendError::retryable(
                "the status database cannot be read; not publishing a page that may be stale",
            ));
        }
        let revision = pages.snapshot.revision;
        let now = app.clock.now();
        let (state, mut manifest) = {
            let mut conn = app.db.pool().acquire().await.map_err(store_err)?;
            let state = mirrors::state(&mut conn, &self.name)
                .await
                .map_err(store_err)?
                .unwrap_or(mirrors::TargetState {
                    version: None,
                    generation: -1,
                    published_at: None,
                });
            let mut cached = self.manifest.lock().await;
            let manifest = match cached.take() {
                Some((generation, m)) if generation == state.generation => m,
                _ => {
                    // Another instance published (or this one failed half way): what this one
                    // remembers of the history lines is not to be trusted either.
                    self.history_lines.lock().await.clear();
                    mirrors::manifest(&mut conn, &self.name)
                        .await
                        .map_err(store_err)?
                }
            };
            (state, manifest)
        };
        // What changed since the mirror's copy; `None` (never published, or the change rows no
        // longer reach back that far) means everything.
        let changed = match (full, state.version) {
            (false, Some(v)) => {
                let mut conn = app.db.pool().acquire().await.map_err(store_err)?;
                changes::changed_between(&mut conn, v, revision)
                    .await
                    .map_err(store_err)?
            }
            _ => None,
        };
        let full = changed.is_none();
        let month_turned = state
            .published_at
            .is_some_and(|p| month_of(p) != month_of(now));
        let (docs, gone) = self
            .collect(app, &pages, changed.as_deref(), month_turned)
            .await?;
        // A full publish also checks what the target really holds (a bucket emptied by hand).
        let listed = if full {
            Some(self.target.list().await?)
        } else {
            None
        };
        let mut report = Report {
            revision,
            ..Default::default()
        };
        let mut by_rank: Vec<Vec<(&Doc, String)>> = vec![Vec::new(); 4];
        for d in &docs {
            let fp = fingerprint(&d.asset);
            let missing = listed
                .as_ref()
                .is_some_and(|l| l.get(&d.key) != Some(&(d.asset.identity.len() as u64)));
            if missing || manifest.get(&d.key) != Some(&fp) {
                by_rank[usize::from(d.rank)].push((d, fp));
            } else {
                report.unchanged += 1;
            }
        }
        for group in by_rank {
            for batch in group.chunks(RECORD_EVERY) {
                let target = &self.target;
                let puts: Vec<_> = batch
                    .iter()
                    .map(|(d, fp)| {
                        let (key, asset, fp) = (d.key.clone(), d.asset.clone(), fp.clone());
                        Box::pin(async move {
                            target.put(&key, &Object::of(&asset)).await?;
                            Ok::<_, SendError>((key, fp))
                        })
                    })
                    .collect();
                let results: Vec<Result<(String, String), SendError>> = futures::stream::iter(puts)
                    .buffer_unordered(PARALLEL)
                    .collect()
                    .await;
                let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
                let ok: Vec<(String, String)> = ok.into_iter().filter_map(Result::ok).collect();
                report.written += ok.len();
                self.record(app, owner, &ok, &[]).await?;
                for (k, fp) in ok {
                    manifest.insert(k, fp);
                }
                if let Some(Err(e)) = failed.into_iter().next() {
                    self.forget().await;
                    return Err(e);
                }
            }
        }
        // Deletions last: every page that linked to a removed document no longer does.
        let keep: HashSet<&str> = docs.iter().map(|d| d.key.as_str()).collect();
        let mut doomed: Vec<String> = gone;
        if full {
            doomed.extend(
                manifest
                    .keys()
                    .filter(|k| !keep.contains(k.as_str()) && *k != HEARTBEAT)
                    .cloned(),
            );
            if let Some(listed) = &listed {
                // Objects the manifest never knew (a document removed while its row was lost).
                doomed.extend(
                    listed
                        .keys()
                        .filter(|k| !keep.contains(k.as_str()) && *k != HEARTBEAT && is_ours(k))
                        .cloned(),
                );
            }
        }
        let doomed: Vec<String> = doomed
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for key in &doomed {
            self.target.delete(key).await?;
            manifest.remove(key);
        }
        report.deleted = doomed.len();
        self.record(app, owner, &[], &doomed).await?;
        // The heartbeat last: the copy is current to `revision` as of now.
        let beat = on_demand::heartbeat(now, revision);
        self.target
            .put(
                HEARTBEAT,
                &Object {
                    body: &beat,
                    content_type: "application/json",
                    cache_control: on_demand::HEARTBEAT_CACHE_CONTROL,
                    gzip: None,
                    br: None,
                },
            )
            .await?;
        let finished = {
            let mut conn = app.db.write_conn().await.map_err(store_err)?;
            mirrors::finish(&mut conn, &self.name, owner, revision, now)
                .await
                .map_err(store_err)?
        };
        let Some(generation) = finished else {
            self.forget().await;
            return Err(SendError::retryable(
                "lost this mirror's lease to another worker before finishing",
            ));
        };
        *self.manifest.lock().await = Some((generation, manifest));
        Ok(report)
    }

    /// The copy of the manifest in memory is no longer trusted.
    async fn forget(&self) {
        *self.manifest.lock().await = None;
    }

    /// Notes objects written and deleted, and renews the lease.
    async fn record(
        &self,
        app: &App,
        owner: &str,
        wrote: &[(String, String)],
        deleted: &[String],
    ) -> Result<(), SendError> {
        if wrote.is_empty() && deleted.is_empty() {
            return Ok(());
        }
        let now = app.clock.now();
        let mut tx = app.db.begin_write().await.map_err(store_err)?;
        if !mirrors::take_lease(&mut tx, &self.name, owner, now, now + LEASE)
            .await
            .map_err(store_err)?
        {
            return Err(SendError::retryable(
                "lost this mirror's lease to another worker",
            ));
        }
        mirrors::wrote(&mut tx, &self.name, wrote)
            .await
            .map_err(store_err)?;
        mirrors::deleted(&mut tx, &self.name, deleted)
            .await
            .map_err(store_err)?;
        mirrors::touch(&mut tx, &self.name)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(())
    }

    /// The documents to compare with the mirror, and the keys of documents that no longer
    /// exist. `changed`: the incidents changed since the mirror's copy (`None`: everything).
    async fn collect(
        &self,
        app: &App,
        pages: &crate::status_page::cache::Pages,
        changed: Option<&[i64]>,
        month_turned: bool,
    ) -> Result<(Vec<Doc>, Vec<String>), SendError> {
        let mut docs: Vec<Doc> = on_demand::static_assets()
            .iter()
            .map(|(path, asset)| Doc {
                key: key_of(path),
                rank: rank(path),
                asset: asset.clone(),
            })
            .collect();
        // Everything the rebuild renders (the front page, recent incidents, feeds, JSON).
        for (path, asset) in &pages.assets {
            docs.push(Doc {
                key: key_of(path),
                rank: rank(path),
                asset: asset.clone(),
            });
        }
        let snap = &pages.snapshot;
        let mut known: HashMap<i64, &crate::store::incidents::Incident> = snap
            .recent
            .iter()
            .chain(&snap.active)
            .chain(&snap.maintenances)
            .map(|s| (s.incident.id, &s.incident))
            .collect();
        let mut read = Vec::new();
        let in_window = |id: i64| pages.assets.contains_key(&format!("/incidents/{id}"));
        // Older incidents: all of them on a full publish, the changed ones otherwise.
        let older: Vec<i64> = match changed {
            None => {
                let mut conn = app.db.pool().acquire().await.map_err(store_err)?;
                incidents::all_ids(&mut conn)
                    .await
                    .map_err(store_err)?
                    .into_iter()
                    .filter(|id| !in_window(*id))
                    .collect()
            }
            Some(ids) => ids.iter().copied().filter(|id| !in_window(*id)).collect(),
        };
        let mut gone = Vec::new();
        for id in older {
            match app.render_incident(id).await.map_err(render_err)? {
                Some((asset, inc)) => {
                    read.push(inc);
                    let path = format!("/incidents/{id}");
                    docs.push(Doc {
                        key: key_of(&path),
                        rank: rank(&path),
                        asset: Arc::new(asset),
                    });
                }
                None => gone.push(key_of(&format!("/incidents/{id}"))),
            }
        }
        for inc in &read {
            known.insert(inc.id, inc);
        }
        // History months: all on a full publish; otherwise the months of changed incidents whose
        // line in the history (title, impact, status, start, end) changed, and the last two when
        // the month has turned (the new month, and the old one's "next").
        let first = app.first_incident().await.map_err(render_err)?;
        let now = app.clock.now();
        let all = on_demand::months(first, now);
        let months: BTreeSet<chrono::NaiveDate> = match changed {
            None => all.iter().copied().collect(),
            Some(ids) => {
                let mut lines = self.history_lines.lock().await;
                let mut m: BTreeSet<_> = BTreeSet::new();
                for inc in ids.iter().filter_map(|id| known.get(id)) {
                    let line = history_line(inc);
                    if lines.insert(inc.id, line) != Some(line) {
                        m.insert(month_of(inc.started_at));
                    }
                }
                m.retain(|m| all.contains(m));
                if month_turned {
                    m.extend(all.iter().rev().take(2).copied());
                }
                m
            }
        };
        for month in months {
            // Kept per revision with the pages rendered on demand: the live route and every
            // mirror share one rendering.
            let asset = app
                .history_asset(pages.snapshot.revision, month, first)
                .await
                .map_err(render_err)?;
            let path = history_path(month);
            docs.push(Doc {
                key: key_of(&path),
                rank: rank(&path),
                asset,
            });
        }
        Ok((docs, gone))
    }
}

/// What an incident's line on its month's history page is made of, hashed: a change that
/// leaves it alone leaves the month's page alone.
fn history_line(i: &crate::store::incidents::Incident) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &i.title,
        i.impact.as_str(),
        i.status.as_str(),
        i.started_at,
        i.resolved_at,
    )
        .hash(&mut h);
    h.finish()
}

/// The heartbeat's key.
pub const HEARTBEAT: &str = "heartbeat.json";

/// Keys of the kinds Candor publishes (a full publish deletes stray ones of these kinds only,
/// never other files that share the bucket or directory).
fn is_ours(key: &str) -> bool {
    key == "index.html"
        || key.starts_with("incidents/")
        || key.starts_with("history/")
        || key.starts_with("api/v2/")
        || key.starts_with("assets/")
        || matches!(key, "feed.atom" | "feed.rss" | "maintenance.ics")
}
