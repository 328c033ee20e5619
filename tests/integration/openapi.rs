//! The OpenAPI document (`src/http/openapi.json`, served at `GET /openapi.json`) against
//! the route table and the running server, without Python (CI also runs schemathesis
//! against it: `packaging/schemathesis.sh`):
//!
//! - it is OpenAPI 3.1 and every `$ref` resolves;
//! - it has exactly the routes of the route table (path and method), named and tagged alike;
//! - every operation lists what the layers in front of the handlers can answer: `401`
//!   (with `WWW-Authenticate`), `403` and `429` (with `Retry-After`) wherever a token is
//!   needed and none of them where none is; `408` and `413` (or the dialect's own answer)
//!   wherever a body is read and nowhere else; `500` everywhere;
//! - the server's answers — without a token, with the wrong kind of token, and to each
//!   operation's own example request — are statuses the operation documents, with the
//!   documented headers, content type and body schema.

use crate::support::{Reply, TestServer};
use http::Method;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeSet;
use upkeep::http::auth::Need;
use upkeep::http::route::{BodyPolicy, Row as RouteSpec, example_path};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(server: &TestServer) -> Value {
    server
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .expect(200)
}

/// The operation documenting `spec`'s path and method.
#[track_caller]
fn operation<'a>(doc: &'a Value, spec: &RouteSpec) -> &'a Value {
    let op = &doc["paths"][spec.path][spec.method.as_str().to_ascii_lowercase()];
    assert!(
        op.is_object(),
        "{} {} is not in the document",
        spec.method,
        spec.path
    );
    op
}

/// The value a local `$ref` (`#/components/…`) names.
#[track_caller]
fn target<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("non-local $ref {reference}"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("$ref {reference} does not resolve"))
}

/// Follows `$ref`s until a value that is not one.
#[track_caller]
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
        value = target(doc, reference);
    }
    value
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

fn statuses(doc: &Value, op: &Value) -> BTreeSet<String> {
    resolve(doc, &op["responses"])
        .as_object()
        .map(|responses| responses.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let server = TestServer::start().await;
    let reply = server.request(Method::GET, "/openapi.json").send().await;
    let doc = reply.expect(200);
    assert_eq!(
        reply.body.as_ref(),
        upkeep::api::openapi::document().as_ref(),
        "served as built from the rows"
    );
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut references = Vec::new();
    refs(&doc, &mut references);
    assert!(references.len() > 100, "the document uses components");
    for reference in references {
        target(&doc, reference);
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["ApiKeyAuth"]["type"], "apiKey");
    assert_eq!(schemes["ApiKeyAuth"]["in"], "header");
    assert_eq!(schemes["ApiKeyAuth"]["name"], "x-api-key");
    assert_eq!(schemes["BearerAuth"]["type"], "http");
    assert_eq!(schemes["BearerAuth"]["scheme"], "bearer");
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(
        error["required"],
        serde_json::json!(["status", "error", "message"])
    );
    assert_eq!(error["additionalProperties"], false);
}

/// Whether `schema` (its `$ref`s followed) admits JSON `null` anywhere: a `null` type, or
/// `null` among an `enum`'s or a `const`'s values.
fn admits_null(doc: &Value, schema: &Value, seen: &mut BTreeSet<String>) -> Option<String> {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                if !seen.insert(reference.clone()) {
                    return None;
                }
                return admits_null(doc, target(doc, reference), seen)
                    .map(|at| format!("{reference} {at}"));
            }
            let nullable = match map.get("type") {
                Some(Value::String(t)) => t == "null",
                Some(Value::Array(types)) => types.iter().any(|t| t == "null"),
                _ => false,
            } || map.get("const").is_some_and(Value::is_null)
                || map
                    .get("enum")
                    .and_then(Value::as_array)
                    .is_some_and(|values| values.iter().any(Value::is_null));
            if nullable {
                return Some(schema.to_string());
            }
            // Every keyword that holds schemas; a `properties` map's keys are field names
            // (a field may be called `description`), each of its values a schema.
            // (`not`, `description`, `example` and the like hold no schema of a value.)
            map.iter()
                .filter(|(key, _)| {
                    matches!(
                        key.as_str(),
                        "properties"
                            | "items"
                            | "anyOf"
                            | "oneOf"
                            | "allOf"
                            | "additionalProperties"
                    )
                })
                .find_map(|(key, item)| {
                    let found = match (key.as_str(), item) {
                        ("properties", Value::Object(fields)) => {
                            fields.iter().find_map(|(name, field)| {
                                admits_null(doc, field, seen).map(|at| format!("{name}: {at}"))
                            })
                        }
                        _ => admits_null(doc, item, seen),
                    };
                    found.map(|at| format!("{key}: {at}"))
                })
        }
        Value::Array(items) => items.iter().find_map(|item| admits_null(doc, item, seen)),
        _ => None,
    }
}

