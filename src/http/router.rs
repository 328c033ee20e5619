//! `route(method, path) -> Route`: path first, then method, so an unknown path is a 404
//! and a known path with the wrong method is a 405 with `Allow`. Path parameters become
//! typed values here; a parameter that cannot name anything (a token name breaking the
//! naming rule) is the same 404 as an unknown one.

use crate::auth::Need;
use crate::error::Error;
use crate::model::{Scope, TokenName};
use http::Method;

/// Every endpoint, with its typed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`
    Health,
    /// `GET /v1/account`
    GetAccount,
    /// `GET /v1/account/license`
    GetAccountLicense,
    /// `POST /v1/account/license`
    ApplyAccountLicense,
    /// `GET /v1/account/tokens`
    ListAccountTokens,
    /// `POST /v1/account/tokens`
    CreateAccountToken,
    /// `DELETE /v1/account/tokens/{name}`
    DeleteAccountToken { name: TokenName },
}

/// The API family a route belongs to; decides how bodies are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/v1/…` (WunderUpdates): JSON bodies.
    WunderUpdates,
    /// `/healthz`, `/metrics`.
    Operations,
}

impl Route {
    /// What the caller must present. Every route is listed; public ones explicitly.
    pub fn need(&self) -> Need {
        match self {
            Route::Health => Need::Public,
            Route::GetAccount => Need::Scope(Scope::ReadUser),
            Route::GetAccountLicense => Need::Scope(Scope::ReadLicenses),
            Route::ApplyAccountLicense => Need::Scope(Scope::ManageLicenses),
            Route::ListAccountTokens
            | Route::CreateAccountToken
            | Route::DeleteAccountToken { .. } => Need::Scope(Scope::Api),
        }
    }

    /// Stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::GetAccount => "get_account",
            Route::GetAccountLicense => "get_account_license",
            Route::ApplyAccountLicense => "apply_account_license",
            Route::ListAccountTokens => "list_account_tokens",
            Route::CreateAccountToken => "create_account_token",
            Route::DeleteAccountToken { .. } => "delete_account_token",
        }
    }

    pub fn family(&self) -> Family {
        match self {
            Route::Health => Family::Operations,
            Route::GetAccount
            | Route::GetAccountLicense
            | Route::ApplyAccountLicense
            | Route::ListAccountTokens
            | Route::CreateAccountToken
            | Route::DeleteAccountToken { .. } => Family::WunderUpdates,
        }
    }
}

const GET: &[Method] = &[Method::GET, Method::HEAD];
const GET_POST: &[Method] = &[Method::GET, Method::HEAD, Method::POST];
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

/// Finds the route for `method` and `path` (the path without its query string).
/// `HEAD` is accepted wherever `GET` is.
///
/// # Errors
/// `NotFound` for an unknown path, `MethodNotAllowed` (with the allowed methods) for a
/// known path and another method.
pub fn route(method: &Method, path: &str) -> Result<Route, Error> {
    let path = path.strip_prefix('/').ok_or_else(not_found)?;
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
    let is = |allowed: &'static [Method]| -> Result<(), Error> {
        if allowed.contains(method) {
            Ok(())
        } else {
            Err(Error::MethodNotAllowed(allowed))
        }
    };
    let get = *method == Method::GET || *method == Method::HEAD;
    let route = match &buf[..n] {
        ["healthz"] => {
            is(GET)?;
            Route::Health
        }
        ["v1", "account"] => {
            is(GET)?;
            Route::GetAccount
        }
        ["v1", "account", "license"] => {
            is(GET_POST)?;
            if get {
                Route::GetAccountLicense
            } else {
                Route::ApplyAccountLicense
            }
        }
        ["v1", "account", "tokens"] => {
            is(GET_POST)?;
            if get {
                Route::ListAccountTokens
            } else {
                Route::CreateAccountToken
            }
        }
        ["v1", "account", "tokens", name] => {
            is(DELETE)?;
            let name = percent_decode(name).ok_or_else(not_found)?;
            let name = TokenName::parse(&name)
                .map_err(|_| Error::NotFound(format!("no token named `{name}`")))?;
            Route::DeleteAccountToken { name }
        }
        _ => return Err(not_found()),
    };
    Ok(route)
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
    fn every_route_is_reachable() {
        check(Method::GET, "/healthz", Ok(Route::Health));
        check(Method::HEAD, "/healthz", Ok(Route::Health));
        check(Method::GET, "/v1/account", Ok(Route::GetAccount));
        check(Method::GET, "/v1/account/", Ok(Route::GetAccount));
        check(
            Method::GET,
            "/v1/account/license",
            Ok(Route::GetAccountLicense),
        );
        check(
            Method::POST,
            "/v1/account/license",
            Ok(Route::ApplyAccountLicense),
        );
        check(
            Method::GET,
            "/v1/account/tokens",
            Ok(Route::ListAccountTokens),
        );
        check(
            Method::POST,
            "/v1/account/tokens",
            Ok(Route::CreateAccountToken),
        );
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
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for path in [
            "",
            "/",
            "/v1",
            "/v2/account",
            "//v1/account",
            "/v1//account",
            "/v1/account/x",
            "/v1/account/tokens/a/b",
            "/a/b/c/d/e/f/g",
            "v1/account",
        ] {
            check(Method::GET, path, Err(404));
        }
        check(Method::POST, "/v1/account", Err(405));
        check(Method::DELETE, "/v1/account/tokens", Err(405));
        check(Method::GET, "/v1/account/tokens/x", Err(405));
        check(Method::PUT, "/healthz", Err(405));
    }

    #[test]
    fn malformed_token_names_in_paths_are_404() {
        check(Method::DELETE, "/v1/account/tokens/UPPER", Err(404));
        check(Method::DELETE, "/v1/account/tokens/%zz", Err(404));
        check(Method::DELETE, "/v1/account/tokens/%ff", Err(404));
        check(
            Method::DELETE,
            &format!("/v1/account/tokens/{}", "a".repeat(65)),
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
    fn every_route_needs_a_token_except_health() {
        let routes = [
            Route::GetAccount,
            Route::GetAccountLicense,
            Route::ApplyAccountLicense,
            Route::ListAccountTokens,
            Route::CreateAccountToken,
            Route::DeleteAccountToken { name: name("x") },
        ];
        for route in routes {
            assert_ne!(route.need(), Need::Public, "{route:?}");
        }
        assert_eq!(Route::Health.need(), Need::Public);
    }
}
