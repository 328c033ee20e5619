//! The authorization matrix: every route of the route table × every kind of credential
//! → the outcome SPEC gives, computed from the route's `Need`:
//!
//! - no token, malformed, unknown, expired, inactive → `401`;
//! - account token: `403` unless its scopes grant the route's scope (or the route takes
//!   any account token), `403` on operator routes;
//! - operator token: `403` on account routes; read-only → `403` on writes and `/value`;
//! - another account's token naming this account's resource (a token name, a product
//!   slug) → `404`;
//! - a previous secret in its rotation grace (an `api` token's): reads as the token does,
//!   but `403` on every route that creates, deletes or rotates tokens;
//! - an expiring `api` token: as any `api` token, and every token it creates expires
//!   no later than it does (the created token's expiry is checked in the answer);
//! - otherwise the request gets past authorization (not 401/403, and never 5xx).
//!
//! A route in the table with no entry in [`request_for`] fails the test, so a new route
//! cannot skip the matrix.

use crate::support::{
    CatalogIds, LicensingIds, START, TestBody, TestServer, catalog_fixture, catalog_request,
    licensing_fixture, licensing_request,
};
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;
use upkeep::http::auth::Need;
use upkeep::http::route::{self, Row as RouteSpec};
use upkeep::model::{Scope, Scopes, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Unauthenticated,
    Forbidden,
    NotFound,
    /// Authorized: the handler decided the status.
    Allowed,
}

#[derive(Debug, Clone)]
enum Credential {
    None,
    Malformed,
    Unknown,
    Expired,
    InactiveOperator,
    Account(Scope),
    /// An `api` token's previous secret, in its rotation grace.
    GraceSecret,
    /// An `api` token that expires (an hour after the matrix starts).
    ExpiringApi,
    OtherAccount,
    ReadOnlyOperator,
    Operator,
}

/// What SPEC §4 says each route needs, written out independently of the server's route
/// table (which `expected` must not trust: a wrong row there would otherwise pass).
fn spec_need(name: &str) -> Need {
    const READ: Need = Need::Operator { write: false };
    const WRITE: Need = Need::Operator { write: true };
    match name {
        "landing" | "health" | "openapi" => Need::Public,
        // SPEC §8: the public update checks and downloads.
        "wu_plugin"
        | "wu_plugin_channel"
        | "wu_theme"
        | "wu_theme_channel"
        | "batch_check"
        | "puc"
        | "puc_channel"
        | "changelog"
        | "updatercloud_update"
        | "edd"
        | "edd_post"
        | "root_post"
        | "download" => Need::Public,
        // SPEC §9.2: public licensing.
        "uc_key_check"
        | "uc_key_check_post"
        | "uc_key_activate"
        | "uc_key_activate_post"
        | "uc_key_deactivate"
        | "uc_key_deactivate_post"
        | "uc_key_activations"
        | "ls_activate"
        | "ls_validate"
        | "ls_deactivate"
        | "ls_default_activate"
        | "ls_default_validate"
        | "ls_default_deactivate" => Need::Public,
        "metrics" => READ,
        "get_account" | "get_me" => Need::Scope(Scope::ReadUser),
        "get_account_license" => Need::Scope(Scope::ReadLicenses),
        "apply_account_license" => Need::Scope(Scope::ManageLicenses),
        "list_account_tokens"
        | "create_account_token"
        | "delete_account_token"
        | "list_tokens"
        | "create_token"
        | "delete_token" => Need::Scope(Scope::Api),
        "rotate_self" => Need::Account,
        "list_groups" | "get_group" | "list_products" | "get_product" | "get_channels"
        | "list_versions" | "get_version" | "list_files" | "get_file" | "download_file" => {
            Need::Scope(Scope::ReadReleases)
        }
        "create_group"
        | "update_group"
        | "delete_group"
        | "create_product"
        | "update_product"
        | "delete_product"
        | "duplicate_product"
        | "create_version"
        | "release_product"
        | "release"
        | "update_version"
        | "delete_version"
        | "create_file"
        | "update_file"
        | "delete_file"
        | "replace_file_content" => Need::Scope(Scope::ManageReleases),
        // SPEC §7.2 (scopes as §7.1; keys as §9.1).
        "list_plugins"
        | "get_plugin"
        | "list_plugin_versions"
        | "list_themes"
        | "get_theme"
        | "list_theme_versions" => Need::Scope(Scope::ReadReleases),
        "create_plugin"
        | "update_plugin"
        | "delete_plugin"
        | "release_plugin_version"
        | "delete_plugin_version"
        | "create_theme"
        | "update_theme"
        | "delete_theme"
        | "release_theme_version"
        | "delete_theme_version" => Need::Scope(Scope::ManageReleases),
        "list_plugin_keys" | "get_plugin_key" | "list_theme_keys" | "get_theme_key" => {
            Need::Scope(Scope::ReadLicenses)
        }
        "replace_plugin_keys"
        | "add_plugin_key"
        | "delete_plugin_key"
        | "replace_theme_keys"
        | "add_theme_key"
        | "delete_theme_key" => Need::Scope(Scope::ManageLicenses),
        "list_customers"
        | "get_customer"
        | "list_download_keys"
        | "get_download_key"
        | "list_activations"
        | "get_download_key_settings" => Need::Scope(Scope::ReadLicenses),
        "create_customer"
        | "update_customer"
        | "delete_customer"
        | "generate_download_key"
        | "update_download_key"
        | "delete_download_key"
        | "delete_activation"
        | "put_download_key_settings" => Need::Scope(Scope::ManageLicenses),
        "list_operator_tokens" | "list_accounts" | "list_licenses" => READ,
        "create_operator_token"
        | "update_operator_token"
        | "delete_operator_token"
        | "get_operator_token_value"
        | "create_account"
        | "delete_account"
        | "issue_license"
        | "revoke_license" => WRITE,
        other => panic!("route `{other}` is not in SPEC's authorization table"),
    }
}

