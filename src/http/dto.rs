//! Wire shapes (serde JSON), one section per API family. Stored records never reach the
//! wire directly: each view is built by hand from a record, so a storage change cannot
//! silently change the API (and a secret field cannot leak by being added to a record).

use crate::model::{Account, AccountPrefix, PlanLicense, Principal, Timestamp, Token};
use serde::{Deserialize, Deserializer, Serialize};

// ---- WunderUpdates `/v1/account…` ---------------------------------------------------------
// Times are Unix seconds; every body carries `"status": 200`.

fn secs(at: Option<Timestamp>) -> Option<u64> {
    at.map(Timestamp::as_secs)
}

/// `GET /v1/account`
#[derive(Debug, Serialize)]
pub struct AccountEnvelope {
    pub account: AccountView,
    pub status: u16,
    pub products: Products,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub prefix: String,
    pub activation_usage: u64,
    pub activation_limit: u32,
}

/// The account's plugin and theme slugs (SPEC §7.2), each list sorted.
#[derive(Debug, Default, Serialize)]
pub struct Products {
    pub themes: Vec<String>,
    pub plugins: Vec<String>,
}

impl AccountEnvelope {
    pub fn new(prefix: &AccountPrefix, activation_limit: u32, products: Products) -> Self {
        AccountEnvelope {
            account: AccountView {
                prefix: prefix.to_string(),
                activation_usage: 0,
                activation_limit,
            },
            status: 200,
            products,
        }
    }
}

/// `GET|POST /v1/account/license`
#[derive(Debug, Serialize)]
pub struct LicenseEnvelope {
    pub status: u16,
    pub license: Option<LicenseView>,
}

#[derive(Debug, Serialize)]
pub struct LicenseView {
    pub limit: u32,
    /// Unix seconds, or `null` for a license that never expires.
    pub expires: Option<u64>,
}

impl LicenseEnvelope {
    pub fn new(license: Option<&PlanLicense>) -> Self {
        LicenseEnvelope {
            status: 200,
            license: license.map(|license| LicenseView {
                limit: license.limit,
                expires: secs(license.expires_at),
            }),
        }
    }
}

/// `POST /v1/account/license` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyLicense {
    pub license: String,
}

/// `GET /v1/account/tokens` (`next_cursor`: see [`ListData`]).
#[derive(Debug, Serialize)]
pub struct TokensEnvelope {
    pub status: u16,
    pub tokens: Vec<AccountTokenView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountTokenView {
    pub name: String,
    /// Unix seconds, or `null` for a token that never expires.
    pub expires: Option<u64>,
    pub expired: bool,
    pub scopes: Vec<&'static str>,
    pub created: u64,
    pub last_used: Option<u64>,
}

impl AccountTokenView {
    pub fn new(token: &Token, now: Timestamp) -> Self {
        AccountTokenView {
            name: token.name.clone(),
            expires: secs(token.expires_at),
            expired: token.is_expired(now),
            scopes: token.scopes.iter().map(|scope| scope.as_str()).collect(),
            created: token.created_at.as_secs(),
            last_used: secs(token.last_used_at),
        }
    }
}

/// `POST /v1/account/tokens` body. `expires`: days 1–365, or -1 for never; omitted = 365.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountToken {
    pub name: String,
    #[serde(default)]
    pub expires: Option<i64>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// `POST /v1/account/tokens` response.
#[derive(Debug, Serialize)]
pub struct CreatedTokenEnvelope {
    pub status: u16,
    pub token: CreatedTokenView,
}

#[derive(Debug, Serialize)]
pub struct CreatedTokenView {
    pub token: String,
    pub expires: Option<u64>,
    pub name: String,
}

impl CreatedTokenEnvelope {
    pub fn new(token: &Token, secret: String) -> Self {
        CreatedTokenEnvelope {
            status: 200,
            token: CreatedTokenView {
                token: secret,
                expires: secs(token.expires_at),
                name: token.name.clone(),
            },
        }
    }
}

/// `DELETE /v1/account/tokens/{name}`: `{"status":200,"message":null}`.
#[derive(Debug, Serialize)]
pub struct DeletedEnvelope {
    pub status: u16,
    pub message: Option<String>,
}

// ---- UpdaterCloud `/api/v1/…` -------------------------------------------------------------
// Times are RFC 3339; lists and created objects are wrapped in `{"data": …}`.

/// `{"data": …}`
#[derive(Debug, Serialize)]
pub struct Data<T> {
    pub data: T,
}

/// A page of a list: `{"data": [...], "next_cursor": "…" | null}`. Pass `next_cursor`
/// back as `?cursor=` for the next page; `null` means this was the last.
#[derive(Debug, Serialize)]
pub struct ListData<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

fn rfc3339(at: Option<Timestamp>) -> Option<String> {
    at.map(Timestamp::to_rfc3339)
}

/// `GET /api/v1/me`
#[derive(Debug, Serialize)]
pub struct MeView {
    pub name: String,
    pub email: String,
    pub account: String,
}

/// A token on `/api/v1/tokens`; `token` (the secret) only in the response that creates it.
#[derive(Debug, Serialize)]
pub struct TokenView {
    pub name: String,
    pub scopes: Vec<&'static str>,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expired: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl TokenView {
    pub fn new(token: &Token, now: Timestamp, secret: Option<String>) -> Self {
        TokenView {
            name: token.name.clone(),
            scopes: token.scopes.iter().map(|scope| scope.as_str()).collect(),
            expires_at: rfc3339(token.expires_at),
            created_at: token.created_at.to_rfc3339(),
            last_used_at: rfc3339(token.last_used_at),
            expired: token.is_expired(now),
            token: secret,
        }
    }
}

/// `POST /api/v1/tokens` (JSON or form-encoded). `scopes`: a JSON array, a
/// comma-separated string, or repeated form fields. Expiry: `expires_in` (humantime,
/// `90d`) or `expires_at` (RFC 3339), or neither for a token that never expires.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    #[serde(deserialize_with = "string_or_list")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub expires_in: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /api/v1/tokens/self/rotate` (body optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateToken {
    /// How long the old secret keeps working (humantime, `1h`); none = stops at once.
    #[serde(default)]
    pub grace: Option<String>,
}