/// A form field is text: a form body cannot send `null`, so no schema of a form body may
/// admit one (an empty field is how a form clears a value, and each such field says so).
#[tokio::test]
async fn no_form_body_schema_admits_null() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    let mut forms = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let form = &item[method]["requestBody"]["content"]["application/x-www-form-urlencoded"];
            if form.is_null() {
                continue;
            }
            forms += 1;
            let found = admits_null(&doc, &form["schema"], &mut BTreeSet::new());
            assert!(
                found.is_none(),
                "{method} {path}: the form body's schema admits null at {}",
                found.unwrap_or_default()
            );
        }
    }
    assert!(forms >= 15, "only {forms} form bodies documented");
}

#[tokio::test]
async fn the_document_has_every_route_and_no_other() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    let routed: BTreeSet<(String, String)> = upkeep::api::rows()
        .iter()
        .map(|spec| {
            (
                spec.path.to_owned(),
                spec.method.as_str().to_ascii_lowercase(),
            )
        })
        .collect();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (key, _) in item.as_object().expect("path item") {
            if METHODS.contains(&key.as_str()) {
                documented.insert((path.clone(), key.clone()));
            }
        }
    }
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");

    for spec in upkeep::api::rows() {
        let op = operation(&doc, spec);
        assert_eq!(
            op["operationId"], spec.name,
            "{} {}",
            spec.method, spec.path
        );
        assert_eq!(
            op["tags"],
            serde_json::json!([format!("{:?}", spec.family)]),
            "{}",
            spec.name
        );
        // Every `{param}` of the path is a required path parameter, and nothing else is.
        let wanted: BTreeSet<&str> = spec
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parameter| resolve(&doc, parameter))
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| {
                assert_eq!(parameter["required"], true, "{}", spec.name);
                parameter["name"].as_str().expect("parameter name")
            })
            .collect();
        assert_eq!(declared, wanted, "path parameters of {}", spec.name);
    }
}