/// Routes that create, delete or rotate tokens: a grace secret may not use them.
const MANAGES_TOKENS: [&str; 5] = [
    "create_account_token",
    "delete_account_token",
    "create_token",
    "delete_token",
    "rotate_self",
];

fn expected(spec: &RouteSpec, credential: &Credential) -> Outcome {
    use Credential as C;
    use Outcome::*;
    let credential = match credential {
        C::GraceSecret if MANAGES_TOKENS.contains(&spec.name) => {
            return if spec_need(spec.name) == Need::Public {
                Allowed
            } else {
                Forbidden
            };
        }
        C::GraceSecret | C::ExpiringApi => &C::Account(Scope::Api),
        other => other,
    };
    match (credential, spec_need(spec.name)) {
        (_, Need::Public) if spec.name == "download" => NotFound,
        (_, Need::Public) => Allowed,
        (C::None | C::Malformed | C::Unknown | C::Expired | C::InactiveOperator, _) => {
            Unauthenticated
        }
        (C::Account(held), Need::Scope(needed)) => {
            if Scopes::only(*held).grants(needed) {
                Allowed
            } else {
                Forbidden
            }
        }
        (C::Account(_) | C::OtherAccount, Need::Account) => Allowed,
        (C::OtherAccount, Need::Scope(_)) => {
            // An `api` token of another account: allowed, but a name, id or slug of this
            // account's is not found in its own.
            if ["{name}", "{id}", "{slug}"]
                .iter()
                .any(|p| spec.path.contains(p))
            {
                NotFound
            } else {
                Allowed
            }
        }
        (C::Account(_) | C::OtherAccount, Need::Operator { .. }) => Forbidden,
        (C::ReadOnlyOperator | C::Operator, Need::Scope(_) | Need::Account) => Forbidden,
        (C::ReadOnlyOperator, Need::Operator { write }) => {
            if write {
                Forbidden
            } else {
                Allowed
            }
        }
        (C::Operator, Need::Operator { .. }) => Allowed,
        (C::GraceSecret | C::ExpiringApi, _) => unreachable!("mapped above"),
    }
}

fn outcome(status: u16) -> Outcome {
    match status {
        401 => Outcome::Unauthenticated,
        403 => Outcome::Forbidden,
        404 => Outcome::NotFound,
        _ => Outcome::Allowed,
    }
}

