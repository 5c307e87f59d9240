//! The public documents everyone refreshes during an outage, answered before the router.
//!
//! A `GET` of `/`, the feeds, the calendar, a Statuspage-compatible v2 document or a recent
//! incident's page is a lookup in the page cache. The accept loop asks [`Shortcut::answer`]
//! first and hands the request to the router only when it says `None` (any other method or
//! path, a query string, a document not in the cache). The answer is the router's, header for
//! header: the cached document's own headers, the security headers of
//! [`super::security::everywhere`], the v2 documents' CORS headers (as `tower_http`'s layer in
//! [`super::public`] writes them for a simple request) and the same `candor_http_*` metrics.
//! `tests/api/fast_path.rs` compares the two for every document.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request};
use axum::response::Response;

use crate::app::App;

/// Answers cached documents without the router; cheap to clone (one per connection).
#[derive(Clone)]
pub struct Shortcut {
    app: App,
    /// Set when the answer has none of its own, as the router's layers do.
    security: Arc<[(HeaderName, HeaderValue)]>,
}

/// What the v2 routes' CORS layer adds to a simple (non-preflight) request's answer.
const V2_VARY: &str = "origin, access-control-request-method, access-control-request-headers";

impl Shortcut {
    pub fn new(app: &App) -> Self {
        Self {
            app: app.clone(),
            security: super::security::headers(app).into(),
        }
    }

    /// The answer, or `None` for the router to give it.
    pub fn answer<B>(&self, req: &Request<B>) -> Option<Response> {
        if req.method() != Method::GET || req.uri().query().is_some() {
            return None;
        }
        let path = req.uri().path();
        let (route, v2) = match path {
            "/" | "/feed.atom" | "/feed.rss" => (path, false),
            crate::status_page::ics::PATH => (path, false),
            p if p.starts_with("/api/v2/") => ("/api/v2/{*path}", true),
            p if p.starts_with("/incidents/") => ("/incidents/{id}", false),
            _ => return None,
        };
        let started = tokio::time::Instant::now();
        let asset = self.app.pages.get(path)?;
        let mut resp = asset.respond(req.headers());
        let headers = resp.headers_mut();
        if v2 {
            headers.append(header::VARY, HeaderValue::from_static(V2_VARY));
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        self.secure(headers);
        // As axum's router does for a body of known length.
        if let Some(n) = axum::body::HttpBody::size_hint(resp.body()).exact() {
            resp.headers_mut()
                .entry(header::CONTENT_LENGTH)
                .or_insert_with(|| HeaderValue::from(n));
        }
        self.app.metrics.http(
            "GET",
            route,
            resp.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        Some(resp)
    }

    fn secure(&self, headers: &mut HeaderMap) {
        for (name, value) in self.security.iter() {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
}