#[tokio::test]
async fn every_operation_lists_what_authorization_and_limits_can_answer() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    for spec in upkeep::api::rows() {
        let op = operation(&doc, spec);
        let listed = statuses(&doc, op);
        let has = |status: &str| listed.contains(status);
        let schemes: BTreeSet<String> = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no security", spec.name))
            .iter()
            .flat_map(|requirement| requirement.as_object().into_iter().flatten())
            .map(|(name, _)| name.clone())
            .collect();
        match spec.need {
            Need::Public => {
                assert!(schemes.is_empty(), "{} is public: {schemes:?}", spec.name);
                // A signed download (and the legacy one at `/`) is 403 when its key was
                // disabled since (SPEC §8.1 item 3): not an authorization answer.
                let refusals: &[&str] = if matches!(spec.name, "download" | "landing") {
                    &["401", "429"]
                } else {
                    &["401", "403", "429"]
                };
                for status in refusals.iter().copied() {
                    // SPEC §9.2: Lemon Squeezy's own `429 "Too many requests."` (its
                    // answer to `rate_limited`) is the one dialect status that is a 429.
                    if status == "429" && spec.name.starts_with("ls_") {
                        continue;
                    }
                    assert!(!has(status), "{} is public but lists {status}", spec.name);
                }
            }
            Need::Scope(_) | Need::Account | Need::Operator { .. } => {
                let both: BTreeSet<String> = ["ApiKeyAuth", "BearerAuth"].map(str::to_owned).into();
                assert_eq!(schemes, both, "{} takes either header", spec.name);
                for status in ["401", "403", "429"] {
                    assert!(
                        has(status),
                        "{} needs a token but lacks {status}",
                        spec.name
                    );
                }
                let header = |status: &str, name: &str| {
                    let response = resolve(&doc, &op["responses"][status]);
                    let header = resolve(&doc, &response["headers"][name]);
                    assert_eq!(header["required"], true, "{} {status} {name}", spec.name);
                };
                header("401", "WWW-Authenticate");
                header("429", "Retry-After");
            }
        }
        // A route that reads a body reads it under a size and time limit. The public
        // dialects answer a request they cannot take in their own shapes (SPEC §3): each
        // public row that reads a body has its dialect's answer (but `batch_check`, ours,
        // whose own shape is the common one), documented under its status with a schema
        // its body fits — by a branch that names its fields, not a catch-all object.
        let reads_body = spec.body != BodyPolicy::None;
        assert_eq!(
            op["requestBody"].is_object(),
            reads_body,
            "{}: a request body is documented exactly where the route reads one",
            spec.name
        );
        // A route that never reads a body cannot find one too large or too slow.
        if !reads_body {
            for status in ["408", "413"] {
                assert!(
                    !has(status),
                    "{} reads no body but lists {status}",
                    spec.name
                );
            }
        }
        if spec.need == Need::Public && reads_body && spec.name != "batch_check" {
            assert!(
                spec.refusal.is_some(),
                "{} has no dialect refusal",
                spec.name
            );
        }
        let mut dialect_statuses = BTreeSet::new();
        for (refused, status) in [
            (
                upkeep::error::Error::PayloadTooLarge { limit: 65_536 },
                "413",
            ),
            (upkeep::error::Error::RequestTimeout, "408"),
            (upkeep::error::Error::invalid("field", "why"), "400"),
        ] {
            // (A row that reads no body refuses only what its query or path holds.)
            if !reads_body && status != "400" {
                continue;
            }
            let Some(dialect) = spec.refusal else {
                if reads_body && status != "400" {
                    assert!(has(status), "{} lacks {status}", spec.name);
                }
                continue;
            };
            let answer = dialect(&refused);
            let status = answer.status().as_str().to_owned();
            assert!(has(&status), "{} lacks its dialect's {status}", spec.name);
            let body = answer.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&body).unwrap();
            let response = resolve(&doc, &op["responses"][status.as_str()]);
            let schema = resolve(&doc, &response["content"]["application/json"]["schema"]);
            let branches: Vec<&Value> = match schema["anyOf"].as_array() {
                Some(branches) => branches.iter().map(|b| resolve(&doc, b)).collect(),
                None => vec![schema],
            };
            let fits = branches.iter().any(|branch| {
                if !branch["properties"].is_object() {
                    return false;
                }
                let mut errors = Vec::new();
                validate(&doc, branch, &body, spec.name, &mut errors);
                errors.is_empty()
            });
            assert!(fits, "{} {status}: {body} fits no named schema", spec.name);
            dialect_statuses.insert(status);
        }
        assert!(has("500"), "{} lacks 500", spec.name);
        for status in &listed {
            let response = resolve(&doc, &op["responses"][status]);
            assert!(
                response["headers"]["X-Request-Id"].is_object(),
                "{} {status}: X-Request-Id",
                spec.name
            );
            // 416 carries no body (RFC 9110 §15.5.17: `Content-Range` says it all); a
            // download's refusals are one line of text, which WordPress shows.
            let plain = spec.name == "download" && ["403", "404", "410"].contains(&status.as_str());
            // The public licensing dialects answer their refusals in their own shapes
            // (SPEC §3, §9.2): UpdaterCloud's key answer, Lemon Squeezy's license answer.
            let own_shape = (spec.name.starts_with("uc_key_") || spec.name.starts_with("ls_"))
                && ["400", "404", "422", "429"].contains(&status.as_str())
                || dialect_statuses.contains(status);
            if own_shape {
                continue;
            }
            if status.starts_with(['4', '5']) && status != "416" && !plain {
                let schema = &response["content"]["application/json"]["schema"];
                let mut targets = Vec::new();
                refs(schema, &mut targets);
                assert!(
                    targets.contains(&"#/components/schemas/Error"),
                    "{} {status} is not the error envelope",
                    spec.name
                );
                assert_eq!(
                    resolve(&doc, &schema["allOf"][1]["properties"]["status"])["const"]
                        .as_u64()
                        .map(|code| code.to_string())
                        .as_deref(),
                    Some(status.as_str()),
                    "{} {status}",
                    spec.name
                );
            }
        }
    }
}