/// A well-formed request for each route: path (with `{name}` filled) and body.
/// Names are made unique with `n` so repeated calls do not collide.
fn request_for(
    spec: &RouteSpec,
    n: usize,
    license_key: &str,
    victim_license: u64,
    catalog: &CatalogIds,
    licensing: &LicensingIds,
) -> (String, Option<TestBody>) {
    if let Some(request) = catalog_request(spec.name, catalog, n) {
        return request;
    }
    if let Some(request) = licensing_request(spec.name, licensing, catalog.product, n) {
        return request;
    }
    if let Some(request) = crate::support::public_request(spec.name, "acme", catalog) {
        return request;
    }
    if let Some(request) =
        crate::support::public_licensing_request(spec.name, "acme", catalog.product, licensing)
    {
        return request;
    }
    if spec.name == "download" {
        // A link this server never signed: 404 for every credential (credentials are
        // ignored on public routes; real links are tested in `public::downloads`).
        return ("/dl/AAAA/x.zip".to_owned(), None);
    }
    // Each deleting route has its own victim, so one route's success is not another's 404.
    let victim = if spec.name == "delete_token" {
        "victim2"
    } else {
        "victim"
    };
    if let Some((path, body)) = wu_catalog_request(spec, n) {
        return (path, body.map(TestBody::Json));
    }
    let path = route::example_path(spec, victim);
    let body = match spec.name {
        "health"
        | "metrics"
        | "openapi"
        | "landing"
        | "get_account"
        | "get_account_license"
        | "list_account_tokens"
        | "delete_account_token"
        | "get_me"
        | "list_tokens"
        | "delete_token"
        | "list_operator_tokens"
        | "list_accounts"
        | "list_licenses" => None,
        "get_operator_token_value" => return (format!("{path}?name=target-op"), None),
        "apply_account_license" => Some(json!({"license": license_key})),
        "create_account_token" => Some(json!({"name": format!("m{n}")})),
        "create_token" => Some(json!({"name": format!("u{n}"), "scopes": ["read_user"]})),
        "rotate_self" => Some(json!({})),
        "create_operator_token" => Some(json!({"name": format!("op{n}")})),
        "update_operator_token" => Some(json!({"name": "target-op", "write": true})),
        "delete_operator_token" => Some(json!({"name": "victim-op"})),
        "create_account" => Some(json!({"name": "New", "email": "new@example.com"})),
        "delete_account" => Some(json!({"prefix": "victim"})),
        "issue_license" => Some(json!({"limit": 5})),
        "revoke_license" => Some(json!({"id": victim_license})),
        other => panic!("route `{other}` has no entry in the authorization matrix"),
    };
    (path, body.map(TestBody::Json))
}

/// The catalogue fixtures of the matrix (SPEC §7.2): acme's plugin and theme, each with
/// version `1.0.0` and one static key; restored before each credential's round.
const MATRIX_PLUGIN: &str = "matrix-plugin";
const MATRIX_THEME: &str = "matrix-theme";
const MATRIX_VERSION: &str = "1.0.0";
const MATRIX_KEY: &str = "matrix-key-0001";

/// The request for a `/v1/plugins…` or `/v1/themes…` route, naming the fixtures.
fn wu_catalog_request(spec: &RouteSpec, n: usize) -> Option<(String, Option<Value>)> {
    let (slug, new_slug) = match spec.name {
        "list_plugins"
        | "create_plugin"
        | "get_plugin"
        | "update_plugin"
        | "delete_plugin"
        | "list_plugin_versions"
        | "release_plugin_version"
        | "delete_plugin_version"
        | "list_plugin_keys"
        | "replace_plugin_keys"
        | "add_plugin_key"
        | "get_plugin_key"
        | "delete_plugin_key" => (MATRIX_PLUGIN, format!("p{n}")),
        "list_themes"
        | "create_theme"
        | "get_theme"
        | "update_theme"
        | "delete_theme"
        | "list_theme_versions"
        | "release_theme_version"
        | "delete_theme_version"
        | "list_theme_keys"
        | "replace_theme_keys"
        | "add_theme_key"
        | "get_theme_key"
        | "delete_theme_key" => (MATRIX_THEME, format!("t{n}")),
        _ => return None,
    };
    let path = spec
        .path
        .replace("{slug}", slug)
        .replace("{version}", MATRIX_VERSION)
        .replace("{key}", MATRIX_KEY);
    let body = match spec.name {
        "create_plugin" | "create_theme" => Some(json!({"slug": new_slug})),
        "update_plugin" | "update_theme" => Some(json!({"license": {"type": "static-keys"}})),
        "replace_plugin_keys" | "replace_theme_keys" => Some(json!([{"key": MATRIX_KEY}])),
        "add_plugin_key" | "add_theme_key" => Some(json!({"key": format!("added-key-{n:05}")})),
        // Uploads get a body that is no package: past authorization, it is a 400.
        "release_plugin_version" | "release_theme_version" => Some(json!({"not": "a zip"})),
        _ => None,
    };
    Some((path, body))
}

