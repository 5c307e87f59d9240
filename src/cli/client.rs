//! The command-line client for incident scripts: `candor incident open|update|resolve|list|show`
//! and `candor maintenance schedule|update|extend|complete|cancel|list|show` talk to a running
//! server over HTTP. Every invocation sends one `Idempotency-Key`, kept
//! across its own retries, so a retried write never happens twice. Exit codes let scripts branch.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use rand::RngCore;
use serde_json::{json, Map, Value};

/// What a script can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// The request was refused as invalid (400, 413, 415, 422).
    Invalid = 3,
    /// No such incident (404).
    NotFound = 4,
    /// Someone else changed it first, or it is already resolved (409).
    Conflict = 5,
    /// The token is missing, wrong or revoked (401).
    Unauthorized = 6,
    /// The server failed or is unavailable (5xx), after retries.
    Server = 7,
    /// The server could not be reached, after retries.
    Unreachable = 8,
}

/// A failed call: the exit code and what to tell the user.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// One per invocation: the same for every retry of this invocation's write.
    idempotency_key: String,
}

enum Attempt {
    Retry(String),
    Final(Result<(u16, Value), Failure>),
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--url must start with http:// or https:// (got `{base}`)"
        );
        let mut key = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .user_agent(concat!("candor-cli/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base,
            token,
            idempotency_key: format!("cli-{}", hex::encode(key)),
        })
    }

    /// Sends a request, retrying connection failures, 429 and 5xx with backoff (the same
    /// idempotency key each time). Returns the status and JSON body of a 2xx answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), Failure> {
        let attempt = || async {
            match self.once(method.clone(), path, body.as_ref()).await {
                Attempt::Retry(why) => Err(why),
                Attempt::Final(r) => Ok(r),
            }
        };
        let policy = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(300))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(4)
            .with_jitter();
        let url = format!("{}{path}", self.base);
        match attempt.retry(policy).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(f)) => Err(Failure {
                exit: f.exit,
                message: format!("{method} {url}: {}", f.message),
            }),
            Err(why) => Err(Failure {
                exit: if why.starts_with("unreachable") {
                    Exit::Unreachable
                } else {
                    Exit::Server
                },
                message: format!("{method} {url}: {why} (gave up after 5 attempts)"),
            }),
        }
    }

    async fn once(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Attempt {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if method == reqwest::Method::POST || method == reqwest::Method::PATCH {
            req = req.header("Idempotency-Key", &self.idempotency_key);
        }
        let sent = body.map(|b| b.to_string().len());
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(unreachable(&e)),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Attempt::Final(Ok((status, value)));
        }
        let (exit, message) = failure(status, &value, sent, retry_after.as_deref());
        match exit {
            Exit::Server => Attempt::Retry(message),
            exit => Attempt::Final(Err(Failure { exit, message })),
        }
    }
}

/// Why the server could not be reached, in words (the URL is added by the caller).
fn unreachable(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "no answer within 30 s"
    } else if e.is_connect() {
        "cannot connect (is `candor serve` running there? --url or CANDOR_URL names the server)"
    } else {
        "the request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    if detail.is_empty() {
        format!("unreachable: {kind}")
    } else {
        format!("unreachable: {kind}: {detail}")
    }
}

/// The exit code and words for a non-2xx answer: the server's own message, and for a body too
/// large or too many requests, the limit met. [`Exit::Server`] means "retry".
fn failure(
    status: u16,
    value: &Value,
    sent: Option<usize>,
    retry_after: Option<&str>,
) -> (Exit, String) {
    let server = value["error"]["message"].as_str().map(str::to_string);
    let message = server.unwrap_or_else(|| format!("the server answered {status}"));
    match status {
        401 => (Exit::Unauthorized, message),
        404 => (Exit::NotFound, message),
        409 => (Exit::Conflict, message),
        413 => {
            let size = sent
                .map(|n| format!(" (this request's body: {n} bytes)"))
                .unwrap_or_default();
            (
                Exit::Invalid,
                format!("413 body too large: {message}{size}"),
            )
        }
        429 => {
            let wait = retry_after
                .map(|s| format!("; the server asks to wait {s} s (Retry-After)"))
                .unwrap_or_default();
            (
                Exit::Server,
                format!("429 too many requests: {message}{wait}"),
            )
        }
        500..=599 => (Exit::Server, format!("server error {status}: {message}")),
        _ => (Exit::Invalid, message),
    }
}

/// Builds the request body, leaving out what was not given.
pub fn body(fields: &[(&str, Option<Value>)]) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(m)
}

/// Parses `api=partial_outage` pairs.
pub fn components(pairs: &[String]) -> anyhow::Result<Option<Value>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut m = BTreeMap::new();
    for p in pairs {
        let (id, status) = p.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--component takes ID=STATUS, like api=partial_outage (got `{p}`)")
        })?;
        m.insert(id.trim().to_string(), json!(status.trim()));
    }
    Ok(Some(json!(m)))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// One incident in words.
