//! Static mirrors: the public site published to a directory and to a real S3-compatible server
//! (moto in server mode, started here), compared document by document with the live site.

mod s3;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::helpers::{spawn_app_with, Options, TestApp};
use candor::mirror::path_of;

/// The `mirrors:` section for these targets (YAML lines indented by four spaces).
pub(crate) fn mirrors_yaml(targets: &str) -> String {
    format!("mirrors:\n  stale_after: 10m\n  targets:\n{targets}")
}

pub(crate) async fn app_with_mirrors(targets: &str) -> TestApp {
    spawn_app_with(Options {
        extra: Some(mirrors_yaml(targets)),
        ..Default::default()
    })
    .await
}

/// An app with one directory mirror, `disk`, in a temporary directory (kept alive by the first
/// value): the directory, and the app.
pub(crate) async fn app_with_a_directory() -> (tempfile::TempDir, PathBuf, TestApp) {
    let mirror = tempfile::tempdir().unwrap();
    let dir = mirror.path().join("site");
    let t = app_with_mirrors(&format!(
        "    - {{ name: disk, kind: directory, path: \"{}\" }}\n",
        dir.display()
    ))
    .await;
    (mirror, dir, t)
}

/// What the watcher does after a change, then what the outbox does.
pub(crate) async fn publish(t: &TestApp) -> candor::outbox::PassReport {
    t.app.queue_behind().await.expect("queue publishes");
    t.dispatch_all().await
}

/// Every file under `dir` (keys relative to it), precompressed siblings included.
pub(crate) fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(at).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let key = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
                out.insert(key, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The documents the live site serves that a mirror must hold: every cached document, every
/// incident page and every history month.
pub(crate) async fn live_paths(t: &TestApp) -> Vec<String> {
    t.app.rebuild_pages().await.unwrap();
    let pages = t.app.pages.current();
    let mut paths: Vec<String> = pages.assets.keys().cloned().collect();
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    for id in candor::store::incidents::all_ids(&mut conn).await.unwrap() {
        paths.push(format!("/incidents/{id}"));
    }
    let first = candor::store::incidents::first_started(&mut conn)
        .await
        .unwrap();
    for m in candor::status_page::on_demand::months(first, t.clock_now()) {
        paths.push(candor::status_page::on_demand::history_path(m));
    }
    for (name, _, _) in candor::status_page::on_demand::ASSETS {
        paths.push(format!("/assets/{name}"));
    }
    paths.sort();
    paths.dedup();
    paths
}

/// The directory holds exactly the live site: every document, byte for byte, its gzip sibling
/// the same bytes compressed, and nothing else but the heartbeat.
pub(crate) async fn assert_directory_is_live(t: &TestApp, dir: &Path) {
    let files = files(dir);
    let mut checked = 0;
    for path in live_paths(t).await {
        let key = candor::mirror::key_of(&path);
        let live = t.http.get(t.url(&path)).send().await.unwrap();
        assert_eq!(live.status(), 200, "live {path}");
        let live = live.bytes().await.unwrap();
        let copy = files
            .get(&key)
            .unwrap_or_else(|| panic!("the mirror has no `{key}` (live {path})"));
        assert!(copy[..] == live[..], "`{key}` differs from live {path}");
        if let Some(gz) = files.get(&format!("{key}.gz")) {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut plain)
                .unwrap();
            assert!(plain == live[..], "`{key}.gz` is not `{key}` compressed");
        } else {
            assert!(
                live.len() < 512,
                "`{key}` ({} bytes) has no .gz",
                live.len()
            );
        }
        checked += 1;
    }
    for key in files.keys() {
        let base = key.trim_end_matches(".gz").trim_end_matches(".br");
        assert!(
            base == "heartbeat.json" || live_paths(t).await.contains(&path_of(base)),
            "the mirror holds `{key}`, which the live site does not serve"
        );
    }
    assert!(checked > 10, "only {checked} documents compared");
}

/// The state of the newest publish on a mirror's channel (`delivered`, `pending`...).
pub(crate) async fn last_publish(t: &TestApp, mirror: &str) -> String {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    candor::store::deliveries::latest_on_channel(&mut conn, &format!("mirror:{mirror}"))
        .await
        .unwrap()
        .map(|d| d.state.as_str().to_string())
        .unwrap_or_default()
}

pub(crate) fn heartbeat(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("heartbeat.json")).unwrap()).unwrap()
}