/// Checks `value` against the subset of JSON Schema the document uses (`format` is not
/// checked: schemathesis does that). Pushes one line per violation.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        validate(doc, target(doc, reference), value, at, errors);
        return validate_rest(doc, schema, value, at, errors);
    }
    let mut fail = |what: String| errors.push(format!("{at}: {what} (got {value})"));
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let matches = |kind: &str| match kind {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.iter().any(|kind| matches(kind)) {
            fail(format!("not of type {types:?}"));
            return;
        }
    }
    if let Some(expected) = schema.get("const") {
        if expected != value {
            fail(format!("not {expected}"));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(value) {
            fail(format!("not one of {options:?}"));
        }
    }
    if let Some(n) = value.as_f64() {
        let below = |bound: &Value| match (value.as_u64(), bound.as_u64()) {
            (Some(v), Some(b)) => v < b,
            _ => bound.as_f64().is_some_and(|b| n < b),
        };
        let above = |bound: &Value| match (value.as_u64(), bound.as_u64()) {
            (Some(v), Some(b)) => v > b,
            _ => bound.as_f64().is_some_and(|b| n > b),
        };
        if schema.get("minimum").is_some_and(below) {
            fail(format!("below {}", schema["minimum"]));
        }
        if schema.get("maximum").is_some_and(above) {
            fail(format!("above {}", schema["maximum"]));
        }
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            fail("too short".to_owned());
        }
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            fail("too long".to_owned());
        }
        // JSON Schema patterns are ECMA 262; the `regex` crate reads the document's the
        // same way but for look-arounds, which it cannot read (those go unchecked here).
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && let Ok(compiled) = regex::Regex::new(pattern)
            && !compiled.is_match(text)
        {
            fail(format!("does not match {pattern}"));
        }
    }
    validate_rest(doc, schema, value, at, errors);
}

fn validate_rest(
    doc: &Value,
    schema: &serde_json::Map<String, Value>,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    if let Some(items) = value.as_array() {
        let count = items.len() as u64;
        if schema
            .get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| count < m)
        {
            errors.push(format!("{at}: fewer than {} items", schema["minItems"]));
        }
        if schema
            .get("maxItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| count > m)
        {
            errors.push(format!("{at}: more than {} items", schema["maxItems"]));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(doc, item_schema, item, &format!("{at}[{i}]"), errors);
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                errors.push(format!("{at}: missing `{name}`"));
            }
        }
        for (name, item) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => validate(doc, property, item, &format!("{at}.{name}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{at}: unexpected `{name}`"));
                }
                None => {}
            }
        }
    }
    for sub in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        validate(doc, sub, value, at, errors);
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        let fits = options.iter().any(|option| {
            let mut scratch = Vec::new();
            validate(doc, option, value, at, &mut scratch);
            scratch.is_empty()
        });
        if !fits {
            errors.push(format!("{at}: matches no anyOf branch (got {value})"));
        }
    }
    if let Some(forbidden) = schema.get("not") {
        let mut scratch = Vec::new();
        validate(doc, forbidden, value, at, &mut scratch);
        if scratch.is_empty() {
            errors.push(format!("{at}: matches `not` (got {value})"));
        }
    }
}