/// Puts the catalogue fixtures back (earlier credentials may have deleted them).
async fn restore_catalog(server: &TestServer, token: &str) {
    for (tree, slug, zip) in [
        (
            "plugins",
            MATRIX_PLUGIN,
            crate::support::plugin_zip(MATRIX_PLUGIN, MATRIX_VERSION, ""),
        ),
        (
            "themes",
            MATRIX_THEME,
            crate::support::theme_zip(MATRIX_THEME, MATRIX_VERSION, ""),
        ),
    ] {
        let path = format!("/v1/{tree}/{slug}");
        if server.get(&path, token).send().await.status == 404 {
            server
                .post(&format!("/v1/{tree}"), token, json!({"slug": slug}))
                .send()
                .await
                .expect(200);
        }
        // Idempotent: the same zip for an existing version changes nothing.
        server
            .request(Method::POST, &format!("{path}/versions"))
            .header("x-api-key", token)
            .header("content-type", "application/zip")
            .body(zip)
            .send()
            .await
            .expect(200);
        let added = server
            .request(Method::PUT, &format!("{path}/license/keys"))
            .header("x-api-key", token)
            .body(json!({"key": MATRIX_KEY}).to_string())
            .send()
            .await;
        assert!(matches!(added.status.as_u16(), 200 | 409), "{added:?}");
    }
}