pub fn describe(i: &Value) -> String {
    let mut out = format!(
        "#{} {} [{} impact, {}]\n",
        i["id"],
        s(&i["title"]),
        s(&i["impact"]),
        s(&i["status"])
    );
    if let Some(eta) = i["eta"].as_str() {
        out.push_str(&format!("  estimate: {eta}\n"));
    } else if i["resolved_at"].is_null() {
        out.push_str("  estimate: none yet\n");
    }
    if let Some(next) = i["next_update_at"].as_str() {
        out.push_str(&format!("  next update promised by: {next}\n"));
    }
    if let Some(r) = i["resolved_at"].as_str() {
        out.push_str(&format!("  resolved: {r}\n"));
    }
    out.push_str(&format!("  version: {}  {}\n", i["version"], s(&i["url"])));
    let revisions = i["eta_revisions"].as_array().filter(|r| !r.is_empty());
    if let Some(revisions) = revisions {
        out.push_str("  estimate history:\n");
        for r in revisions {
            let eta = |v: &Value| v.as_str().unwrap_or("none").to_string();
            let reason = r["reason"]
                .as_str()
                .map(|why| format!(": {why}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  - {} {} -> {} by {}{reason}\n",
                s(&r["created_at"]),
                eta(&r["old_eta"]),
                eta(&r["new_eta"]),
                s(&r["actor"]),
            ));
        }
    }
    if let Some(updates) = i["updates"].as_array() {
        for u in updates.iter().rev().take(5) {
            let states: Vec<String> = u["deliveries"]
                .as_array()
                .map(|ds| {
                    ds.iter()
                        .map(|d| format!("{}:{}", s(&d["channel"]), s(&d["state"])))
                        .collect()
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "  - {} {} ({}) {}\n",
                s(&u["created_at"]),
                s(&u["kind"]),
                states.join(" "),
                s(&u["message"]).lines().next().unwrap_or("")
            ));
        }
    }
    out
}

/// One maintenance window in words.
pub fn describe_window(w: &Value) -> String {
    let end = w["eta"]
        .as_str()
        .or(w["scheduled_until"].as_str())
        .unwrap_or("");
    let mut out = format!(
        "#{} {} [{}] {} to {}\n",
        w["id"],
        s(&w["title"]),
        s(&w["status"]),
        s(&w["scheduled_for"]),
        end
    );
    if let Some(c) = w["components"].as_array().filter(|c| !c.is_empty()) {
        let names: Vec<&str> = c.iter().map(|c| s(&c["id"])).collect();
        out.push_str(&format!("  components: {}\n", names.join(", ")));
    }
    out.push_str(&format!("  version: {}  {}\n", w["version"], s(&w["url"])));
    if let Some(updates) = w["updates"].as_array() {
        for u in updates.iter().rev().take(5) {
            out.push_str(&format!(
                "  - {} {} {}\n",
                s(&u["created_at"]),
                s(&u["kind"]),
                s(&u["message"]).lines().next().unwrap_or("")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_pairs() {
        assert_eq!(
            components(&[
                "api=partial_outage".into(),
                "web = degraded_performance".into()
            ])
            .unwrap(),
            Some(json!({ "api": "partial_outage", "web": "degraded_performance" }))
        );
        assert!(components(&["api".into()]).is_err());
        assert_eq!(components(&[]).unwrap(), None);
    }

    #[test]
    fn show_prints_the_estimate_history() {
        let text = describe(&json!({
            "id": 7, "title": "API errors", "impact": "major", "status": "identified",
            "eta": "2026-12-02T14:30:00Z", "version": 3, "url": "https://s.test/incidents/7",
            "eta_revisions": [
                { "created_at": "2026-12-02T12:00:00Z", "old_eta": null,
                  "new_eta": "2026-12-02T13:00:00Z", "actor": "token:deploy", "reason": null },
                { "created_at": "2026-12-02T12:40:00Z", "old_eta": "2026-12-02T13:00:00Z",
                  "new_eta": "2026-12-02T14:30:00Z", "actor": "operator:ops@acme.test",
                  "reason": "the rollback takes longer" }
            ],
            "updates": []
        }));
        assert!(text.contains("  estimate history:\n"), "{text}");
        assert!(
            text.contains(
                "  - 2026-12-02T12:00:00Z none -> 2026-12-02T13:00:00Z by token:deploy\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("2026-12-02T13:00:00Z -> 2026-12-02T14:30:00Z by operator:ops@acme.test: the rollback takes longer"),
            "{text}"
        );
    }

    #[test]
    fn refusals_name_the_limit_they_met() {
        let (exit, m) = failure(
            413,
            &json!({ "error": { "message": "the request body is larger than 65536 bytes" } }),
            Some(70000),
            None,
        );
        assert_eq!(exit, Exit::Invalid);
        assert!(m.contains("65536") && m.contains("70000 bytes"), "{m}");
        let (exit, m) = failure(429, &Value::Null, None, Some("30"));
        assert_eq!(exit, Exit::Server, "retried");
        assert!(m.contains("429") && m.contains("30 s"), "{m}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let e = client
            .once(reqwest::Method::GET, "/api/v1/incidents", None)
            .await;
        let Attempt::Retry(why) = e else {
            panic!("a refused connection is retried")
        };
        assert!(why.starts_with("unreachable: cannot connect"), "{why}");
    }

    #[test]
    fn bodies_leave_out_what_was_not_given() {
        assert_eq!(
            body(&[("message", Some(json!("x"))), ("eta_in", None)]),
            json!({ "message": "x" })
        );
    }
}
