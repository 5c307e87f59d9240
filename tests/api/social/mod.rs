//! The social and chat channels against local stand-ins (wiremock) for Mastodon, Bluesky, X,
//! Slack, Discord and a Standard Webhooks receiver: each checks the method, path, headers,
//! signature and body the platform documents, for a first post, a threaded reply, a 429, a
//! permanent refusal and a retry after an attempt whose answer was lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use candor::channels::fit::Counter;
use candor::store::deliveries::{self, Delivery};
use candor::{Clock, SystemClock};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

// The imports above serve the network files too: each starts with `use super::*`.
use crate::helpers::*;

mod bluesky;
mod corrections;
mod discord;
mod mastodon;
mod shared;
mod slack;
mod webhook;
mod x;

// ---------------------------------------------------------------------------------------------
// Plumbing shared by the channels' tests.

async fn app(channels_yaml: String) -> TestApp {
    spawn_app_with(Options {
        extra_channels: Some(channels_yaml),
        ..Default::default()
    })
    .await
}

fn incident(body: &str) -> Value {
    json!({ "title": "Login failures", "impact": "major", "message": body,
            "components": { "web": "partial_outage" }, "eta_in": "1h" })
}

async fn declare(t: &TestApp, body: &str) -> i64 {
    t.declare(incident(body)).await["id"].as_i64().unwrap()
}

async fn update(t: &TestApp, id: i64, message: &str) {
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": message }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Every delivery of `channel`, oldest first.
async fn deliveries_of(t: &TestApp, channel: &str) -> Vec<Delivery> {
    let list: Value = t
        .get("/api/v1/incidents?state=all")
        .await
        .json()
        .await
        .unwrap();
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let mut all = Vec::new();
    for i in list["incidents"].as_array().unwrap() {
        all.extend(
            deliveries::for_incident(&mut conn, i["id"].as_i64().unwrap())
                .await
                .unwrap()
                .into_iter()
                .filter(|d| d.channel == channel),
        );
    }
    all.sort_by_key(|d| d.id);
    all
}

async fn requests_to(server: &MockServer, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .collect()
}

fn json_of(r: &Request) -> Value {
    serde_json::from_slice(&r.body).expect("JSON body")
}

fn form_of(r: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

fn incident_url(id: i64) -> String {
    format!("https://status.acme.test/incidents/{id}")
}

fn at(t: &TestApp, secs: i64) -> DateTime<Utc> {
    t.clock_now() + chrono::Duration::seconds(secs)
}

const LONG: &str = "Some customers cannot sign in because the session store is refusing \
    connections after a failover; we are moving traffic to the standby region, draining the \
    old primary and warming caches so that sign-ins recover without forcing anyone to log in \
    again, and we will keep this page updated as each step completes and the error rate falls \
    back to its usual level across every region we serve.";

// ---------------------------------------------------------------------------------------------
// A worker killed mid-send: the remote has the post, the worker never heard back, its lease
// runs out and the delivery is taken over.

/// Runs one outbox pass in a task, waits until `arrived` says the remote has the request, then
/// kills the task (as a SIGKILL would the worker) and lets the lease run out.
async fn kill_mid_send(t: &TestApp, channel: &str, arrived: Arc<tokio::sync::Notify>) {
    let outbox = t.app.outbox();
    let worker = tokio::spawn(async move { outbox.drain().await });
    arrived.notified().await;
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    let d = &deliveries_of(t, channel).await[0];
    assert_eq!(
        (d.state.as_str(), d.attempts),
        ("in_flight", 1),
        "owner gone"
    );
    t.advance(std::time::Duration::from_secs(61)); // past the 60 s lease
}
