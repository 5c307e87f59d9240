//! What every HTTP channel shares: the client, reading a remote's wait hints (`Retry-After`,
//! rate-limit resets), its error words, and classifying a failed answer as retryable or
//! permanent.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{truncate, SendError};

/// The HTTP client every remote channel uses: its own timeout, Candor's user agent.
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("candor/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// How a platform writes when its rate limit resets.
#[derive(Debug, Clone, Copy)]
pub enum Reset {
    /// Unix seconds (X's `x-rate-limit-reset`, Bluesky's `ratelimit-reset`).
    EpochSeconds,
    /// An ISO 8601 time (Mastodon's `X-RateLimit-Reset`).
    Iso8601,
    /// Seconds from now, possibly fractional (Discord's `X-RateLimit-Reset-After`).
    SecondsFromNow,
}

/// How long to wait before trying again after a failure: the remote's `Retry-After` if it gave
/// one, else, for a `429`, when its rate-limit window `header` resets. (Platforms send the reset
/// header on every answer; on a `5xx` it says nothing about when the server recovers.)
pub fn wait_hint(
    resp: &reqwest::Response,
    header: &str,
    format: Reset,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let headers = resp.headers();
    if let Some(d) = retry_after(headers, now) {
        return Some(d);
    }
    if resp.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let v = headers.get(header)?.to_str().ok()?.trim();
    let at = match format {
        Reset::EpochSeconds => DateTime::from_timestamp(v.parse().ok()?, 0)?,
        Reset::Iso8601 => DateTime::parse_from_rfc3339(v).ok()?.with_timezone(&Utc),
        Reset::SecondsFromNow => {
            let secs: f64 = v.parse().ok()?;
            return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
        }
    };
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The platform's own words from a JSON error body: the first of `keys` that holds a string
/// (with `error` and `message` both given, "error: message"), else the body as it came.
pub fn error_text(body: &str, keys: &[&str]) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.trim().to_string();
    };
    let words: Vec<&str> = keys.iter().filter_map(|k| v[*k].as_str()).collect();
    if words.is_empty() {
        body.trim().to_string()
    } else {
        words.join(": ")
    }
}

/// Reads `Retry-After` (seconds, or an HTTP date relative to `now`).
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Classifies an HTTP status the way most APIs mean it.
pub fn classify_status(
    status: reqwest::StatusCode,
    detail: &str,
    retry_after: Option<Duration>,
) -> SendError {
    let reason = format!("HTTP {}: {}", status.as_u16(), truncate(detail, 300));
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status.as_u16() == 425
    {
        SendError::Retryable {
            reason,
            retry_after,
        }
    } else {
        SendError::Permanent { reason }
    }
}

/// Describes a transport error without leaking URLs' credentials or query strings.
pub fn describe_reqwest_error(e: reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "broken response"
    } else {
        "request failed"
    };
    SendError::retryable(format!("{what}: {}", e.without_url()))
}
