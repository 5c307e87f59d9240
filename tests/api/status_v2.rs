//! The Statuspage v2 JSON: the same paths, objects, field names and value sets as Atlassian
//! Statuspage's public API, so widgets and scripts written for it work unchanged, plus Candor's
//! estimate and next-update promise as extra fields.
//!
//! The field lists below are Statuspage's, from its public API documentation (the `/api` page
//! every hosted page serves, e.g. https://www.githubstatus.com/api, and vendors' copies of it
//! such as https://www.mongodb.com/docs/api/doc/cloud-status/operation/operation-getstatussummary),
//! checked against real responses (Discord's, Huobi's) that list `group`, `components`,
//! `affected_components` and the newest-first order of `incident_updates`.

use std::collections::{BTreeMap, BTreeSet};

use candor::status_page::v2;
use serde_json::{json, Value};

use crate::helpers::*;

const PATHS: &[&str] = &[
    "/api/v2/summary.json",
    "/api/v2/status.json",
    "/api/v2/components.json",
    "/api/v2/incidents.json",
    "/api/v2/incidents/unresolved.json",
    "/api/v2/scheduled-maintenances.json",
    "/api/v2/scheduled-maintenances/upcoming.json",
    "/api/v2/scheduled-maintenances/active.json",
];
const PAGE_FIELDS: &[&str] = &["id", "name", "url", "time_zone", "updated_at"];
const STATUS_FIELDS: &[&str] = &["indicator", "description"];
const COMPONENT_FIELDS: &[&str] = &[
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
];
/// A group component has one more: its members' ids.
const GROUP_EXTRA_FIELDS: &[&str] = &["components"];
const INCIDENT_FIELDS: &[&str] = &[
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "impact",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
];
/// Candor's additions to each incident; nothing else is added anywhere.
const INCIDENT_EXTRA_FIELDS: &[&str] = &["eta", "next_update_at", "eta_history"];
const UPDATE_FIELDS: &[&str] = &[
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "custom_tweet",
    "tweet_id",
];
const AFFECTED_FIELDS: &[&str] = &["code", "name", "old_status", "new_status"];
const ETA_HISTORY_FIELDS: &[&str] = &["old", "new", "reason", "at"];

const INDICATORS: &[&str] = &["none", "minor", "major", "critical", "maintenance"];
const COMPONENT_STATUSES: &[&str] = &[
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];
const INCIDENT_STATUSES: &[&str] = &[
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "postmortem",
];
const IMPACTS: &[&str] = &["none", "minor", "major", "critical"];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(lists: &[&[&str]]) -> BTreeSet<String> {
    lists
        .iter()
        .flat_map(|l| l.iter())
        .map(|s| s.to_string())
        .collect()
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn one_of(v: &Value, allowed: &[&str]) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert!(allowed.contains(&s), "`{s}` is not one of {allowed:?}");
}

/// A timestamp as Statuspage writes it: RFC 3339 with milliseconds (here the page is in UTC).
fn timestamp(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("`{s}`: {e}"));
    assert!(
        s.len() == "2026-11-23T12:00:00.000Z".len() && s.ends_with('Z') && s.contains('.'),
        "`{s}` is not written like 2026-11-23T12:00:00.000Z"
    );
}

fn opt_timestamp(v: &Value) {
    if !v.is_null() {
        timestamp(v);
    }
}