/// Asserts that `reply` is one of `op`'s documented responses: its status, the required
/// headers, the content type, and the body against the schema.
#[track_caller]
fn check_documented(doc: &Value, spec: &RouteSpec, reply: &Reply) {
    let op = operation(doc, spec);
    let status = reply.status.as_u16().to_string();
    let response = &op["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{}: status {status} is not documented (documented: {:?}):{reply:?}",
        spec.name,
        statuses(doc, op)
    );
    let response = resolve(doc, response);
    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        if resolve(doc, header)["required"] == true {
            assert!(
                reply.header(name).is_some(),
                "{}: {status} lacks the documented header {name}:{reply:?}",
                spec.name
            );
        }
    }
    let Some(content) = response["content"].as_object() else {
        assert!(
            reply.body.is_empty(),
            "{}: {status} is documented without a body:{reply:?}",
            spec.name
        );
        return;
    };
    let media_type = reply
        .header("content-type")
        .map(|value| value.split(';').next().unwrap_or(value).trim())
        .unwrap_or_else(|| panic!("{}: no content type:{reply:?}", spec.name));
    let schema = &content
        .get(media_type)
        .or_else(|| content.get("*/*"))
        .unwrap_or_else(|| panic!("{}: {status} as {media_type} is not documented", spec.name))["schema"];
    if media_type != "application/json" {
        return;
    }
    let body: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|err| panic!("{}: not JSON ({err}):{reply:?}", spec.name));
    let mut errors = Vec::new();
    validate(doc, schema, &body, "body", &mut errors);
    assert!(
        errors.is_empty(),
        "{}: {status} does not match the document:\n  {}{reply:?}",
        spec.name,
        errors.join("\n  ")
    );
}

/// `%XX` for everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The operation's example request: path and query from the parameters' examples, the
/// JSON body from the request body's example.
fn example_request(doc: &Value, spec: &RouteSpec) -> (String, Option<Value>) {
    let op = operation(doc, spec);
    let mut path = spec.path.to_owned();
    let mut query = Vec::new();
    for parameter in op["parameters"].as_array().into_iter().flatten() {
        let parameter = resolve(doc, parameter);
        let name = parameter["name"].as_str().expect("parameter name");
        let example = match &parameter["example"] {
            Value::String(text) => text.clone(),
            Value::Null => {
                assert_ne!(
                    parameter["required"], true,
                    "{}: {name} has no example",
                    spec.name
                );
                continue;
            }
            other => other.to_string(),
        };
        match parameter["in"].as_str() {
            Some("path") => path = path.replace(&format!("{{{name}}}"), &encode(&example)),
            Some("query") => query.push(format!("{name}={}", encode(&example))),
            other => panic!("{}: parameter in {other:?}", spec.name),
        }
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let body = resolve(doc, &op["requestBody"])["content"]["application/json"]
        .get("example")
        .cloned();
    (path, body)
}

/// A package for an upload route's example path (`/v1/{plugins|themes}/{slug}/…`),
/// version `1.0.0`.
fn example_package(path: &str) -> Vec<u8> {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next(), segments.next()) {
        (Some("v1"), Some("plugins"), Some(slug)) => crate::support::plugin_zip(slug, "1.0.0", ""),
        (Some("v1"), Some("themes"), Some(slug)) => crate::support::theme_zip(slug, "1.0.0", ""),
        _ => panic!("no example package for {path}"),
    }
}

