//! `route(method, path) -> Route`: path first, then method, so an unknown path is a 404
//! and a known path with the wrong method is a 405 with `Allow`. Path parameters become
//! typed values here; a parameter that cannot name anything (a token name breaking the
//! naming rule) is the same 404 as an unknown one.
//!
//! [`ROUTES`] is the route table: every endpoint's name, method, path and [`Need`] (what
//! its caller must present). [`Route::spec`] maps each variant to its row with an
//! exhaustive `match`, so a route cannot exist without a row, and the tests check that
//! routing each row's method and path lands on that row.

use crate::auth::Need;
use crate::error::Error;
use crate::model::{Scope, TokenName};
use http::Method;

/// Every endpoint, with its typed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: the landing (JSON, or HTML for a browser).
    Landing,
    Health,
    Metrics,
    OpenApi,
    // WunderUpdates `/v1/account…`
    GetAccount,
    GetAccountLicense,
    ApplyAccountLicense,
    ListAccountTokens,
    CreateAccountToken,
    DeleteAccountToken {
        name: TokenName,
    },
    // UpdaterCloud `/api/v1/…`
    GetMe,
    ListTokens,
    CreateToken,
    DeleteToken {
        name: TokenName,
    },
    RotateSelf,
    // Query `/_/…`
    ListOperatorTokens,
    CreateOperatorToken,
    UpdateOperatorToken,
    DeleteOperatorToken,
    GetOperatorTokenValue,
    ListAccounts,
    CreateAccount,
    DeleteAccount,
    ListLicenses,
    IssueLicense,
    RevokeLicense,
}

/// The API family a route belongs to; decides how bodies are read and times rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/v1/…` (WunderUpdates): JSON bodies, Unix seconds.
    WunderUpdates,
    /// `/api/v1/…` (UpdaterCloud): JSON or form-encoded bodies, RFC 3339.
    UpdaterCloud,
    /// `/_/…` (Query): JSON bodies, Unix milliseconds.
    Query,
    /// `/`, `/healthz`, `/metrics`, `/openapi.json`.
    Operations,
}

/// One row of the route table.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// Stable name for logs and metrics.
    pub name: &'static str,
    pub method: Method,
    /// The path, with `{name}` for a parameter.
    pub path: &'static str,
    pub family: Family,
    pub need: Need,
}

const fn row(
    name: &'static str,
    method: Method,
    path: &'static str,
    family: Family,
    need: Need,
) -> RouteSpec {
    RouteSpec {
        name,
        method,
        path,
        family,
        need,
    }
}

use Family::{Operations, Query, UpdaterCloud, WunderUpdates};
const READ: Need = Need::Operator { write: false };
const WRITE: Need = Need::Operator { write: true };

static LANDING: RouteSpec = row("landing", Method::GET, "/", Operations, Need::Public);
static HEALTH: RouteSpec = row("health", Method::GET, "/healthz", Operations, Need::Public);
static METRICS: RouteSpec = row("metrics", Method::GET, "/metrics", Operations, READ);
static OPENAPI: RouteSpec = row(
    "openapi",
    Method::GET,
    "/openapi.json",
    Operations,
    Need::Public,
);
static GET_ACCOUNT: RouteSpec = row(
    "get_account",
    Method::GET,
    "/v1/account",
    WunderUpdates,
    Need::Scope(Scope::ReadUser),
);
static GET_ACCOUNT_LICENSE: RouteSpec = row(
    "get_account_license",
    Method::GET,
    "/v1/account/license",
    WunderUpdates,
    Need::Scope(Scope::ReadLicenses),
);
static APPLY_ACCOUNT_LICENSE: RouteSpec = row(
    "apply_account_license",
    Method::POST,
    "/v1/account/license",
    WunderUpdates,
    Need::Scope(Scope::ManageLicenses),
);
static LIST_ACCOUNT_TOKENS: RouteSpec = row(
    "list_account_tokens",
    Method::GET,
    "/v1/account/tokens",
    WunderUpdates,
    Need::Scope(Scope::Api),
);
static CREATE_ACCOUNT_TOKEN: RouteSpec = row(
    "create_account_token",
    Method::POST,
    "/v1/account/tokens",
    WunderUpdates,
    Need::Scope(Scope::Api),
);
static DELETE_ACCOUNT_TOKEN: RouteSpec = row(
    "delete_account_token",
    Method::DELETE,
    "/v1/account/tokens/{name}",
    WunderUpdates,
    Need::Scope(Scope::Api),
);
static GET_ME: RouteSpec = row(
    "get_me",
    Method::GET,
    "/api/v1/me",
    UpdaterCloud,
    Need::Scope(Scope::ReadUser),
);
static LIST_TOKENS: RouteSpec = row(
    "list_tokens",
    Method::GET,
    "/api/v1/tokens",
    UpdaterCloud,
    Need::Scope(Scope::Api),
);
static CREATE_TOKEN: RouteSpec = row(
    "create_token",
    Method::POST,
    "/api/v1/tokens",
    UpdaterCloud,
    Need::Scope(Scope::Api),
);
static DELETE_TOKEN: RouteSpec = row(
    "delete_token",
    Method::DELETE,
    "/api/v1/tokens/{name}",
    UpdaterCloud,
    Need::Scope(Scope::Api),
);
static ROTATE_SELF: RouteSpec = row(
    "rotate_self",
    Method::POST,
    "/api/v1/tokens/self/rotate",
    UpdaterCloud,
    Need::Account,
);
static LIST_OPERATOR_TOKENS: RouteSpec =
    row("list_operator_tokens", Method::GET, "/_/token", Query, READ);
