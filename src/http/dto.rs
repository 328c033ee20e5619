//! Wire shapes (serde JSON), one section per API family. Stored records never reach the
//! wire directly: each view is built by hand from a record, so a storage change cannot
//! silently change the API (and a secret field cannot leak by being added to a record).

use crate::model::{Account, PlanLicense, Timestamp, Token};
use serde::{Deserialize, Serialize};

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

/// Products of the account; empty until releases exist.
#[derive(Debug, Default, Serialize)]
pub struct Products {
    pub themes: Vec<serde_json::Value>,
    pub plugins: Vec<serde_json::Value>,
}

impl AccountEnvelope {
    pub fn new(account: &Account, activation_limit: u32) -> Self {
        AccountEnvelope {
            account: AccountView {
                prefix: account.prefix.to_string(),
                activation_usage: 0,
                activation_limit,
            },
            status: 200,
            products: Products::default(),
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

/// `GET /v1/account/tokens`
#[derive(Debug, Serialize)]
pub struct TokensEnvelope {
    pub status: u16,
    pub tokens: Vec<AccountTokenView>,
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

// ---- Operations -------------------------------------------------------------------------

/// `GET /healthz`
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
}