/// Accepts `["a","b"]` (each item one name, as sent) or `"a, b"` (split on commas, spaces
/// around a name dropped; an empty name between commas is an error).
fn string_or_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of scope names or a comma-separated string")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            split_names(text)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut names = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                names.push(item);
            }
            Ok(names)
        }
    }
    deserializer.deserialize_any(Visitor)
}

fn split_names<E: serde::de::Error>(text: &str) -> Result<Vec<String>, E> {
    text.split(',')
        .map(|name| match name.trim_matches(' ') {
            "" => Err(E::custom(
                "an empty scope name in the comma-separated list (a stray comma?)",
            )),
            name => Ok(name.to_owned()),
        })
        .collect()
}

// ---- Query `/_/…` ------------------------------------------------------------------------
// Times are Unix milliseconds; every response is `{"data": [ … ]}`.

fn millis(at: Option<Timestamp>) -> Option<u64> {
    at.map(Timestamp::as_millis)
}

/// `POST /_/token`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorToken {
    pub name: String,
    /// Unix ms; omitted or `null` = never.
    #[serde(default)]
    pub expiration_date: Option<u64>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub write: Option<bool>,
}

/// `PUT /_/token`: only the fields given change; `"expiration_date": null` = never.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOperatorToken {
    pub name: String,
    #[serde(default, deserialize_with = "present")]
    pub expiration_date: Option<Option<u64>>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub write: Option<bool>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `DELETE /_/token`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorTokenName {
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct OperatorTokenView {
    pub name: String,
    pub expiration_date: Option<u64>,
    pub active: bool,
    pub write: bool,
    pub expired: bool,
    pub created_at: u64,
    pub updated_at: u64,
    pub last_used_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl OperatorTokenView {
    pub fn new(token: &Token, now: Timestamp, secret: Option<String>) -> Self {
        let (active, write) = match token.principal {
            Principal::Operator { active, write } => (active, write),
            Principal::Account(_) => (false, false),
        };
        OperatorTokenView {
            name: token.name.clone(),
            expiration_date: millis(token.expires_at),
            active,
            write,
            expired: token.is_expired(now),
            created_at: token.created_at.as_millis(),
            updated_at: token.updated_at.as_millis(),
            last_used_at: millis(token.last_used_at),
            token: secret,
        }
    }
}

/// `GET /_/token/value`
#[derive(Debug, Serialize)]
pub struct TokenValue {
    pub token: String,
}

/// `POST /_/account`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub prefix: Option<String>,
}

/// `DELETE /_/account`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPrefixBody {
    pub prefix: String,
}

/// An account as operators see it (`/_/account`, `upkeep account … --json`).
#[derive(Debug, Serialize)]
pub struct AccountAdminView {
    pub prefix: String,
    pub name: String,
    pub email: String,
    pub activation_limit: u32,
    pub license_id: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
    /// The first token, only in the response that creates the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<FirstTokenView>,
}

#[derive(Debug, Serialize)]
pub struct FirstTokenView {
    pub name: String,
    pub scopes: Vec<&'static str>,
    pub token: String,
}

impl AccountAdminView {
    pub fn new(account: &Account, activation_limit: u32) -> Self {
        AccountAdminView {
            prefix: account.prefix.to_string(),
            name: account.name.clone(),
            email: account.email.clone(),
            activation_limit,
            license_id: account.license.map(|id| id.0),
            created_at: account.created_at.as_millis(),
            updated_at: account.updated_at.as_millis(),
            token: None,
        }
    }
}

/// `POST /_/license`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueLicense {
    pub limit: u32,
    #[serde(default)]
    pub expiration_date: Option<u64>,
}

/// `DELETE /_/license`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseIdBody {
    pub id: u64,
}

/// A plan license as operators see it; `key` only in the response that issues it.
#[derive(Debug, Serialize)]
pub struct LicenseAdminView {
    pub id: u64,
    pub limit: u32,
    pub expiration_date: Option<u64>,
    pub expired: bool,
    pub account: Option<String>,
    pub created_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl LicenseAdminView {
    pub fn new(license: &PlanLicense, now: Timestamp, key: Option<String>) -> Self {
        LicenseAdminView {
            id: license.id.0,
            limit: license.limit,
            expiration_date: millis(license.expires_at),
            expired: license.is_expired(now),
            account: license.account.map(|prefix| prefix.to_string()),
            created_at: license.created_at.as_millis(),
            key,
        }
    }
}

// ---- Operations -------------------------------------------------------------------------

/// `GET /healthz`
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    /// The package version, `0.1.0`.
    pub version: &'static str,
    /// The git revision it was built from (`unknown` outside a checkout).
    pub revision: &'static str,
}

/// `GET /` for API clients: what this server is and where to look next.
#[derive(Debug, Serialize)]
pub struct Landing {
    pub name: &'static str,
    pub version: &'static str,
    pub revision: &'static str,
    pub links: LandingLinks,
}

#[derive(Debug, Serialize)]
pub struct LandingLinks {
    pub health: &'static str,
    pub openapi: &'static str,
}
