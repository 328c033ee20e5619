//! The OpenAPI 3.1 document served at `GET /openapi.json`, built once from the route rows:
//! its `paths` are every row of [`crate::api::table`] (path, method, `operationId` = the row's
//! name), each with the operation object its family keeps by that name
//! (`src/api/<family>/openapi.json`); everything else (info, tags, shared schemas,
//! responses, security schemes) is `src/api/openapi.base.json`. A row without an
//! operation, or an operation without a row, fails the build of the document — and so
//! every test run — so a route cannot be missing from the document.

use bytes::Bytes;
use serde_json::{Map, Value};
use std::sync::LazyLock;

const BASE: &str = include_str!("openapi.base.json");

/// The rendered document.
pub fn document() -> Bytes {
    static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| {
        let value = build().unwrap_or_else(|err| panic!("the OpenAPI document: {err}"));
        Bytes::from(serde_json::to_vec_pretty(&value).expect("a JSON value serializes"))
    });
    DOCUMENT.clone()
}

/// Builds the document from the base, the rows and the families' operations.
///
/// # Errors
/// What does not fit: unparsable JSON, a row without an operation, an operation without
/// a row.
pub fn build() -> Result<Value, String> {
    let mut document: Value =
        serde_json::from_str(BASE).map_err(|err| format!("openapi.base.json: {err}"))?;
    let mut operations = Map::new();
    for api in crate::api::FAMILIES {
        let family: Map<String, Value> = serde_json::from_str(api.operations)
            .map_err(|err| format!("a family's openapi.json: {err}"))?;
        for (name, operation) in family {
            if !api.rows.iter().any(|row| row.name == name) {
                return Err(format!(
                    "operation `{name}` belongs to no row of its family"
                ));
            }
            operations.insert(name, operation);
        }
    }
    let mut paths = Map::new();
    for row in &crate::api::table().rows {
        let mut operation = operations.remove(row.name).ok_or_else(|| {
            format!(
                "row `{}` ({} {}) has no operation",
                row.name, row.method, row.path
            )
        })?;
        if let Value::Object(fields) = &mut operation {
            fields.insert("operationId".to_owned(), Value::from(row.name));
        }
        let entry = paths
            .entry(row.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(row.method.as_str().to_ascii_lowercase(), operation);
        }
    }
    match &mut document {
        Value::Object(fields) => {
            fields.insert("paths".to_owned(), Value::Object(paths));
        }
        _ => return Err("openapi.base.json is not an object".to_owned()),
    }
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_documented_and_every_operation_is_a_row() {
        let document = build().unwrap();
        let paths = document["paths"].as_object().unwrap();
        for row in &crate::api::table().rows {
            let operation = &paths[row.path][row.method.as_str().to_ascii_lowercase()];
            assert_eq!(
                operation["operationId"], row.name,
                "{} {}",
                row.method, row.path
            );
        }
        let count: usize = paths
            .values()
            .map(|methods| methods.as_object().unwrap().len())
            .sum();
        assert_eq!(count, crate::api::table().rows.len());
        let served: Value = serde_json::from_slice(&super::document()).unwrap();
        assert_eq!(served, document);
    }
}