fn by_path(docs: Vec<(&'static str, Value)>) -> BTreeMap<&'static str, Value> {
    let n = docs.len();
    let map: BTreeMap<_, _> = docs.into_iter().collect();
    assert_eq!(map.len(), n, "a path is listed twice");
    map
}

/// Checks every component object (groups included) and returns them by id.
fn check_components(list: &Value, page_id: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for c in arr(list) {
        let is_group = c["group"] == true;
        let expected = if is_group {
            set(&[COMPONENT_FIELDS, GROUP_EXTRA_FIELDS])
        } else {
            set(&[COMPONENT_FIELDS])
        };
        assert_eq!(keys(c), expected, "component fields: {c}");
        one_of(&c["status"], COMPONENT_STATUSES);
        assert!(c["id"].is_string() && c["name"].is_string());
        assert!(c["position"].as_u64().is_some_and(|p| p >= 1));
        assert!(c["showcase"].is_boolean() && c["only_show_if_degraded"].is_boolean());
        assert_eq!(&c["page_id"], page_id);
        timestamp(&c["created_at"]);
        timestamp(&c["updated_at"]);
        assert!(c["created_at"].as_str() <= c["updated_at"].as_str());
        assert!(out
            .insert(c["id"].as_str().unwrap().to_string(), c.clone())
            .is_none());
    }
    out
}

/// Checks an incident object against Statuspage's shape and Candor's extras.
fn check_incident(i: &Value, page_id: &Value) {
    assert_eq!(
        keys(i),
        set(&[INCIDENT_FIELDS, INCIDENT_EXTRA_FIELDS]),
        "incident fields: {i}"
    );
    assert!(i["id"].is_string(), "ids are strings: {}", i["id"]);
    one_of(&i["status"], INCIDENT_STATUSES);
    one_of(&i["impact"], IMPACTS);
    assert_eq!(&i["page_id"], page_id);
    for f in ["created_at", "updated_at", "started_at"] {
        timestamp(&i[f]);
    }
    for f in ["monitoring_at", "resolved_at", "eta", "next_update_at"] {
        opt_timestamp(&i[f]);
    }
    assert_eq!(
        i["shortlink"],
        format!(
            "https://status.acme.test/incidents/{}",
            i["id"].as_str().unwrap()
        )
    );
    check_components(&i["components"], page_id);
    for h in arr(&i["eta_history"]) {
        assert_eq!(keys(h), set(&[ETA_HISTORY_FIELDS]));
        opt_timestamp(&h["old"]);
        opt_timestamp(&h["new"]);
        timestamp(&h["at"]);
    }
    let updates = arr(&i["incident_updates"]);
    assert!(!updates.is_empty());
    for u in updates {
        assert_eq!(keys(u), set(&[UPDATE_FIELDS]), "update fields: {u}");
        assert!(u["id"].is_string());
        assert_eq!(u["incident_id"], i["id"]);
        one_of(&u["status"], INCIDENT_STATUSES);
        assert!(u["body"].is_string());
        assert_eq!(u["deliver_notifications"], true);
        for f in ["created_at", "updated_at", "display_at"] {
            timestamp(&u[f]);
        }
        if !u["affected_components"].is_null() {
            for a in arr(&u["affected_components"]) {
                assert_eq!(keys(a), set(&[AFFECTED_FIELDS]));
                one_of(&a["old_status"], COMPONENT_STATUSES);
                one_of(&a["new_status"], COMPONENT_STATUSES);
            }
        }
    }
    // Newest first, as Statuspage lists them.
    let times: Vec<&str> = updates
        .iter()
        .map(|u| u["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] > w[1]),
        "updates are not newest first: {times:?}"
    );
    // The incident's status is its newest update's.
    assert_eq!(updates[0]["status"], i["status"]);
}

#[tokio::test]
async fn v2_json_has_statuspages_shape_with_the_estimate_added() {
    let t = spawn_app().await;

    // A: declared with an estimate, revised, monitored, resolved.
    let a = t
        .declare(json!({
            "title": "Elevated API error rates", "impact": "major", "status": "investigating",
            "message": "About 20% of API requests fail with 502.",
            "components": { "api": "partial_outage" }, "eta_in": "45m"
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    t.advance_to(10);
    let r = t
        .post(
            &format!("/api/v1/incidents/{a}/updates"),
            &json!({ "message": "A bad deploy; rolling back.", "status": "identified",
                     "eta_in": "30m", "eta_reason": "rollback takes longer than a restart",
                     "components": { "api": "degraded_performance", "web": "degraded_performance" } }),
        )
        .await;
    assert_eq!(r.status(), 200);
    t.advance_to(20);
    let r = t
        .post(
            &format!("/api/v1/incidents/{a}/updates"),
            &json!({ "message": "Rolled back; watching error rates.", "status": "monitoring" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    t.advance_to(35);
    let r = t
        .post(
            &format!("/api/v1/incidents/{a}/resolve"),
            &json!({ "message": "Error rates are back to normal." }),
        )
        .await;
    assert_eq!(r.status(), 200);

    // B: open, no estimate.
    t.advance_to(40);
    let b = t
        .declare(json!({
            "title": "Slow email delivery", "impact": "minor", "status": "investigating",
            "message": "Some emails arrive late.",
            "components": { "email": "degraded_performance" }
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    let (a_id, b_id) = (a.to_string(), b.to_string());

    let snap = t.snapshot().await;
    let docs = by_path(v2::documents(&snap, &t.app.config));
    let paths: BTreeSet<&str> = docs.keys().copied().collect();
    assert_eq!(paths, PATHS.iter().copied().collect());

    // Every document: the page, then its own keys.
    let page = docs["/api/v2/status.json"]["page"].clone();
    assert_eq!(keys(&page), set(&[PAGE_FIELDS]));
    assert_eq!(page["id"], "acme-cloud");
    assert_eq!(page["name"], "Acme Cloud");
    assert_eq!(page["url"], "https://status.acme.test");
    assert_eq!(page["time_zone"], "UTC");
    // The page changed last when B was declared.
    assert_eq!(page["updated_at"], "2026-11-23T12:40:00.000Z");
    let envelopes: &[(&str, &[&str])] = &[
        (
            "/api/v2/summary.json",
            &[
                "page",
                "status",
                "components",
                "incidents",
                "scheduled_maintenances",
                // Candor's own: the promise record.
                "record",
            ],
        ),
        ("/api/v2/status.json", &["page", "status"]),
        ("/api/v2/components.json", &["page", "components"]),
        ("/api/v2/incidents.json", &["page", "incidents"]),
        ("/api/v2/incidents/unresolved.json", &["page", "incidents"]),
        (
            "/api/v2/scheduled-maintenances.json",
            &["page", "scheduled_maintenances"],
        ),
        (
            "/api/v2/scheduled-maintenances/upcoming.json",
            &["page", "scheduled_maintenances"],
        ),
        (
            "/api/v2/scheduled-maintenances/active.json",
            &["page", "scheduled_maintenances"],
        ),
    ];
    for (path, fields) in envelopes {
        let doc = &docs[path];
        assert_eq!(keys(doc), set(&[fields]), "{path}");
        assert_eq!(doc["page"], page, "{path}");
        if doc.get("scheduled_maintenances").is_some() {
            assert_eq!(doc["scheduled_maintenances"], json!([]), "{path}");
        }
    }

    // Status: B is a minor incident on email.
    let status = &docs["/api/v2/status.json"]["status"];
    assert_eq!(keys(status), set(&[STATUS_FIELDS]));
    one_of(&status["indicator"], INDICATORS);
    assert_eq!(status["indicator"], "minor");
    assert!(status["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(docs["/api/v2/summary.json"]["status"], *status);

    // Components: the `core` group first, listed as a component with its members' ids, the
    // members right after it with `group_id`, then `email`. Positions count within a level.
    let list = &docs["/api/v2/components.json"]["components"];
    assert_eq!(docs["/api/v2/summary.json"]["components"], *list);
    let comps = check_components(list, &page["id"]);
    let order: Vec<&str> = arr(list)
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["core", "api", "web", "email"]);
    let core = &comps["core"];
    assert_eq!(core["group"], true);
    assert_eq!(core["name"], "Core");
    assert_eq!(core["group_id"], Value::Null);
    assert_eq!(core["components"], json!(["api", "web"]));
    for member in arr(&core["components"]) {
        let m = &comps[member.as_str().unwrap()];
        assert_eq!(m["group"], false);
        assert_eq!(m["group_id"], "core");
    }
    // Every group_id names a listed group component, which lists the member back.
    for c in comps.values() {
        if let Some(g) = c["group_id"].as_str() {
            assert_eq!(comps[g]["group"], true);
            assert!(arr(&comps[g]["components"]).contains(&c["id"]));
        }
    }
    assert_eq!(comps["email"]["group_id"], Value::Null);
    let positions: Vec<u64> = ["core", "email", "api", "web"]
        .iter()
        .map(|id| comps[*id]["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 1, 2]);
    assert_eq!(comps["api"]["name"], "Public API");
    assert_eq!(comps["api"]["status"], "operational");
    assert_eq!(comps["email"]["status"], "degraded_performance");
    assert_eq!(comps["core"]["status"], "operational");
    assert_eq!(comps["email"]["updated_at"], "2026-11-23T12:40:00.000Z");
    assert_eq!(comps["api"]["updated_at"], "2026-11-23T12:35:00.000Z");

    // incidents.json: both, newest first.
    let incidents = arr(&docs["/api/v2/incidents.json"]["incidents"]);
    let ids: Vec<&str> = incidents
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b_id.as_str(), a_id.as_str()]);
    for i in incidents {
        check_incident(i, &page["id"]);
    }

    // A, resolved.
    let ia = &incidents[1];
    assert_eq!(ia["name"], "Elevated API error rates");
    assert_eq!(ia["status"], "resolved");
    assert_eq!(ia["impact"], "major");
    assert_eq!(ia["created_at"], "2026-11-23T12:00:00.000Z");
    assert_eq!(ia["started_at"], "2026-11-23T12:00:00.000Z");
    assert_eq!(ia["monitoring_at"], "2026-11-23T12:20:00.000Z");
    assert_eq!(ia["resolved_at"], "2026-11-23T12:35:00.000Z");
    assert_eq!(ia["updated_at"], "2026-11-23T12:35:00.000Z");
    assert_eq!(
        ia["shortlink"],
        format!("https://status.acme.test/incidents/{a}")
    );
    let statuses: Vec<&str> = arr(&ia["incident_updates"])
        .iter()
        .map(|u| u["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["resolved", "monitoring", "identified", "investigating"]
    );
    let ups = arr(&ia["incident_updates"]);
    assert_eq!(ups[3]["body"], "About 20% of API requests fail with 502.");
    assert_eq!(ups[3]["created_at"], "2026-11-23T12:00:00.000Z");
    // What each update changed, "Group - Component" as Statuspage names grouped ones.
    assert_eq!(
        ups[3]["affected_components"],
        json!([{ "code": "api", "name": "Core - Public API",
                 "old_status": "operational", "new_status": "partial_outage" }])
    );
    assert_eq!(
        ups[2]["affected_components"],
        json!([
            { "code": "api", "name": "Core - Public API",
              "old_status": "partial_outage", "new_status": "degraded_performance" },
            { "code": "web", "name": "Core - Website",
              "old_status": "operational", "new_status": "degraded_performance" }
        ])
    );
    assert_eq!(ups[1]["affected_components"], Value::Null);
    assert_eq!(
        ups[0]["affected_components"],
        json!([
            { "code": "api", "name": "Core - Public API",
              "old_status": "degraded_performance", "new_status": "operational" },
            { "code": "web", "name": "Core - Website",
              "old_status": "degraded_performance", "new_status": "operational" }
        ])
    );
    // A resolved incident still lists what it affected.
    let affected: Vec<&str> = arr(&ia["components"])
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(affected, ["api", "web"]);
    assert_eq!(ia["components"][0], comps["api"]);
    // Candor's extras: the estimate and its history.
    assert_eq!(ia["eta"], "2026-11-23T12:40:00.000Z");
    assert_eq!(ia["next_update_at"], Value::Null);
    assert_eq!(
        ia["eta_history"],
        json!([
            { "old": null, "new": "2026-11-23T12:45:00.000Z", "reason": "first estimate",
              "at": "2026-11-23T12:00:00.000Z" },
            { "old": "2026-11-23T12:45:00.000Z", "new": "2026-11-23T12:40:00.000Z",
              "reason": "rollback takes longer than a restart", "at": "2026-11-23T12:10:00.000Z" }
        ])
    );

    // B, open, without an estimate: `eta` is there and null; the next update is promised.
    let ib = &incidents[0];
    assert_eq!(ib["status"], "investigating");
    assert_eq!(ib["impact"], "minor");
    assert!(ib.as_object().unwrap().contains_key("eta"));
    assert_eq!(ib["eta"], Value::Null);
    assert_eq!(ib["eta_history"], json!([]));
    timestamp(&ib["next_update_at"]);
    assert!(ib["next_update_at"].as_str() > Some("2026-11-23T12:40:00.000Z"));
    assert_eq!(ib["monitoring_at"], Value::Null);
    assert_eq!(ib["resolved_at"], Value::Null);
    assert_eq!(ib["components"][0]["id"], "email");
    assert_eq!(ib["components"][0]["status"], "degraded_performance");

    // unresolved.json and summary.json: only B, the same object as in incidents.json.
    let unresolved = arr(&docs["/api/v2/incidents/unresolved.json"]["incidents"]);
    assert_eq!(unresolved.len(), 1);
    assert_eq!(unresolved[0], *ib);
    for i in unresolved {
        one_of(&i["status"], &["investigating", "identified", "monitoring"]);
        assert_eq!(i["resolved_at"], Value::Null);
    }
    assert_eq!(
        docs["/api/v2/summary.json"]["incidents"],
        docs["/api/v2/incidents/unresolved.json"]["incidents"]
    );

    // In another time zone, times carry the page's offset, as Statuspage writes them.
    let mut berlin = (*t.app.config).clone();
    berlin.site.time_zone = chrono_tz::Europe::Berlin;
    let docs = by_path(v2::documents(&snap, &berlin));
    let page = &docs["/api/v2/incidents.json"]["page"];
    assert_eq!(page["time_zone"], "Europe/Berlin");
    assert_eq!(page["updated_at"], "2026-11-23T13:40:00.000+01:00");
    let ia = &docs["/api/v2/incidents.json"]["incidents"][1];
    assert_eq!(ia["created_at"], "2026-11-23T13:00:00.000+01:00");
    assert_eq!(ia["eta"], "2026-11-23T13:40:00.000+01:00");

    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn a_quiet_page_says_all_systems_operational_with_empty_lists() {
    let t = spawn_app().await;
    let snap = t.snapshot().await;
    let docs = by_path(v2::documents(&snap, &t.app.config));
    let status = &docs["/api/v2/summary.json"]["status"];
    assert_eq!(status["indicator"], "none");
    assert_eq!(status["description"], "All Systems Operational");
    assert_eq!(docs["/api/v2/incidents.json"]["incidents"], json!([]));
    assert_eq!(
        docs["/api/v2/incidents/unresolved.json"]["incidents"],
        json!([])
    );
    assert_eq!(docs["/api/v2/summary.json"]["incidents"], json!([]));
    let page = &docs["/api/v2/summary.json"]["page"];
    assert_eq!(keys(page), set(&[PAGE_FIELDS]));
    timestamp(&page["updated_at"]);
    let comps = check_components(&docs["/api/v2/components.json"]["components"], &page["id"]);
    assert_eq!(comps.len(), 4);
    assert!(comps.values().all(|c| c["status"] == "operational"));
    t.finish().await;
}

/// Widgets on customers' own sites read this JSON with `fetch()`. A request that is not
/// "simple" (one with an `If-None-Match` or another header of its own) is preceded by an
/// `OPTIONS` preflight (the Fetch standard's CORS protocol), which used to get 405, so the
/// browser never sent the request. Preflights are answered for reading only: GET and HEAD,
/// from any origin, without credentials.
#[tokio::test]
async fn v2_json_answers_cors_preflights_for_reading_only() {
    let t = spawn_app().await;
    for path in ["/api/v2/summary.json", "/api/v2/incidents/unresolved.json"] {
        let r = t
            .http
            .request(reqwest::Method::OPTIONS, t.url(path))
            .header("Origin", "https://shop.example")
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "if-none-match")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        let mut methods: Vec<&str> = methods.split(',').map(str::trim).collect();
        methods.sort_unstable();
        assert_eq!(methods, ["GET", "HEAD"], "{path}: reading only");
        assert_eq!(h["access-control-allow-headers"], "*", "{path}");
        assert!(
            !h.contains_key("access-control-allow-credentials"),
            "{path}: no credentials"
        );
        assert!(h.contains_key("access-control-max-age"), "{path}");
    }
    // The request the preflight was for gets the same answer as before.
    let r = t
        .http
        .get(t.url("/api/v2/status.json"))
        .header("Origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers()
            .get_all("access-control-allow-origin")
            .iter()
            .count(),
        1
    );
    // Writing is not offered, and the console is not opened to other origins.
    let r = t
        .http
        .request(reqwest::Method::OPTIONS, t.url("/api/v1/incidents"))
        .header("Origin", "https://shop.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    t.finish().await;
}