fn mtime(p: PathBuf) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[tokio::test]
async fn a_directory_mirror_is_the_live_site_after_every_change() {
    let (_mirror, dir, t) = app_with_a_directory().await;

    let first = t
        .declare(json!({
            "title": "Checkout errors", "impact": "major", "status": "investigating",
            "components": { "api": "partial_outage" },
            "message": "Payments fail for some customers.", "eta_in": "1h"
        }))
        .await;
    let id = first["id"].as_i64().unwrap();
    publish(&t).await;
    assert_eq!(last_publish(&t, "disk").await, "delivered");
    assert_directory_is_live(&t, &dir).await;
    let beat = heartbeat(&dir);
    assert_eq!(beat["updated_at"], json!("2026-11-23T12:00:00Z"), "{beat}");

    // An update: the incident page and the front page change; the files do not.
    let asset = dir.join("assets/local-time.js");
    let before = mtime(asset.clone());
    t.advance(std::time::Duration::from_secs(10 * 60));
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "We found the faulty deploy and are rolling it back.", "status": "identified" }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    publish(&t).await;
    assert_directory_is_live(&t, &dir).await;
    let index = String::from_utf8(std::fs::read(dir.join("index.html")).unwrap()).unwrap();
    assert!(
        index.contains("rolling it back"),
        "the front page has the update"
    );
    assert_eq!(
        mtime(asset),
        before,
        "an unchanged file is not written again"
    );

    // Resolved, and a second incident: both pages and this month's history are there.
    t.advance(std::time::Duration::from_secs(10 * 60));
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Payments work again. We're sorry." }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    t.declare(json!({ "title": "Slow dashboard", "impact": "minor", "status": "investigating", "components": { "web": "degraded_performance" }, "message": "Pages load slowly." }))
        .await;
    publish(&t).await;
    assert_directory_is_live(&t, &dir).await;
    let month = String::from_utf8(std::fs::read(dir.join("history/2026-11")).unwrap()).unwrap();
    assert!(month.contains("Checkout errors") && month.contains("Slow dashboard"));
    assert!(
        index.contains("href=\"/history/2026-11\""),
        "links need no query string"
    );
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("candor_mirror_behind_changes{mirror=\"disk\"} 0"),
        "{metrics}"
    );
    t.finish().await;
}

#[tokio::test]
async fn a_publish_killed_half_way_is_completed_after_restart() {
    let (_mirror, dir, t) = app_with_a_directory().await;
    for title in ["Search is slow", "Uploads fail", "Webhooks delayed"] {
        t.declare(json!({
            "title": title, "impact": "minor", "status": "investigating",
            "components": { "web": "degraded_performance" }, "message": "We're looking into it."
        }))
        .await;
    }
    // Something in the way of the front page, which is written last: the publish stops after
    // the files, incident and history pages, feeds and JSON.
    std::fs::create_dir_all(dir.join("index.html/in-the-way")).unwrap();
    publish(&t).await;
    assert_eq!(
        last_publish(&t, "disk").await,
        "pending",
        "failed; waits for its retry"
    );
    assert!(dir.join("incidents/1").is_file() && dir.join("feed.atom").is_file());
    assert!(
        !dir.join("heartbeat.json").exists(),
        "no heartbeat for a partial copy"
    );
    let written = mtime(dir.join("incidents/1"));

    // What a process killed there leaves: its delivery in flight and the mirror leased, both
    // to a worker that no longer exists.
    let now = t.clock_now();
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    for sql in [
        "UPDATE deliveries SET state = 'in_flight', lease_owner = 'gone:1', lease_expires_at = $1 WHERE channel = 'mirror:disk'",
        "UPDATE mirror_targets SET lease_owner = 'gone:1', lease_expires_at = $2 WHERE name = 'disk'",
    ] {
        sqlx::query(sql)
            .bind(candor::store::ms(now + chrono::Duration::seconds(60)))
            .bind(candor::store::ms(now + chrono::Duration::minutes(5)))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    drop(conn);
    std::fs::remove_dir_all(dir.join("index.html")).unwrap();

    // A new instance on the same database: nothing to take while the leases hold, then the
    // publish completes, writing only what was not written before.
    let restarted = t.another_instance(vec![]).await;
    let early = restarted.outbox().drain().await.unwrap();
    assert_eq!(early.delivered, 0, "{early:?}");
    t.advance(std::time::Duration::from_secs(6 * 60));
    restarted.outbox().drain().await.unwrap();
    assert_eq!(last_publish(&t, "disk").await, "delivered");
    assert_eq!(
        mtime(dir.join("incidents/1")),
        written,
        "a page written before the kill is not written again"
    );
    assert_directory_is_live(&t, &dir).await;
    assert_eq!(heartbeat(&dir)["updated_at"], json!("2026-11-23T12:06:00Z"));
    t.finish().await;
}
