//! Every API operation refuses a token without the scope its OpenAPI `security` requirement
//! names (403), and lets a token with only that scope through. The walk reads the operations
//! from the served document, so a new route is covered without touching this test.

use candor::store::tokens::{self, Scope};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_operation_needs_exactly_the_scope_it_documents() {
    let t = spawn_app().await;
    let doc: Value = t.get("/api/v1/openapi.json").await.json().await.unwrap();
    let mut one_scope = Vec::new();
    for s in Scope::ALL {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        let name = format!("only-{}", s.as_str());
        let token = tokens::create(&mut conn, &name, &[s], "test", t.clock_now())
            .await
            .unwrap();
        one_scope.push((s, token));
    }
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let id = op["operationId"].as_str().unwrap_or(path);
            let Some(security) = op.get("security") else {
                continue; // public: the status documents, subscribing, the API's own docs
            };
            let needs: Vec<&str> = security[0]["bearer"]
                .as_array()
                .unwrap_or_else(|| panic!("{id}: security without `bearer`"))
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(
                needs.len(),
                1,
                "{id} should name exactly one scope: {needs:?}"
            );
            let needed: Scope = needs[0].parse().unwrap();
            let url = t.url(&path.replace("{id}", "1"));
            for (scope, token) in &one_scope {
                let r = t
                    .http
                    .request(method.clone(), &url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                if *scope == needed {
                    assert!(
                        status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                        "{id} refused a token with its own scope `{}`: {status}",
                        scope.as_str()
                    );
                } else {
                    let body: Value = r.json().await.unwrap();
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{id} (needs `{}`) with only `{}`: {body}",
                        needed.as_str(),
                        scope.as_str()
                    );
                    assert_eq!(body["error"]["code"], "forbidden");
                    let message = body["error"]["message"].as_str().unwrap();
                    assert!(message.contains(needed.as_str()), "{message}");
                }
            }
            walked += 1;
        }
    }
    assert!(walked >= 18, "walked only {walked} operations");
    t.finish().await;
}

#[tokio::test]
async fn an_alertmanager_token_cannot_read_subscribers() {
    let t = spawn_app().await;
    let token = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        tokens::create(
            &mut conn,
            "alertmanager",
            &[Scope::AlertsWrite],
            "test",
            t.clock_now(),
        )
        .await
        .unwrap()
    };
    for path in ["/api/v1/subscribers", "/api/v1/incidents"] {
        let r = t
            .http
            .get(t.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    t.finish().await;
}
