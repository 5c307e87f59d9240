//! The v1 API reference page (`/api/docs`), rendered from the OpenAPI document with
//! `templates/api/docs.html`.

use serde_json::{json, Value};

use crate::config::Config;
use crate::render::views::site_view;
use crate::render::{RenderError, Renderer};

/// A JSON Schema as a short phrase for people: `string (date-time) or null`, `array of Delivery`.
fn schema_phrase(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            return alts
                .iter()
                .map(schema_phrase)
                .collect::<Vec<_>>()
                .join(" or ");
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        return all
            .iter()
            .map(schema_phrase)
            .collect::<Vec<_>>()
            .join(" and ");
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect();
        return format!("one of: {}", names.join(", "));
    }
    let types: Vec<String> = match s.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    let mut parts = Vec::new();
    for t in types {
        parts.push(match t.as_str() {
            "array" => format!(
                "array of {}",
                s.get("items")
                    .map(schema_phrase)
                    .unwrap_or_else(|| "anything".into())
            ),
            "object" => match s.get("additionalProperties") {
                Some(v) if v.is_object() => format!("map of names to {}", schema_phrase(v)),
                _ => "object".into(),
            },
            other => match s.get("format").and_then(Value::as_str) {
                Some(f) => format!("{other} ({f})"),
                None => other.to_string(),
            },
        });
    }
    if parts.is_empty() {
        "anything".into()
    } else {
        parts.join(" or ")
    }
}

/// An object schema's fields as table rows (following `allOf` into the schemas it names).
fn schema_rows(s: &Value, schemas: &Value) -> Vec<Value> {
    let mut rows = Vec::new();
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for part in all {
            let resolved = match part.get("$ref").and_then(Value::as_str) {
                Some(r) => schemas
                    .get(r.rsplit('/').next().unwrap_or(r))
                    .cloned()
                    .unwrap_or(Value::Null),
                None => part.clone(),
            };
            rows.extend(schema_rows(&resolved, schemas));
        }
    }
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (name, p) in props {
            rows.push(json!({
                "name": name,
                "type": schema_phrase(p),
                "required": required.contains(&name.as_str()),
                "description": p.get("description").and_then(Value::as_str).unwrap_or(""),
                "default": p.get("default"),
            }));
        }
    }
    rows
}

/// The v1 API reference page, from the OpenAPI document.
pub fn api_docs_page(
    config: &Config,
    renderer: &Renderer,
    doc: &Value,
) -> Result<String, RenderError> {
    let schemas = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or(Value::Null);
    let first_line = |op: &Value, key: &str| -> String {
        op.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut tags: Vec<Value> = doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| json!({ "name": t["name"], "description": t["description"], "operations": [] }))
                .collect()
        })
        .unwrap_or_default();
    let paths = doc.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            let params: Vec<Value> = op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    json!({
                        "name": p["name"],
                        "in": p["in"],
                        "required": p.get("required").and_then(Value::as_bool).unwrap_or(false),
                        "type": p.get("schema").map(schema_phrase).unwrap_or_default(),
                        "description": p.get("description").and_then(Value::as_str).unwrap_or(""),
                    })
                })
                .collect();
            let body = op
                .pointer("/requestBody/content/application~1json/schema")
                .map(|s| {
                    let resolved = match s.get("$ref").and_then(Value::as_str) {
                        Some(r) => schemas
                            .get(r.rsplit('/').next().unwrap_or(r))
                            .cloned()
                            .unwrap_or(Value::Null),
                        None => s.clone(),
                    };
                    json!({
                        "type": schema_phrase(s),
                        "description": resolved.get("description"),
                        "rows": schema_rows(&resolved, &schemas),
                    })
                });
            let responses: Vec<Value> = op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(status, r)| {
                    let content = r.get("content").and_then(Value::as_object);
                    let (media, schema) = content
                        .and_then(|c| c.iter().next())
                        .map(|(m, c)| (m.clone(), c.get("schema").map(schema_phrase)))
                        .unwrap_or_default();
                    json!({
                        "status": status,
                        "description": r.get("description").and_then(Value::as_str).unwrap_or(""),
                        "media": media,
                        "schema": schema,
                    })
                })
                .collect();
            let tag = op
                .pointer("/tags/0")
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string();
            let entry = json!({
                "id": format!("{}-{}", method, path.trim_matches('/').replace(['/', '{', '}'], "-")),
                "method": method.to_uppercase(),
                "path": path,
                "summary": first_line(op, "summary"),
                "description": first_line(op, "description"),
                "auth": op.get("security").is_some(),
                "params": params,
                "body": body,
                "responses": responses,
            });
            match tags.iter_mut().find(|t| t["name"] == tag.as_str()) {
                Some(t) => t["operations"].as_array_mut().expect("array").push(entry),
                None => tags.push(json!({ "name": tag, "description": "", "operations": [entry] })),
            }
        }
    }
    let schema_list: Vec<Value> = schemas
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, s)| {
            json!({
                "name": name,
                "description": s.get("description").and_then(Value::as_str).unwrap_or(""),
                "type": schema_phrase(s),
                "rows": schema_rows(s, &schemas),
            })
        })
        .collect();
    renderer.render_page(
        "api/docs.html",
        json!({
            "site": site_view(config),
            "info": doc.get("info"),
            "version": doc.get("openapi"),
            "tags": tags,
            "schemas": schema_list,
        }),
    )
}