#[tokio::test]
async fn the_server_answers_only_what_the_document_says() {
    // No account pool (SPEC §1: 0 = unlimited), so the public activation examples are
    // never refused by the fixtures' own activations.
    let server = TestServer::start_with(upkeep::app::Settings {
        default_activation_limit: 0,
        auth_failures_per_minute: 0,
        ..upkeep::app::Settings::default()
    })
    .await;
    let doc = document(&server).await;
    let account = server.account("openapi");
    let operator = server.operator_token("openapi-operator", true, true, None);

    // Without a token, and with a token of the other kind.
    for spec in upkeep::api::rows() {
        let path = example_path(spec, "sample-name");
        let reply = server.request(spec.method.clone(), &path).send().await;
        check_documented(&doc, spec, &reply);
        let wrong = match spec.need {
            Need::Public => continue,
            Need::Scope(_) | Need::Account => &operator,
            Need::Operator { .. } => &account.token,
        };
        assert_eq!(reply.status, 401, "{}:{reply:?}", spec.name);
        let reply = server
            .request(spec.method.clone(), &path)
            .header("authorization", &format!("Bearer {wrong}"))
            .send()
            .await;
        assert_eq!(reply.status, 403, "{}:{reply:?}", spec.name);
        check_documented(&doc, spec, &reply);
    }

    // Each operation's own example, with the right kind of token: creations first, then
    // changes, reads and deletions, so that each example finds what it names.
    let rank = |method: &Method| {
        [Method::POST, Method::PUT, Method::GET]
            .iter()
            .position(|m| m == method)
            .unwrap_or(3)
    };
    let mut ordered: Vec<&RouteSpec> = upkeep::api::rows().to_vec();
    ordered.sort_by_key(|spec| rank(&spec.method));
    let mut license_id = None;
    // Rotation turns the account's secret into a grace secret, which may not manage
    // tokens (issue 15): later examples use the new secret.
    let mut account_token = account.token.clone();
    // Catalogue ids are random: those routes run against records made here.
    let catalog = crate::support::catalog_fixture(&server, &account.token, "oa").await;
    let licensing = crate::support::licensing_fixture(
        &server,
        &account.token,
        &account.prefix,
        "oa",
        catalog.product,
    )
    .await;
    for (n, spec) in ordered.into_iter().enumerate() {
        if spec.name == "download" {
            // A real signed link, from a check of a published free plugin.
            let zip = crate::support::plugin_zip("dl-openapi", "1.0.0", "x");
            server
                .request(Method::POST, "/api/v1/releases")
                .header("x-api-key", &account_token)
                .header("content-type", "application/zip")
                .body(zip)
                .send()
                .await
                .expect(201);
            let answer = server
                .request(Method::GET, "/updates/openapi/dl-openapi")
                .send()
                .await
                .expect(200);
            let link = answer["download_url"]
                .as_str()
                .expect("a download link")
                .to_owned();
            let path = link
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
                .expect("a path");
            let reply = server.request(Method::GET, &path).send().await;
            check_documented(&document(&server).await, spec, &reply);
            assert_eq!(reply.status, 200, "download:{reply:?}");
            continue;
        }
        let public = crate::support::public_request(spec.name, "openapi", &catalog).or_else(|| {
            crate::support::public_licensing_request(
                spec.name,
                "openapi",
                catalog.product,
                &licensing,
            )
        });
        let fixed = crate::support::catalog_request(spec.name, &catalog, n)
            .or_else(|| {
                crate::support::licensing_request(spec.name, &licensing, catalog.product, n)
            })
            .or(public);
        if let Some((path, body)) = fixed {
            let mut call = server
                .request(spec.method.clone(), &path)
                .header("x-api-key", &account_token);
            if let Some(body) = &body {
                call = call.test_body(body);
            }
            let reply = call.send().await;
            check_documented(&doc, spec, &reply);
            assert!(
                reply.status.is_success(),
                "{}: refused:{reply:?}",
                spec.name
            );
            continue;
        }
        let (path, mut body) = example_request(&doc, spec);
        if spec.name == "revoke_license" {
            // Ids are the store's; the example's `1` stands for the license just issued.
            body = Some(serde_json::json!({ "id": license_id.expect("a license was issued") }));
        }
        let mut call = server.request(spec.method.clone(), &path);
        call = match spec.need {
            Need::Public => call,
            Need::Scope(_) | Need::Account => call.header("x-api-key", &account_token),
            Need::Operator { .. } => call.header("authorization", &format!("Bearer {operator}")),
        };
        if let Some(body) = &body {
            call = call.body(body.to_string());
        }
        if spec.body == BodyPolicy::Stream {
            // Uploads carry a package, not JSON: one for the slug the example names.
            call = call
                .header("content-type", "application/zip")
                .body(example_package(&path));
        }
        let reply = call.send().await;
        check_documented(&doc, spec, &reply);
        if spec.name == "apply_account_license" {
            // The example's key is well formed but was never issued.
            reply.expect_error(400, "invalid_license");
            continue;
        }
        assert!(
            reply.status.is_success(),
            "{}: the example request was refused:{reply:?}",
            spec.name
        );
        if spec.name == "issue_license" {
            let body: Value = serde_json::from_slice(&reply.body).expect("JSON");
            license_id = body["data"][0]["id"].as_u64();
        }
        if spec.name == "rotate_self" {
            let body: Value = serde_json::from_slice(&reply.body).expect("JSON");
            account_token = body["data"]["token"]
                .as_str()
                .expect("new secret")
                .to_owned();
        }
    }
}

