//! Alertmanager's webhook: a firing group opens one incident however often and from however
//! many replicas it is sent; resolved resolves it or asks the team, as configured.

use serde_json::{json, Value};

use crate::helpers::*;

const MAPPING: &str = "alertmanager: { components: { payments-gw: api } }\n";

fn firing() -> Value {
    serde_json::from_str(include_str!("../fixtures/alertmanager-firing.json")).unwrap()
}

fn resolved() -> Value {
    let mut v = firing();
    v["status"] = json!("resolved");
    v["alerts"][0]["status"] = json!("resolved");
    v["alerts"][0]["endsAt"] = json!("2026-11-23T12:40:00Z");
    v
}

async fn notify(t: &TestApp, body: &Value) -> Value {
    let r = t.post("/api/v1/integrations/alertmanager", body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

async fn incidents(t: &TestApp, state: &str) -> Vec<Value> {
    let v: Value = t
        .get(&format!("/api/v1/incidents?state={state}"))
        .await
        .json()
        .await
        .unwrap();
    v["incidents"].as_array().unwrap().clone()
}

async fn app_with(extra: &str) -> TestApp {
    spawn_app_with(Options {
        extra: Some(extra.to_string()),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_firing_group_opens_one_incident_with_mapped_facts_and_a_promise() {
    let t = app_with(MAPPING).await;
    let out = notify(&t, &firing()).await;
    assert_eq!(out["action"], "opened");
    let id = out["incident_id"].as_i64().unwrap();

    let i = t.incident(id).await;
    assert_eq!(i["title"], "Payments are failing at checkout");
    assert_eq!(i["impact"], "major", "severity=critical maps to major");
    assert_eq!(i["components"][0]["id"], "api");
    assert_eq!(i["components"][0]["status"], "partial_outage");
    assert_eq!(
        i["eta"],
        Value::Null,
        "Alertmanager does not know when it will be fixed"
    );
    assert_eq!(
        i["next_update_at"], "2026-11-23T12:30:00Z",
        "so the next update is promised instead (major: every 30m)"
    );
    assert_eq!(i["alert_groups"][0]["opened"], true);
    assert_eq!(i["alert_groups"][0]["alerts"], 1);
    let words = i["updates"][0]["message"].as_str().unwrap();
    assert!(words.contains("Public API"), "{words}");
    assert!(
        !words.contains("payments-gw-7"),
        "internal details from annotations are not published by default: {words}"
    );

    t.dispatch_all().await;
    assert_eq!(t.public_log().len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn repeats_and_a_second_replica_do_not_open_another_incident() {
    let t = app_with(MAPPING).await;
    assert_eq!(notify(&t, &firing()).await["action"], "opened");
    // Alertmanager re-sends the group every repeat_interval.
    t.advance(std::time::Duration::from_secs(4 * 3600));
    assert_eq!(notify(&t, &firing()).await["action"], "unchanged");
    assert_eq!(incidents(&t, "all").await.len(), 1);

    // Two replicas of an HA pair, each notifying a different Candor instance, at once.
    let mut fresh = firing();
    fresh["groupKey"] = json!("{}/{}:{alertname=\"WebDown\"}");
    fresh["commonLabels"]["component"] = json!("web");
    fresh["groupLabels"]["component"] = json!("web");
    fresh["alerts"][0]["labels"]["component"] = json!("web");
    let second = t.another_instance(vec![]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = second.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let send = |url: String| {
        let http = t.http.clone();
        let body = fresh.clone();
        let token = t.token.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let (a, b) = tokio::join!(
        send(t.url("/api/v1/integrations/alertmanager")),
        send(format!("http://{addr}/api/v1/integrations/alertmanager"))
    );
    let mut actions = [a["action"].clone(), b["action"].clone()];
    actions.sort_by_key(|v| v.to_string());
    assert_eq!(actions, [json!("opened"), json!("unchanged")], "{a} {b}");
    assert_eq!(a["incident_id"], b["incident_id"]);
    assert_eq!(incidents(&t, "all").await.len(), 2);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn resolved_asks_the_team_to_confirm_by_default_and_the_incident_stays_open() {
    let t = app_with(MAPPING).await;
    let id = notify(&t, &firing()).await["incident_id"].as_i64().unwrap();
    t.advance_to(40);
    let out = notify(&t, &resolved()).await;
    assert_eq!(out["action"], "awaiting_confirmation");
    // Alertmanager repeats resolved notifications: the team is asked once.
    assert_eq!(
        notify(&t, &resolved()).await["action"],
        "awaiting_confirmation"
    );

    let i = t.incident(id).await;
    assert_eq!(
        i["status"], "investigating",
        "still open until a person decides"
    );
    assert_eq!(i["alert_groups"][0]["resolved_at"], "2026-11-23T12:40:00Z");
    t.dispatch_all().await;
    let asks: Vec<Value> = t
        .ops_log()
        .into_iter()
        .filter(|l| l["kind"] == "ops_alert_resolved")
        .collect();
    assert_eq!(asks.len(), 1, "{asks:?}");
    assert!(asks[0]["text"]
        .as_str()
        .unwrap()
        .contains("resolve the incident"));

    // The person resolves it; the next firing of the same group is a new incident.
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Confirmed fixed." }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let again = notify(&t, &firing()).await;
    assert_eq!(again["action"], "opened");
    assert_ne!(again["incident_id"].as_i64().unwrap(), id);
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn resolved_resolves_the_incident_when_configured() {
    let t = app_with("alertmanager: { on_resolved: resolve, components: { payments-gw: api } }\n")
        .await;
    let id = notify(&t, &firing()).await["incident_id"].as_i64().unwrap();
    t.advance_to(40);
    let out = notify(&t, &resolved()).await;
    assert_eq!(out["action"], "resolved");
    let i = t.incident(id).await;
    assert_eq!(i["status"], "resolved");
    assert!(
        i["components"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "operational"),
        "{}",
        i["components"]
    );
    let last = i["updates"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "resolution");
    assert!(last["message"]
        .as_str()
        .unwrap()
        .contains("Public API working"));
    // A late repeat of the resolved notification changes nothing.
    assert_eq!(notify(&t, &resolved()).await["action"], "ignored");
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn a_group_for_a_component_already_in_an_incident_joins_it() {
    let t = app_with("alertmanager: { on_resolved: resolve, components: { payments-gw: api } }\n")
        .await;
    let declared = t
        .declare(json!({
            "title": "Payments slow", "message": "We are looking into slow payments.",
            "components": { "api": "degraded_performance" }, "eta_in": "1h",
        }))
        .await;
    let out = notify(&t, &firing()).await;
    assert_eq!(out["action"], "joined");
    assert_eq!(out["incident_id"], declared["id"]);
    assert_eq!(incidents(&t, "all").await.len(), 1);
    let i = t.incident(declared["id"].as_i64().unwrap()).await;
    assert_eq!(i["alert_groups"][0]["opened"], false);
    assert_eq!(
        i["updates"].as_array().unwrap().len(),
        1,
        "joining posts nothing publicly"
    );

    // Even with on_resolved: resolve, a group that only joined never resolves a person's
    // incident by itself: the team is asked instead.
    assert_eq!(
        notify(&t, &resolved()).await["action"],
        "awaiting_confirmation"
    );
    let i = t.incident(declared["id"].as_i64().unwrap()).await;
    assert_eq!(i["status"], "investigating");
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn bad_notifications_are_refused_clearly() {
    let t = app_with(MAPPING).await;
    let mut v3 = firing();
    v3["version"] = json!("3");
    let r = t.post("/api/v1/integrations/alertmanager", &v3).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("version"));

    let mut no_key = firing();
    no_key.as_object_mut().unwrap().remove("groupKey");
    let r = t.post("/api/v1/integrations/alertmanager", &no_key).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("groupKey"));

    let r = t
        .http
        .post(t.url("/api/v1/integrations/alertmanager"))
        .json(&firing())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(incidents(&t, "all").await.is_empty());
    t.finish().await;
}

#[tokio::test]
async fn a_mapping_to_an_unknown_component_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&dir, "sqlite::memory:", None, None)
        + "alertmanager: { components: { payments-gw: billing } }\n";
    let err = candor::config::Config::from_yaml_with_env(
        &yaml,
        &candor::config::Overrides::default(),
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("alertmanager.components.payments-gw"), "{err}");
    let yaml =
        config_yaml(&dir, "sqlite::memory:", None, None) + "alertmanager: { title: \"{{ oops\" }\n";
    let err = candor::config::Config::from_yaml_with_env(
        &yaml,
        &candor::config::Overrides::default(),
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("alertmanager.title"), "{err}");
}

/// A second group about the same component (another alert name): it joins the first's incident.
fn second_firing() -> Value {
    let mut v = firing();
    v["groupKey"] = json!(
        "{}/{severity=\"critical\"}:{alertname=\"CheckoutLatency\", component=\"payments-gw\"}"
    );
    v["groupLabels"]["alertname"] = json!("CheckoutLatency");
    v["commonLabels"]["alertname"] = json!("CheckoutLatency");
    v["alerts"][0]["labels"]["alertname"] = json!("CheckoutLatency");
    v["alerts"][0]["fingerprint"] = json!("0a1b2c3d4e5f6071");
    v
}

fn second_resolved() -> Value {
    let mut v = second_firing();
    v["status"] = json!("resolved");
    v["alerts"][0]["status"] = json!("resolved");
    v["alerts"][0]["endsAt"] = json!("2026-11-23T12:45:00Z");
    v
}

fn asks(t: &TestApp) -> Vec<Value> {
    t.ops_log()
        .into_iter()
        .filter(|l| l["kind"] == "ops_alert_resolved")
        .filter(|l| l["text"].as_str().unwrap_or("").contains("have resolved"))
        .collect()
}

/// Reviewers' finding with the real Alertmanager: in `resolve` mode the incident stayed open
/// forever when the group that opened it resolved before a group that joined it. Both orders.
#[tokio::test]
async fn resolve_mode_resolves_once_no_attached_group_fires_whichever_resolves_first() {
    for opener_first in [true, false] {
        let t =
            app_with("alertmanager: { on_resolved: resolve, components: { payments-gw: api } }\n")
                .await;
        let id = notify(&t, &firing()).await["incident_id"].as_i64().unwrap();
        let joined = notify(&t, &second_firing()).await;
        assert_eq!(joined["action"], "joined");
        assert_eq!(joined["incident_id"], id);
        t.advance_to(40);
        let (first, last) = if opener_first {
            (resolved(), second_resolved())
        } else {
            (second_resolved(), resolved())
        };
        let out = notify(&t, &first).await;
        assert_eq!(
            out["action"], "still_firing",
            "opener first: {opener_first}"
        );
        // Alertmanager repeats it: still nothing.
        assert_eq!(notify(&t, &first).await["action"], "still_firing");
        assert_eq!(t.incident(id).await["status"], "investigating");

        t.advance_to(45);
        let out = notify(&t, &last).await;
        assert_eq!(out["action"], "resolved", "opener first: {opener_first}");
        assert_eq!(out["incident_id"], id);
        let i = t.incident(id).await;
        assert_eq!(i["status"], "resolved", "opener first: {opener_first}");
        assert_eq!(i["resolved_at"], "2026-11-23T12:45:00Z");
        t.dispatch_all().await;
        assert!(
            asks(&t).is_empty(),
            "resolve mode asks nobody to confirm: {:?}",
            t.ops_log()
        );
        t.finish().await;
    }
}

/// Reviewers' finding: in `confirm` mode the team was told "its alerts have resolved" while
/// another group of the incident was still firing. They are told once, when the last resolves.
#[tokio::test]
async fn confirm_mode_asks_the_team_only_once_every_attached_group_has_resolved() {
    let t = app_with(MAPPING).await;
    let id = notify(&t, &firing()).await["incident_id"].as_i64().unwrap();
    assert_eq!(notify(&t, &second_firing()).await["action"], "joined");
    t.advance_to(40);
    assert_eq!(notify(&t, &resolved()).await["action"], "still_firing");
    t.dispatch_all().await;
    assert!(
        asks(&t).is_empty(),
        "the second group still fires: {:?}",
        t.ops_log()
    );

    // The first group fires again, and resolves again, while the second still fires.
    assert_eq!(notify(&t, &firing()).await["action"], "unchanged");
    assert_eq!(notify(&t, &resolved()).await["action"], "still_firing");

    t.advance_to(45);
    let out = notify(&t, &second_resolved()).await;
    assert_eq!(out["action"], "awaiting_confirmation");
    assert_eq!(
        notify(&t, &second_resolved()).await["action"],
        "awaiting_confirmation"
    );
    assert_eq!(
        notify(&t, &resolved()).await["action"],
        "awaiting_confirmation"
    );
    t.dispatch_all().await;
    assert_eq!(asks(&t).len(), 1, "{:?}", t.ops_log());
    assert_eq!(t.incident(id).await["status"], "investigating");
    t.finish().await;
}

/// Reviewers' finding: a label value naming no component opened a public incident with no
/// components, said only in the response body (which Alertmanager discards). The incident still
/// opens (something customers feel is broken), and the team is told which label matched
/// nothing, once per group; the log warns at every notification.
#[tokio::test]
async fn a_label_naming_no_component_is_logged_and_told_to_the_team() {
    let logs = capture_logs();
    let t = app_with(MAPPING).await;
    let mut body = firing();
    body["commonLabels"]["component"] = json!("mainframe");
    body["groupLabels"]["component"] = json!("mainframe");
    body["alerts"][0]["labels"]["component"] = json!("mainframe");
    let out = notify(&t, &body).await;
    assert_eq!(out["action"], "opened");
    assert_eq!(out["unknown_components"], json!(["mainframe"]));
    let id = out["incident_id"].as_i64().unwrap();
    let i = t.incident(id).await;
    assert_eq!(i["status"], "investigating", "the incident still opens");
    assert_eq!(i["components"], json!([]));

    let text = logs.text();
    let warn = text
        .lines()
        .find(|l| l.contains("WARN") && l.contains("mainframe"))
        .unwrap_or_else(|| panic!("no warning naming the value: {text}"));
    assert!(warn.contains("component"), "{warn}");
    assert!(!warn.contains(&t.token), "{warn}");

    // A repeat warns again in the log but does not tell the team twice.
    assert_eq!(notify(&t, &body).await["action"], "unchanged");
    t.dispatch_all().await;
    let notices: Vec<Value> = t
        .ops_log()
        .into_iter()
        .filter(|l| l["text"].as_str().unwrap_or("").contains("mainframe"))
        .collect();
    assert_eq!(notices.len(), 1, "{:?}", t.ops_log());
    assert_eq!(
        notices[0]["kind"], "ops_alert_unmapped",
        "a kind of its own"
    );
    let words = notices[0]["text"].as_str().unwrap();
    assert!(words.contains("`component`"), "{words}");
    assert!(words.contains(&format!("#{id}")), "{words}");
    assert!(words.contains("alertmanager.components"), "{words}");
    assert_eq!(t.public_log().len(), 1, "the public post went out as usual");
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let audited: Vec<_> = candor::store::audit::recent(&mut conn, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "alertmanager.unmapped_components")
        .collect();
    drop(conn);
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].incident_id, Some(id));
    assert_eq!(audited[0].detail["label"], "component");
    assert_eq!(audited[0].detail["values"], json!(["mainframe"]));

    // A group with one known and one unknown value: the known component is affected, the
    // team hears about the other.
    let mut mixed = second_firing();
    mixed["groupKey"] = json!("{}:{alertname=\"Mixed\"}");
    mixed["commonLabels"]
        .as_object_mut()
        .unwrap()
        .remove("component");
    mixed["groupLabels"]
        .as_object_mut()
        .unwrap()
        .remove("component");
    mixed["alerts"][0]["labels"]["component"] = json!("web");
    let mut other = mixed["alerts"][0].clone();
    other["labels"]["component"] = json!("db-cluster-3");
    mixed["alerts"].as_array_mut().unwrap().push(other);
    let out = notify(&t, &mixed).await;
    assert_eq!(out["action"], "opened");
    assert_eq!(out["unknown_components"], json!(["db-cluster-3"]));
    let i = t.incident(out["incident_id"].as_i64().unwrap()).await;
    assert_eq!(i["components"][0]["id"], "web");
    assert_eq!(i["components"].as_array().unwrap().len(), 1);
    t.dispatch_all().await;
    assert!(t
        .ops_log()
        .iter()
        .any(|l| l["text"].as_str().unwrap_or("").contains("db-cluster-3")));
    t.finish().await;
}

/// The last two groups of an incident resolving at the same moment, each at another instance:
/// the incident's row is locked before its groups are read, so the second sees the first's
/// word and the team is asked exactly once (without the lock, on PostgreSQL, each saw the other
/// still firing and nobody was asked).
#[tokio::test]
async fn two_groups_resolving_at_once_on_two_instances_ask_the_team_once() {
    let t = app_with(MAPPING).await;
    let id = notify(&t, &firing()).await["incident_id"].as_i64().unwrap();
    assert_eq!(notify(&t, &second_firing()).await["action"], "joined");
    t.advance_to(40);
    let second = t.another_instance(vec![]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = second.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let send = |url: String, body: Value| {
        let http = t.http.clone();
        let token = t.token.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let (a, b) = tokio::join!(
        send(t.url("/api/v1/integrations/alertmanager"), resolved()),
        send(
            format!("http://{addr}/api/v1/integrations/alertmanager"),
            second_resolved()
        )
    );
    let mut actions = [a["action"].clone(), b["action"].clone()];
    actions.sort_by_key(|v| v.to_string());
    assert_eq!(
        actions,
        [json!("awaiting_confirmation"), json!("still_firing")],
        "{a} {b}"
    );
    t.dispatch_all().await;
    assert_eq!(asks(&t).len(), 1, "{:?}", t.ops_log());
    assert_eq!(t.incident(id).await["status"], "investigating");
    t.finish().await;
}