static CREATE_OPERATOR_TOKEN: RouteSpec = row(
    "create_operator_token",
    Method::POST,
    "/_/token",
    Query,
    WRITE,
);
static UPDATE_OPERATOR_TOKEN: RouteSpec = row(
    "update_operator_token",
    Method::PUT,
    "/_/token",
    Query,
    WRITE,
);
static DELETE_OPERATOR_TOKEN: RouteSpec = row(
    "delete_operator_token",
    Method::DELETE,
    "/_/token",
    Query,
    WRITE,
);
static GET_OPERATOR_TOKEN_VALUE: RouteSpec = row(
    "get_operator_token_value",
    Method::GET,
    "/_/token/value",
    Query,
    WRITE,
);
static LIST_ACCOUNTS: RouteSpec = row("list_accounts", Method::GET, "/_/account", Query, READ);
static CREATE_ACCOUNT: RouteSpec = row("create_account", Method::POST, "/_/account", Query, WRITE);
static DELETE_ACCOUNT: RouteSpec =
    row("delete_account", Method::DELETE, "/_/account", Query, WRITE);
static LIST_LICENSES: RouteSpec = row("list_licenses", Method::GET, "/_/license", Query, READ);
static ISSUE_LICENSE: RouteSpec = row("issue_license", Method::POST, "/_/license", Query, WRITE);
static REVOKE_LICENSE: RouteSpec =
    row("revoke_license", Method::DELETE, "/_/license", Query, WRITE);

/// The route table, in documentation order.
pub static ROUTES: &[&RouteSpec] = &[
    &LANDING,
    &HEALTH,
    &METRICS,
    &OPENAPI,
    &GET_ACCOUNT,
    &GET_ACCOUNT_LICENSE,
    &APPLY_ACCOUNT_LICENSE,
    &LIST_ACCOUNT_TOKENS,
    &CREATE_ACCOUNT_TOKEN,
    &DELETE_ACCOUNT_TOKEN,
    &GET_ME,
    &LIST_TOKENS,
    &CREATE_TOKEN,
    &DELETE_TOKEN,
    &ROTATE_SELF,
    &LIST_OPERATOR_TOKENS,
    &CREATE_OPERATOR_TOKEN,
    &UPDATE_OPERATOR_TOKEN,
    &DELETE_OPERATOR_TOKEN,
    &GET_OPERATOR_TOKEN_VALUE,
    &LIST_ACCOUNTS,
    &CREATE_ACCOUNT,
    &DELETE_ACCOUNT,
    &LIST_LICENSES,
    &ISSUE_LICENSE,
    &REVOKE_LICENSE,
];

impl Route {
    /// This route's row of [`ROUTES`].
    pub fn spec(&self) -> &'static RouteSpec {
        match self {
            Route::Landing => &LANDING,
            Route::Health => &HEALTH,
            Route::Metrics => &METRICS,
            Route::OpenApi => &OPENAPI,
            Route::GetAccount => &GET_ACCOUNT,
            Route::GetAccountLicense => &GET_ACCOUNT_LICENSE,
            Route::ApplyAccountLicense => &APPLY_ACCOUNT_LICENSE,
            Route::ListAccountTokens => &LIST_ACCOUNT_TOKENS,
            Route::CreateAccountToken => &CREATE_ACCOUNT_TOKEN,
            Route::DeleteAccountToken { .. } => &DELETE_ACCOUNT_TOKEN,
            Route::GetMe => &GET_ME,
            Route::ListTokens => &LIST_TOKENS,
            Route::CreateToken => &CREATE_TOKEN,
            Route::DeleteToken { .. } => &DELETE_TOKEN,
            Route::RotateSelf => &ROTATE_SELF,
            Route::ListOperatorTokens => &LIST_OPERATOR_TOKENS,
            Route::CreateOperatorToken => &CREATE_OPERATOR_TOKEN,
            Route::UpdateOperatorToken => &UPDATE_OPERATOR_TOKEN,
            Route::DeleteOperatorToken => &DELETE_OPERATOR_TOKEN,
            Route::GetOperatorTokenValue => &GET_OPERATOR_TOKEN_VALUE,
            Route::ListAccounts => &LIST_ACCOUNTS,
            Route::CreateAccount => &CREATE_ACCOUNT,
            Route::DeleteAccount => &DELETE_ACCOUNT,
            Route::ListLicenses => &LIST_LICENSES,
            Route::IssueLicense => &ISSUE_LICENSE,
            Route::RevokeLicense => &REVOKE_LICENSE,
        }
    }

    /// What the caller must present.
    pub fn need(&self) -> Need {
        self.spec().need
    }

    /// Stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        self.spec().name
    }

    pub fn family(&self) -> Family {
        self.spec().family
    }
}