/// What the document's request schema for `method template` (as `content_type`) finds
/// wrong with the JSON `body`; the schema must exist (a mistyped path would otherwise
/// validate against nothing and find nothing).
#[track_caller]
fn body_errors(
    doc: &Value,
    method: &Method,
    template: &str,
    content_type: &str,
    body: &str,
) -> Vec<String> {
    let schema = &doc["paths"][template][method.as_str().to_ascii_lowercase()]["requestBody"]["content"]
        [content_type]["schema"];
    assert!(
        schema.is_object(),
        "{method} {template}: no {content_type} schema"
    );
    let value: Value = serde_json::from_str(body).expect("the case is JSON");
    let mut errors = Vec::new();
    validate(doc, schema, &value, "body", &mut errors);
    errors
}

/// Request bodies the document refuses, which the server once took (schemathesis' negative
/// phase finds them one a run, at random): each is a 400 naming the field, and where this
/// file's validator can see the violation (it does not check `format`), the document is
/// checked to refuse it too. Bodies the document was widened to take are checked the other
/// way round.
#[tokio::test]
async fn bodies_the_document_refuses_are_refused() {
    const JSON: &str = "application/json";
    let server = TestServer::start().await;
    let doc = document(&server).await;
    let account = server.account("refuse");
    let catalog = crate::support::catalog_fixture(&server, &account.token, "rf").await;
    let licensing = crate::support::licensing_fixture(
        &server,
        &account.token,
        &account.prefix,
        "rf",
        catalog.product,
    )
    .await;
    let key = format!("/api/v1/download-keys/{}", licensing.key);
    let key_bodies = [
        r#"{"activation_limit":" 4294967295"}"#.to_owned(),
        format!(
            r#"{{"product_ids":" {}, {} "}}"#,
            catalog.product, catalog.victim_product
        ),
        format!(
            r#"{{"product_ids":["{}", {}]}}"#,
            catalog.product, catalog.victim_product
        ),
        format!(r#"{{"product_ids":{}}}"#, catalog.product),
        r#"{"product_ids":"ALL"}"#.to_owned(),
    ];
    let product = format!("/api/v1/products/{}", catalog.product);
    server
        .request(Method::POST, "/v1/plugins")
        .header("x-api-key", &account.token)
        .body(r#"{"slug":"wu-refuse"}"#)
        .send()
        .await
        .expect(200);
    // (template, path, content type, body, whether the validator here sees the violation,
    // what the 400's message names)
    let refused: &[(&str, &str, &str, &str, bool, &str)] = &[
        // A nested struct sent as an array (serde reads it by position), or with an
        // unknown field.
        (
            "/api/v1/products/{id}",
            &product,
            JSON,
            r#"{"banners":[null,null]}"#,
            true,
            "banners",
        ),
        (
            "/api/v1/products/{id}",
            &product,
            JSON,
            r#"{"banners":{"low":null,"x":1}}"#,
            true,
            "banners",
        ),
        (
            "/api/v1/products/{id}",
            &product,
            JSON,
            r#"{"icons":[null,null,null]}"#,
            true,
            "icons",
        ),
        (
            "/api/v1/products",
            "/api/v1/products",
            JSON,
            r#"{"slug":"refused","kind":"plugin","name":"R","banners":[null,null]}"#,
            true,
            "banners",
        ),
        (
            "/v1/plugins",
            "/v1/plugins",
            JSON,
            r#"{"slug":"refused-wu","license":["no-license"]}"#,
            true,
            "license",
        ),
        (
            "/v1/plugins/{slug}/license/keys",
            "/v1/plugins/wu-refuse/license/keys",
            JSON,
            r#"[["abcdefgh"]]"#,
            true,
            "[0]",
        ),
        (
            "/v1/public/{prefix}/check",
            "/v1/public/refuse/check",
            JSON,
            "[null,[]]",
            true,
            "JSON object",
        ),
        // Text around a number or a boolean may be JSON's whitespace only.
        (
            "/api/v1/products/{id}",
            &product,
            JSON,
            r#"{"published":"\u000btrue"}"#,
            true,
            "published",
        ),
        (
            "/api/v1/settings/download-keys",
            "/api/v1/settings/download-keys",
            JSON,
            r#"{"generator":"segmented","segments":"\u00a05"}"#,
            true,
            "segments",
        ),
        // Scope names exactly as the enum has them; no empty name between commas.
        (
            "/api/v1/tokens",
            "/api/v1/tokens",
            JSON,
            r#"{"name":"t1","scopes":"api,"}"#,
            true,
            "scopes",
        ),
        (
            "/api/v1/tokens",
            "/api/v1/tokens",
            JSON,
            r#"{"name":"t2","scopes":"api\t"}"#,
            true,
            "scopes",
        ),
        (
            "/api/v1/tokens",
            "/api/v1/tokens",
            JSON,
            r#"{"name":"t3","scopes":["api",""]}"#,
            true,
            "scopes",
        ),
        (
            "/api/v1/tokens",
            "/api/v1/tokens",
            JSON,
            r#"{"name":"t4","scopes":["api,read_user"]}"#,
            true,
            "scopes",
        ),
        (
            "/api/v1/tokens",
            "/api/v1/tokens",
            "application/x-www-form-urlencoded",
            "name=t5&scopes=api&scopes=",
            false,
            "scopes",
        ),
        (
            "/api/v1/download-keys/{id}",
            &key,
            JSON,
            r#"{"activation_limit":"4294967296"}"#,
            true,
            "activation_limit",
        ),
        (
            "/v1/account/tokens",
            "/v1/account/tokens",
            JSON,
            r#"{"name":"t6","scopes":[" api"]}"#,
            true,
            "scopes",
        ),
    ];
    let mut wrongly_taken = Vec::new();
    for &(template, path, content_type, body, visible, named) in refused {
        let method = if template.ends_with("{id}") {
            Method::PATCH
        } else if template == "/api/v1/settings/download-keys" {
            Method::PUT
        } else {
            Method::POST
        };
        if visible {
            let errors = body_errors(&doc, &method, template, content_type, body);
            assert!(
                !errors.is_empty(),
                "{method} {template}: the document takes {body}"
            );
        }
        let reply = server
            .request(method.clone(), path)
            .header("x-api-key", &account.token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await;
        let message = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if reply.status != 400 || !message.contains(named) {
            wrongly_taken.push(format!(
                "{method} {path} {body:?} (want 400 naming {named}):{reply:?}"
            ));
        }
    }
    assert!(
        wrongly_taken.is_empty(),
        "not refused as they should be: {wrongly_taken:#?}"
    );
    // Nothing was made by the refused creations (both families share the account's slugs).
    for slug in ["refused", "refused-wu"] {
        server
            .request(Method::POST, "/api/v1/products")
            .header("x-api-key", &account.token)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"slug":"{slug}","kind":"plugin","name":"{slug}"}}"#
            ))
            .send()
            .await
            .expect(201);
    }
    let tokens = server
        .request(Method::GET, "/api/v1/tokens")
        .header("x-api-key", &account.token)
        .send()
        .await
        .expect(200);
    assert_eq!(tokens["data"].as_array().map(Vec::len), Some(1), "{tokens}");

    // What the document was widened to take, it takes, and so does the server.
    let mut taken: Vec<(&str, &str, Method, &str)> = vec![
        (
            "/api/v1/products/{id}",
            &product,
            Method::PATCH,
            r#"{"homepage":" \t\u00a0"}"#,
        ),
        (
            "/api/v1/products/{id}",
            &product,
            Method::PATCH,
            r#"{"group_id":"0000000000000001"}"#,
        ),
        (
            "/api/v1/settings/download-keys",
            "/api/v1/settings/download-keys",
            Method::PUT,
            r#"{"generator":"segmented","segments":" 5","segment_len":"08"}"#,
        ),
        (
            "/api/v1/customers",
            "/api/v1/customers",
            Method::POST,
            r#"{"name":"A","email":"a@example.com","entity":null}"#,
        ),
    ];
    for body in &key_bodies {
        taken.push(("/api/v1/download-keys/{id}", &key, Method::PATCH, body));
    }
    for (template, path, method, body) in taken {
        let errors = body_errors(&doc, &method, template, JSON, body);
        assert!(errors.is_empty(), "{method} {template}: {errors:?}");
        let reply = server
            .request(method.clone(), path)
            .header("x-api-key", &account.token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await;
        assert!(
            reply.status.is_success(),
            "{method} {path} {body}:{reply:?}"
        );
    }
}
