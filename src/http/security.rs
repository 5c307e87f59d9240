//! Security headers on every answer: a Content-Security-Policy that allows only this origin's
//! own scripts (the pages' scripts are files under `/assets/`, never inline), `nosniff`, a
//! referrer policy, HSTS when the public URL is https; and on the console, no framing at all.
//!
//! The public pages may be framed (status widgets embed them); the console may not.

use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::App;
use crate::config::Config;

/// The policy for one part of the site. Styles may be inline (the layout's colours come from
/// config); scripts may not.
pub fn content_security_policy(config: &Config, console: bool) -> String {
    let mut img = String::from("'self' data:");
    if let Some(origin) = config
        .site
        .logo_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.origin().ascii_serialization())
    {
        img.push(' ');
        img.push_str(&origin);
    }
    let frame = if console {
        "; frame-ancestors 'none'"
    } else {
        ""
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src {img}; \
         connect-src 'self'; form-action 'self'; base-uri 'none'{frame}"
    )
}

/// The headers every answer carries (CSP, `nosniff`, referrer policy, HSTS under https).
pub fn headers(app: &App) -> Vec<(HeaderName, HeaderValue)> {
    let csp = HeaderValue::from_str(&content_security_policy(&app.config, false))
        .expect("the policy is ASCII");
    let mut all = vec![
        (header::CONTENT_SECURITY_POLICY, csp),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ),
    ];
    if app.config.site.public_url.scheme() == "https" {
        all.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    all
}

/// [`headers`] on every route (set only where a handler has not set its own).
pub fn everywhere(mut router: Router, app: &App) -> Router {
    for (name, value) in headers(app) {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
}

/// The console's routes: its own policy (no framing) and `X-Frame-Options` for old browsers.
pub fn console<S: Clone + Send + Sync + 'static>(router: Router<S>, config: &Config) -> Router<S> {
    let csp =
        HeaderValue::from_str(&content_security_policy(config, true)).expect("the policy is ASCII");
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

/// A link a remote service handed back (a post's URL) is shown only if it is http(s):
/// anything else (`javascript:`, `data:`) is dropped.
pub fn safe_link(url: Option<&str>) -> Option<String> {
    let u = url::Url::parse(url?.trim()).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_links_are_kept() {
        assert_eq!(
            safe_link(Some("https://mastodon.example/@acme/1")).as_deref(),
            Some("https://mastodon.example/@acme/1")
        );
        assert_eq!(safe_link(Some("javascript:alert(1)")), None);
        assert_eq!(safe_link(Some(" JavaScript:alert(1)")), None);
        assert_eq!(safe_link(Some("data:text/html,<script>")), None);
        assert_eq!(safe_link(Some("/relative")), None);
        assert_eq!(safe_link(None), None);
    }
}