#[tokio::test]
async fn every_route_and_credential_gets_the_status_spec_gives() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    server.account("victim");
    server.token(&acme, "victim", &["read_user"], None);
    server.token(&acme, "victim2", &["read_user"], None);
    server.operator_token("target-op", true, true, None);
    server.operator_token("victim-op", true, true, None);
    let (_, license_key) = server.license(10, None);
    let (victim_license, _) = server.license(3, None);

    let soon = Some(Timestamp::from_secs(START.as_secs() + 60));
    let expired = server.token(&acme, "expiring", &["api"], soon);
    let parent_expiry = Timestamp::from_secs(START.as_secs() + 3600);
    let expiring_api = server.token(&acme, "expiring-api", &["api"], Some(parent_expiry));
    let graced = server.token(&acme, "graced", &["api"], None);
    let (_, graced_hash) = upkeep::token::parse(&graced).unwrap();
    server
        .store()
        .rotate_token(&graced_hash, Some(parent_expiry), server.now())
        .unwrap()
        .durable_blocking()
        .unwrap();
    let inactive = server.operator_token("inactive", false, true, None);
    let read_only = server.operator_token("reader", true, false, None);
    let operator = server.operator_token("admin", true, true, None);
    let unknown = upkeep::token::generate(upkeep::token::TokenKind::Account)
        .unwrap()
        .token;
    let mut malformed = acme.token.clone();
    malformed.pop();
    malformed.push(if acme.token.ends_with('x') { 'y' } else { 'x' });
    server.clock.advance(Duration::from_secs(61));

    let mut credentials: Vec<(Credential, Option<String>)> = vec![
        (Credential::None, None),
        (Credential::Malformed, Some(malformed)),
        (Credential::Unknown, Some(unknown)),
        (Credential::Expired, Some(expired)),
        (Credential::InactiveOperator, Some(inactive)),
        (Credential::OtherAccount, Some(globex.token.clone())),
        (Credential::ReadOnlyOperator, Some(read_only)),
        (Credential::Operator, Some(operator)),
        (Credential::GraceSecret, Some(graced)),
        (Credential::ExpiringApi, Some(expiring_api)),
    ];
    for scope in Scope::ALL {
        let token = server.token(
            &acme,
            &format!("only-{}", scope.as_str().replace('_', "-")),
            &[scope.as_str()],
            None,
        );
        credentials.push((Credential::Account(scope), Some(token)));
    }

    // Rotation replaces the caller's secret, so it runs last for each credential.
    let mut specs: Vec<&RouteSpec> = upkeep::api::rows().to_vec();
    specs.sort_by_key(|spec| spec.name == "rotate_self");

    let mut mismatches = Vec::new();
    let mut n = 0;
    let acme_prefix = upkeep::model::AccountPrefix::parse(&acme.prefix).unwrap();
    for (c, (credential, token)) in credentials.iter().enumerate() {
        // Catalogue records of acme's for this credential (its deletions take victims).
        let catalog = catalog_fixture(&server, &acme.token, &format!("c{c}")).await;
        let licensing = licensing_fixture(
            &server,
            &acme.token,
            &acme.prefix,
            &format!("c{c}"),
            catalog.product,
        )
        .await;
        // Every credential allowed to delete finds the victims there (an earlier one may
        // have deleted them).
        for victim in ["victim", "victim2"] {
            let store = server.store();
            if store
                .token_named(Some(&acme_prefix), victim)
                .unwrap()
                .is_none()
            {
                server.token(&acme, victim, &["read_user"], None);
            }
        }
        restore_catalog(&server, &acme.token).await;
        for spec in &specs {
            n += 1;
            let (path, body) =
                request_for(spec, n, &license_key, victim_license, &catalog, &licensing);
            let mut call = server.request(spec.method.clone(), &path);
            if let Some(token) = token {
                call = call.header("authorization", &format!("Bearer {token}"));
            }
            if let Some(body) = &body {
                call = call.test_body(body);
            }
            let reply = call.send().await;
            let want = expected(spec, credential);
            let got = outcome(reply.status.as_u16());
            assert!(
                reply.status.as_u16() < 500,
                "{} {path} as {credential:?}: {reply:?}",
                spec.method
            );
            if matches!(credential, Credential::ExpiringApi) && reply.status.is_success() {
                // A token it creates (or its own rotated secret) never outlives it.
                let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let outlives = match spec.name {
                    "create_account_token" => body["token"]["expires"] != parent_expiry.as_secs(),
                    "create_token" | "rotate_self" => {
                        body["data"]["expires_at"] != parent_expiry.to_rfc3339()
                    }
                    _ => false,
                };
                if outlives {
                    mismatches.push(format!(
                        "{} as {credential:?}: the new token outlives its creator: {body}",
                        spec.name
                    ));
                }
            }
            if got != want {
                mismatches.push(format!(
                    "{:<28} {:<7} as {credential:?}: want {want:?}, got {} {}",
                    spec.name,
                    spec.method,
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The matrix really ran every route for every credential.
    assert_eq!(n, upkeep::api::rows().len() * credentials.len());
}

#[test]
fn every_route_in_the_table_has_a_matrix_entry() {
    for spec in upkeep::api::rows() {
        assert_eq!(
            spec.need,
            spec_need(spec.name),
            "route table row for {}",
            spec.name
        );
        let ids = CatalogIds {
            theme_slug: "theme".into(),
            product: 11,
            product_slug: "alpha".into(),
            victim_product: 12,
            version: 13,
            victim_version: 14,
            file: 15,
            victim_file: 16,
            group: 17,
            victim_group: 18,
        };
        let licensing = LicensingIds {
            customer: 21,
            victim_customer: 22,
            key: 23,
            victim_key: 24,
            victim_activation: 25,
            key_value: "k".to_owned(),
            ls_instances: ["i".to_owned(), "j".to_owned()],
        };
        let (path, _) = request_for(spec, 0, "k", 1, &ids, &licensing);
        assert!(path.starts_with('/'), "{}", spec.name);
        let found = upkeep::api::find(&spec.method, path.split('?').next().unwrap()).unwrap();
        assert_eq!(found.row.name, spec.name);
    }
    // HEAD follows GET everywhere.
    for spec in upkeep::api::rows()
        .iter()
        .filter(|spec| spec.method == Method::GET)
    {
        let path = route::example_path(spec, "victim");
        assert_eq!(
            upkeep::api::find(&Method::HEAD, &path).unwrap().row.name,
            spec.name
        );
    }
}
