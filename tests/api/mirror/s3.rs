//! A real S3-compatible server (moto in server mode, from PyPI) started by the test: objects,
//! their content types and cache policies, a bucket emptied by hand, and a target that is down
//! while another publishes.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, ObjectStore};
use serde_json::json;

use super::{app_with_mirrors, assert_directory_is_live, last_publish, live_paths, publish};
use candor::mirror::key_of;

/// A moto server on a loopback port, stopped on drop.
pub(crate) struct Moto {
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip(why: &str) -> bool {
    crate::helpers::opted_out("CANDOR_SKIP_S3_TESTS", why)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts moto on `port` and creates bucket `status`. Without moto the test fails naming what
/// to install, unless `CANDOR_SKIP_S3_TESTS` is set.
pub(crate) async fn start_moto(port: u16) -> Option<Moto> {
    if skip("the S3 tests need python3 with moto[server]") {
        return None;
    }
    let has_moto = Command::new("python3")
        .args(["-c", "import moto.server, flask"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_moto,
        "the S3 tests need a real S3-compatible server: python3 with moto in server mode. \
         Install it with `pip install 'moto[server]'`, or set CANDOR_SKIP_S3_TESTS=1 to skip them"
    );
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let moto = Moto { child };
    // Ready when it answers (bounded: about 30 s).
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/status");
    for _ in 0..300 {
        if let Ok(r) = http.put(&url).send().await {
            assert!(r.status().is_success(), "create bucket: {}", r.status());
            return Some(moto);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("moto did not start on port {port}");
}

pub(crate) fn s3_target(port: u16) -> String {
    format!(
        "    - {{ name: s3, kind: s3, bucket: status, prefix: \"site/\", endpoint: \"http://127.0.0.1:{port}\", access_key_id: testing, secret_access_key: testing }}\n"
    )
}

fn client(port: u16) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name("status")
            .with_region("us-east-1")
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_bucket_holds_every_document_with_its_type_and_cache_policy() {
    let port = free_port();
    let Some(_moto) = start_moto(port).await else {
        return;
    };
    let t = app_with_mirrors(&s3_target(port)).await;
    t.declare(json!({
        "title": "Login failures", "impact": "critical", "status": "investigating",
        "components": { "web": "major_outage" }, "message": "Nobody can sign in.", "eta_in": "30m"
    }))
    .await;
    publish(&t).await;
    assert_eq!(last_publish(&t, "s3").await, "delivered");
    let s3 = client(port);
    for path in live_paths(&t).await {
        let live = t.http.get(t.url(&path)).send().await.unwrap();
        let ct = live.headers()["content-type"].to_str().unwrap().to_string();
        let cc = live.headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_string();
        let live = live.bytes().await.unwrap();
        let key = format!("site/{}", key_of(&path));
        let got = s3
            .get(&ObjectPath::parse(&key).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let attrs = got.attributes.clone();
        let body = got.bytes().await.unwrap();
        assert!(body[..] == live[..], "{key} differs from live {path}");
        assert_eq!(
            attrs.get(&Attribute::ContentType).map(|v| v.as_ref()),
            Some(ct.as_str()),
            "{key}"
        );
        assert_eq!(
            attrs.get(&Attribute::CacheControl).map(|v| v.as_ref()),
            Some(cc.as_str()),
            "{key}"
        );
    }
    let beat = s3
        .get(&ObjectPath::parse("site/heartbeat.json").unwrap())
        .await
        .unwrap();
    assert_eq!(
        beat.attributes
            .get(&Attribute::CacheControl)
            .map(|v| v.as_ref()),
        Some("no-cache")
    );

    // Someone empties part of the bucket by hand: `candor mirror sync` (a full publish) lists
    // the bucket and writes what is missing, and deletes a stray document of ours.
    s3.delete(&ObjectPath::parse("site/index.html").unwrap())
        .await
        .unwrap();
    s3.put(
        &ObjectPath::parse("site/incidents/999").unwrap(),
        "stale".into(),
    )
    .await
    .unwrap();
    s3.put(
        &ObjectPath::parse("site/robots.txt").unwrap(),
        "not ours".into(),
    )
    .await
    .unwrap();
    t.app.queue_publish(true).await.unwrap();
    t.dispatch_all().await;
    assert!(s3
        .head(&ObjectPath::parse("site/index.html").unwrap())
        .await
        .is_ok());
    assert!(matches!(
        s3.head(&ObjectPath::parse("site/incidents/999").unwrap())
            .await,
        Err(object_store::Error::NotFound { .. })
    ));
    assert!(
        s3.head(&ObjectPath::parse("site/robots.txt").unwrap())
            .await
            .is_ok(),
        "files that are not Candor's are left alone"
    );
    t.finish().await;
}

#[tokio::test]
async fn a_target_that_is_down_is_retried_while_the_other_publishes() {
    if skip("the S3 tests need python3 with moto[server]") {
        return;
    }
    let port = free_port(); // nothing listens there yet
    let mirror = tempfile::tempdir().unwrap();
    let dir = mirror.path().join("site");
    let t = app_with_mirrors(&format!(
        "{}    - {{ name: disk, kind: directory, path: \"{}\" }}\n",
        s3_target(port),
        dir.display()
    ))
    .await;
    t.declare(json!({
        "title": "Queue delays", "impact": "minor", "status": "investigating",
        "components": { "email": "degraded_performance" }, "message": "Mail is slow."
    }))
    .await;
    publish(&t).await;
    assert_eq!(last_publish(&t, "disk").await, "delivered");
    assert_eq!(
        last_publish(&t, "s3").await,
        "pending",
        "failed; waits for its retry"
    );
    assert_directory_is_live(&t, &dir).await;
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let failing = candor::store::deliveries::latest_on_channel(&mut conn, "mirror:s3")
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    assert_eq!(failing.state.as_str(), "pending", "waiting for its retry");
    let error = failing.last_error.unwrap();
    assert!(
        error.contains("listing the mirror") || error.contains("writing"),
        "{error}"
    );
    assert!(
        !error.contains("testing"),
        "no credentials in errors: {error}"
    );
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("candor_deliveries_total{channel=\"mirror:s3\",outcome=\"retry\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("candor_mirror_behind_changes{mirror=\"disk\"} 0"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("candor_mirror_behind_changes{mirror=\"s3\"} 0"),
        "{metrics}"
    );
    // The console's dashboard lists it with the deliveries that failed, named for what it is.
    crate::console::add_operator(
        &t,
        "ops@acme.test",
        candor::store::operators::Role::Responder,
    )
    .await;
    let console = crate::console::Browser::new(&t);
    console.login("ops@acme.test").await;
    let dashboard = console.page("/admin").await;
    assert!(
        dashboard.contains("Publish to the mirror") && dashboard.contains("mirror:s3"),
        "{dashboard}"
    );

    // The server comes up; after the backoff the retry publishes everything.
    let Some(_moto) = start_moto(port).await else {
        return;
    };
    t.advance(std::time::Duration::from_secs(11 * 60));
    t.dispatch_all().await;
    assert_eq!(last_publish(&t, "s3").await, "delivered");
    let s3 = client(port);
    for path in live_paths(&t).await {
        let key = format!("site/{}", key_of(&path));
        assert!(
            s3.head(&ObjectPath::parse(&key).unwrap()).await.is_ok(),
            "{key} is in the bucket"
        );
    }
    t.finish().await;
}
