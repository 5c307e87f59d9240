//! The OpenAPI document: valid OpenAPI 3.1, complete (every route is in it and every operation
//! in it is routed), and true (real answers match the schemas it gives).

use serde_json::{json, Value};

use crate::helpers::*;

async fn document(t: &TestApp) -> Value {
    let r = t
        .http
        .get(t.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Checks `instance` against the document's schema `name`, listing every mismatch.
fn assert_matches(doc: &Value, name: &str, instance: &Value) {
    let mut root = doc.clone();
    root["$ref"] = json!(format!("#/components/schemas/{name}"));
    let validator = jsonschema::draft202012::new(&root).expect("the schemas compile");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the answer does not match {name}:\n{}\n{instance:#}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let t = spawn_app().await;
    let doc = document(&t).await;
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..4]), Some("3.1."));
    let meta: Value =
        serde_json::from_str(include_str!("../fixtures/openapi-3.1-schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&meta).expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not valid OpenAPI 3.1:\n{}",
        errors.join("\n")
    );

    // Operation ids are unique (code generators name functions after them).
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| {
            op["operationId"]
                .as_str()
                .expect("every operation has an id")
        })
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "duplicate operationId");

    // An operation declares each (name, location) parameter once (OpenAPI requires it;
    // openapi-spec-validator refused nine operations that listed `id` twice), and a path's `id`
    // is an integer, as ids are.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut seen = std::collections::BTreeSet::new();
            for p in &params {
                let key = (
                    p["name"].as_str().unwrap().to_string(),
                    p["in"].as_str().unwrap().to_string(),
                );
                assert!(
                    seen.insert(key.clone()),
                    "{method} {path} declares {key:?} twice"
                );
                if key == ("id".to_string(), "path".to_string()) {
                    assert_eq!(p["schema"]["type"], "integer", "{method} {path}: {p}");
                }
            }
            if path.contains("{id}") {
                assert!(
                    seen.contains(&("id".to_string(), "path".to_string())),
                    "{method} {path} declares no id"
                );
            }
        }
    }
    t.finish().await;
}

/// Every operation the document lists answers on the server (never the router's own 404 for
/// an unknown path, nor 405), and the writes the server has are all in the document.
#[tokio::test]
async fn every_operation_in_the_document_is_served() {
    let t = spawn_app().await;
    let doc = document(&t).await;
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/incidents/{id}/updates",
        "/api/v1/incidents/{id}/resolve",
        "/api/v1/components",
        "/api/v1/estimates",
        "/api/v1/subscribers",
        "/api/v1/subscribers/counts",
        "/api/v1/subscribers/{id}",
        "/api/v1/subscribers/{id}/confirmation",
        "/api/v1/deliveries/{id}/reach",
        "/api/v1/integrations/alertmanager",
        "/api/v1/maintenances",
        "/api/v1/maintenances/{id}",
        "/api/v1/maintenances/{id}/extend",
        "/api/v1/maintenances/{id}/complete",
        "/api/v1/maintenances/{id}/cancel",
        "/api/v1/maintenances/{id}/incident",
        "/api/v1/openapi.json",
        "/api/v1/docs",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not documented");
    }
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "987654");
            let req = t
                .http
                .request(method.to_uppercase().parse().unwrap(), t.url(&concrete))
                .bearer_auth(&t.token);
            let req = if method == "post" {
                req.json(&json!({}))
            } else {
                req
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path}: {body}");
            assert!(
                !body.contains("nothing at"),
                "{method} {path} is documented but not routed: {body}"
            );
        }
    }
    t.finish().await;
}

#[tokio::test]
async fn answers_match_the_schemas_the_document_gives() {
    let t = spawn_app().await;
    let doc = document(&t).await;
    let created = t
        .declare(json!({
            "title": "Checkout errors",
            "impact": "major",
            "message": "Some payments fail; we are on it.",
            "components": { "api": "partial_outage" },
            "eta_in": "45m",
        }))
        .await;
    assert_matches(&doc, "IncidentDetail", &created);
    let id = created["id"].as_i64().unwrap();
    t.dispatch_all().await;
    assert_matches(&doc, "IncidentDetail", &t.incident(id).await);

    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "Found it.", "status": "identified", "eta_in": "1h", "eta_reason": "a bigger fix" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_matches(&doc, "IncidentDetail", &r.json().await.unwrap());

    let list: Value = t
        .get("/api/v1/incidents?state=all")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1);
    assert_matches(&doc, "IncidentList", &list);

    let components: Value = t.get("/api/v1/components").await.json().await.unwrap();
    assert_matches(&doc, "ComponentList", &components);

    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Fixed." }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let resolved: Value = r.json().await.unwrap();
    assert_matches(&doc, "IncidentDetail", &resolved);

    let r = t
        .post(
            "/api/v1/maintenances",
            &json!({ "title": "Database upgrade", "starts_at": "2026-11-24T02:00:00Z",
                     "duration": "2h", "components": ["api"] }),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_matches(&doc, "MaintenanceDetail", &r.json().await.unwrap());
    let windows: Value = t.get("/api/v1/maintenances").await.json().await.unwrap();
    assert_eq!(windows["maintenances"].as_array().unwrap().len(), 1);
    assert_matches(&doc, "MaintenanceList", &windows);

    // Errors have the documented shape too.
    let r = t.post("/api/v1/incidents", &json!({ "title": 5 })).await;
    assert_eq!(r.status(), 422);
    assert_matches(&doc, "ErrorBody", &r.json().await.unwrap());
    t.dispatch_all().await;
    t.finish().await;
}

#[tokio::test]
async fn the_api_reference_page_lists_every_operation() {
    let t = spawn_app().await;
    let doc = document(&t).await;
    let r = t.http.get(t.url("/api/v1/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap().replace("&#x2f;", "/");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let heading = format!("{} {}", method.to_uppercase(), path);
            assert!(page.contains(&heading), "the page lacks {heading}");
        }
    }
    assert!(page.contains("eta_reason"), "body fields are described");
    assert!(page.contains("Idempotency-Key"));
    t.finish().await;
}