const GET: &[Method] = &[Method::GET, Method::HEAD];
const POST: &[Method] = &[Method::POST];
const GET_POST: &[Method] = &[Method::GET, Method::HEAD, Method::POST];
const GET_POST_DELETE: &[Method] = &[Method::GET, Method::HEAD, Method::POST, Method::DELETE];
const GET_POST_PUT_DELETE: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
];
const DELETE: &[Method] = &[Method::DELETE];

/// Decodes `%XX` escapes; `None` for a bad escape or non-UTF-8 result.
fn percent_decode(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn not_found() -> Error {
    Error::NotFound("no such route".to_owned())
}

fn token_name(segment: &str) -> Result<TokenName, Error> {
    let name = percent_decode(segment).ok_or_else(not_found)?;
    TokenName::parse(&name).map_err(|_| Error::NotFound(format!("no token named `{name}`")))
}

/// Finds the route for `method` and `path` (the path without its query string).
/// `HEAD` is accepted wherever `GET` is.
///
/// # Errors
/// `NotFound` for an unknown path, `MethodNotAllowed` (with the allowed methods) for a
/// known path and another method.
pub fn route(method: &Method, path: &str) -> Result<Route, Error> {
    let path = path.strip_prefix('/').ok_or_else(not_found)?;
    if path.is_empty() {
        // `/` is shared: the EDD and wp-update-server dialects (SPEC §8.2) answer their
        // requests here, recognised by their query (`?edd_action=…`, `?action=…`). Match
        // those before this line; what remains is the landing.
        return if *method == Method::GET || *method == Method::HEAD {
            Ok(Route::Landing)
        } else {
            Err(Error::MethodNotAllowed(GET))
        };
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut buf = [""; 5];
    let mut n = 0;
    for segment in path.split('/') {
        if n == buf.len() || segment.is_empty() {
            return Err(not_found());
        }
        buf[n] = segment;
        n += 1;
    }
    let allowed = |allowed: &'static [Method]| -> Result<(), Error> {
        if allowed.contains(method) {
            Ok(())
        } else {
            Err(Error::MethodNotAllowed(allowed))
        }
    };
    let m = if *method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let route = match &buf[..n] {
        ["healthz"] => {
            allowed(GET)?;
            Route::Health
        }
        ["metrics"] => {
            allowed(GET)?;
            Route::Metrics
        }
        ["openapi.json"] => {
            allowed(GET)?;
            Route::OpenApi
        }
        ["v1", "account"] => {
            allowed(GET)?;
            Route::GetAccount
        }
        ["v1", "account", "license"] => {
            allowed(GET_POST)?;
            if *m == Method::GET {
                Route::GetAccountLicense
            } else {
                Route::ApplyAccountLicense
            }
        }
        ["v1", "account", "tokens"] => {
            allowed(GET_POST)?;
            if *m == Method::GET {
                Route::ListAccountTokens
            } else {
                Route::CreateAccountToken
            }
        }
        ["v1", "account", "tokens", name] => {
            allowed(DELETE)?;
            Route::DeleteAccountToken {
                name: token_name(name)?,
            }
        }
        ["api", "v1", "me"] => {
            allowed(GET)?;
            Route::GetMe
        }
        ["api", "v1", "tokens"] => {
            allowed(GET_POST)?;
            if *m == Method::GET {
                Route::ListTokens
            } else {
                Route::CreateToken
            }
        }
        ["api", "v1", "tokens", name] => {
            allowed(DELETE)?;
            Route::DeleteToken {
                name: token_name(name)?,
            }
        }
        ["api", "v1", "tokens", "self", "rotate"] => {
            allowed(POST)?;
            Route::RotateSelf
        }
        ["_", "token"] => {
            allowed(GET_POST_PUT_DELETE)?;
            match *m {
                Method::GET => Route::ListOperatorTokens,
                Method::POST => Route::CreateOperatorToken,
                Method::PUT => Route::UpdateOperatorToken,
                _ => Route::DeleteOperatorToken,
            }
        }
        ["_", "token", "value"] => {
            allowed(GET)?;
            Route::GetOperatorTokenValue
        }
        ["_", "account"] => {
            allowed(GET_POST_DELETE)?;
            match *m {
                Method::GET => Route::ListAccounts,
                Method::POST => Route::CreateAccount,
                _ => Route::DeleteAccount,
            }
        }
        ["_", "license"] => {
            allowed(GET_POST_DELETE)?;
            match *m {
                Method::GET => Route::ListLicenses,
                Method::POST => Route::IssueLicense,
                _ => Route::RevokeLicense,
            }
        }
        _ => return Err(not_found()),
    };
    Ok(route)
}

/// A concrete path for a table row (`{name}` filled with `name`).
pub fn example_path(spec: &RouteSpec, name: &str) -> String {
    spec.path.replace("{name}", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(method: Method, path: &str, expected: Result<Route, u16>) {
        let got = route(&method, path).map_err(|err| err.status().as_u16());
        assert_eq!(got, expected, "{method} {path}");
    }

    fn name(text: &str) -> TokenName {
        TokenName::parse(text).unwrap()
    }

    #[test]
    fn every_row_of_the_table_routes_to_itself() {
        let mut names = std::collections::HashSet::new();
        for spec in ROUTES {
            assert!(
                names.insert(spec.name),
                "duplicate route name {}",
                spec.name
            );
            let path = example_path(spec, "sample-name");
            let route = route(&spec.method, &path)
                .unwrap_or_else(|e| panic!("{} {path}: {e}", spec.method));
            assert_eq!(route.spec(), *spec, "{} {path}", spec.method);
        }
    }

    #[test]
    fn path_parameters_are_typed() {
        check(
            Method::DELETE,
            "/v1/account/tokens/a-token.name",
            Ok(Route::DeleteAccountToken {
                name: name("a-token.name"),
            }),
        );
        check(
            Method::DELETE,
            "/v1/account/tokens/a%2Dtoken",
            Ok(Route::DeleteAccountToken {
                name: name("a-token"),
            }),
        );
        check(
            Method::DELETE,
            "/api/v1/tokens/self",
            Ok(Route::DeleteToken { name: name("self") }),
        );
        check(Method::HEAD, "/healthz", Ok(Route::Health));
        check(Method::GET, "/", Ok(Route::Landing));
        check(Method::POST, "/", Err(405));
        check(Method::GET, "//", Err(404));
        check(Method::GET, "/v1/account/", Ok(Route::GetAccount));
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for path in [
            "",
            "/v1",
            "/v2/account",
            "//v1/account",
            "/v1//account",
            "/v1/account/x",
            "/v1/account/tokens/a/b",
            "/a/b/c/d/e/f/g",
            "v1/account",
            "/_/tokens",
            "/api/v1/tokens/self/rotate/x",
        ] {
            check(Method::GET, path, Err(404));
        }
        check(Method::POST, "/v1/account", Err(405));
        check(Method::DELETE, "/v1/account/tokens", Err(405));
        check(Method::GET, "/v1/account/tokens/x", Err(405));
        check(Method::PUT, "/healthz", Err(405));
        check(Method::GET, "/api/v1/tokens/self/rotate", Err(405));
        check(Method::PATCH, "/_/token", Err(405));
        check(Method::PUT, "/_/account", Err(405));
    }

    #[test]
    fn malformed_token_names_in_paths_are_404() {
        check(Method::DELETE, "/v1/account/tokens/UPPER", Err(404));
        check(Method::DELETE, "/v1/account/tokens/%zz", Err(404));
        check(Method::DELETE, "/v1/account/tokens/%ff", Err(404));
        check(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", "a".repeat(65)),
            Err(404),
        );
    }

    #[test]
    fn method_not_allowed_lists_the_allowed_methods() {
        match route(&Method::PATCH, "/v1/account/tokens") {
            Err(Error::MethodNotAllowed(allowed)) => assert_eq!(allowed, GET_POST),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_health_is_public_and_query_writes_need_write() {
        for spec in ROUTES {
            match spec.family {
                Family::Operations => {
                    let want = if spec.name == "metrics" {
                        Need::Operator { write: false }
                    } else {
                        Need::Public
                    };
                    assert_eq!(spec.need, want, "{}", spec.name);
                }
                Family::Query => {
                    let reads =
                        spec.method == Method::GET && spec.name != "get_operator_token_value";
                    assert_eq!(spec.need, Need::Operator { write: !reads }, "{}", spec.name);
                }
                Family::WunderUpdates | Family::UpdaterCloud => {
                    assert!(
                        matches!(spec.need, Need::Scope(_) | Need::Account),
                        "{}",
                        spec.name
                    );
                }
            }
        }
    }
}
