//! The cached public documents answered before the router (`http::fast`) get exactly the
//! router's answer: status, every header and the body, for every document, encoding and
//! validator; everything else is left to the router.

use axum::body::Body;
use axum::http::{Method, Request};
use candor::http::fast::Shortcut;
use serde_json::json;
use tower::ServiceExt;

use crate::helpers::*;

fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

async fn parts(resp: axum::response::Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let status = resp.status().as_u16();
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    headers.sort();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn the_shortcut_answers_as_the_router_does() {
    let t = spawn_app().await;
    let a = t
        .declare(json!({ "title": "Login failures", "impact": "major",
                         "message": "Some users cannot log in.",
                         "components": { "api": "major_outage" }, "eta_in": "1h" }))
        .await;
    t.app.rebuild_pages().await.unwrap();
    let shortcut = Shortcut::new(&t.app);
    let etag = t
        .app
        .pages
        .get("/")
        .unwrap()
        .etag
        .to_str()
        .unwrap()
        .to_string();
    let mut documents: Vec<String> = t.app.pages.current().assets.keys().cloned().collect();
    documents.sort();
    assert!(documents.len() > 8, "{documents:?}");
    let incident = format!("/incidents/{}", a["id"]);
    assert!(documents.contains(&incident), "{documents:?}");
    let variants: [&[(&str, &str)]; 5] = [
        &[],
        &[("accept-encoding", "gzip, deflate, br")],
        &[("accept-encoding", "gzip")],
        &[("if-none-match", etag.as_str())],
        &[
            ("origin", "https://widget.example"),
            ("accept-encoding", "br;q=0, gzip"),
        ],
    ];
    for path in &documents {
        for headers in variants {
            let fast = shortcut
                .answer(&request(Method::GET, path, headers))
                .unwrap_or_else(|| panic!("no shortcut for {path}"));
            let routed = t
                .app
                .router()
                .oneshot(request(Method::GET, path, headers))
                .await
                .unwrap();
            let (fast, routed) = (parts(fast).await, parts(routed).await);
            assert_eq!(
                (fast.0, &fast.1),
                (routed.0, &routed.1),
                "GET {path} with {headers:?}: status and headers"
            );
            assert!(fast.2 == routed.2, "GET {path} with {headers:?}: the body");
        }
    }
    // The metrics count the shortcut's answers under the router's route labels: each document
    // was asked for once each way per variant (for `/`, the If-None-Match variant is two 304s).
    let metrics = t.get("/metrics").await.text().await.unwrap();
    for (route, ok) in [("/", 8), ("/feed.atom", 10), ("/incidents/{id}", 10)] {
        let line = format!(
            "candor_http_request_duration_seconds_count{{method=\"GET\",route=\"{route}\",status=\"2xx\"}} {ok}"
        );
        assert!(metrics.contains(&line), "no {line} in:\n{metrics}");
    }

    // Left to the router: other methods, query strings, other paths, documents not cached.
    for (method, path) in [
        (Method::HEAD, "/"),
        (Method::POST, "/"),
        (Method::OPTIONS, "/api/v2/summary.json"),
        (Method::GET, "/?month=2026-11"),
        (Method::GET, "/history"),
        (Method::GET, "/assets/heartbeat.js"),
        (Method::GET, "/incidents/999"),
        (Method::GET, "/incidents/01"),
        (Method::GET, "/api/v2/nothing.json"),
        (Method::GET, "/api/v1/incidents"),
    ] {
        assert!(
            shortcut
                .answer(&request(method.clone(), path, &[]))
                .is_none(),
            "{method} {path} must go to the router"
        );
    }
    // Through the real server, a cached document still answers (the shortcut is wired in).
    let r = t.get("/feed.atom").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    t.dispatch_all().await;
    t.finish().await;
}
