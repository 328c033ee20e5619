//! The API-facing error: one enum, one `status()`, one `code()`. `app` renders every error
//! through these, into SPEC §3's `{"status","error","message"}` envelope — but a bad
//! request ([`Error::is_bad_request`]) on a public dialect's route, which that dialect
//! answers in its own shape (`http::route::Row::refusal`).

use crate::model::DomainError;
use crate::store::StoreError;
use http::StatusCode;
use std::fmt;
use std::time::Duration;

#[derive(Debug)]
pub enum Error {
    /// Bad input. The message names the field and the reason, and is safe to show.
    InvalidRequest(String),
    /// A plan license key that is malformed, unknown or revoked.
    InvalidLicense,
    LicenseExpired,
    /// Missing, malformed, unknown, expired or inactive token: all look the same.
    Unauthenticated,
    /// A valid token that may not do this.
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed(crate::http::route::Methods),
    /// Duplicate or conflicting state.
    Conflict(String),
    LicenseInUse,
    /// The account holds the most tokens allowed (`--max-tokens-per-account`).
    TokenQuota(String),
    /// A refusal with its own stable code (`invalid_package`, `version_exists`, …).
    Coded {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    PayloadTooLarge {
        limit: usize,
    },
    /// The client did not send the whole body in time.
    RequestTimeout,
    TooManyRequests {
        retry_after: Duration,
    },
    /// The store cannot persist (disk full, I/O error). Reads may still work.
    StorageUnavailable(StoreError),
    /// A bug or corruption. Only the request id reaches the client; the source is logged.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Whether the request itself could not be taken: a body too large, too slow or
    /// unreadable, or input that does not parse (`InvalidRequest`, `RequestTimeout`,
    /// `PayloadTooLarge`; not the license refusals or a `Coded` 400, which name a domain
    /// rule). The public dialects answer these in their own shapes
    /// ([`crate::http::route::Row::refusal`]).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Error::InvalidRequest(_) | Error::PayloadTooLarge { .. } | Error::RequestTimeout
        )
    }

    /// `field: reason`, for validation failures.
    pub fn invalid(field: &str, reason: impl fmt::Display) -> Self {
        Error::InvalidRequest(format!("{field}: {reason}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidRequest(_) | Error::InvalidLicense | Error::LicenseExpired => {
                StatusCode::BAD_REQUEST
            }
            Error::Unauthenticated => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) | Error::LicenseInUse | Error::TokenQuota(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Coded { status, .. } => *status,
        }
    }

    /// The stable snake_case code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::InvalidLicense => "invalid_license",
            Error::LicenseExpired => "license_expired",
            Error::Unauthenticated => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::LicenseInUse => "license_in_use",
            Error::TokenQuota(_) => "token_quota",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::RequestTimeout => "request_timeout",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::StorageUnavailable(_) => "storage_unavailable",
            Error::Internal(_) => "internal",
            Error::Coded { code, .. } => code,
        }
    }

    /// The message for the client. Never carries internals.
    pub fn public_message(&self, request_id: &str) -> String {
        match self {
            Error::InvalidRequest(message)
            | Error::Forbidden(message)
            | Error::NotFound(message)
            | Error::Conflict(message)
            | Error::TokenQuota(message)
            | Error::Coded { message, .. } => message.clone(),
            Error::InvalidLicense => DomainError::LicenseUnknown.to_string(),
            Error::LicenseExpired => DomainError::LicenseExpired.to_string(),
            Error::LicenseInUse => DomainError::LicenseInUse.to_string(),
            Error::Unauthenticated => {
                "a valid token is required (x-api-key or Authorization: Bearer)".to_owned()
            }
            Error::MethodNotAllowed(allowed) => {
                format!("method not allowed; allowed: {}", allowed.header_value())
            }
            Error::PayloadTooLarge { limit } => {
                format!("request body is larger than the limit of {limit} bytes")
            }
            Error::RequestTimeout => "the request body did not arrive in time".to_owned(),
            Error::TooManyRequests { retry_after } => format!(
                "too many failed authentications; retry after {} s",
                retry_after.as_secs().max(1)
            ),
            Error::StorageUnavailable(_) => format!(
                "the store cannot persist changes right now; nothing was changed (request {request_id})"
            ),
            Error::Internal(_) => format!("internal error (request {request_id})"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The source follows in the error chain (`source()`), not repeated here.
            Error::StorageUnavailable(_) => f.write_str("storage unavailable"),
            Error::Internal(_) => f.write_str("internal error"),
            other => f.write_str(&other.public_message("-")),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::StorageUnavailable(source) => Some(source),
            Error::Internal(source) => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl From<DomainError> for Error {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::AccountExists(_) | DomainError::TokenNameTaken(_) => {
                Error::Conflict(err.to_string())
            }
            DomainError::AccountNotFound
            | DomainError::TokenNotFound(_)
            | DomainError::LicenseNotFound(_) => Error::NotFound(err.to_string()),
            DomainError::LicenseUnknown => Error::InvalidLicense,
            DomainError::LicenseExpired => Error::LicenseExpired,
            DomainError::LicenseInUse => Error::LicenseInUse,
            DomainError::GraceSecret => Error::Forbidden(err.to_string()),
            DomainError::CredentialGone => Error::Unauthenticated,
            DomainError::TokenQuota { .. } => Error::TokenQuota(err.to_string()),
            DomainError::Missing(what) => Error::NotFound(what),
            DomainError::Invalid(message) => Error::InvalidRequest(message),
            DomainError::Conflict { code, message } => Error::Coded {
                status: StatusCode::CONFLICT,
                code,
                message,
            },
        }
    }
}

impl Error {
    /// `400` with its own code: `field: reason`.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Error::Coded {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// `409` with its own code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Coded {
            status: StatusCode::CONFLICT,
            code,
            message: message.into(),
        }
    }
}

impl From<crate::model::VersionError> for Error {
    /// `400 invalid_version`, naming the rule (SPEC §7 *Version*).
    fn from(err: crate::model::VersionError) -> Self {
        Error::bad("invalid_version", format!("version: {err}"))
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Domain(domain) => domain.into(),
            StoreError::InvalidCursor(why) => Error::invalid("cursor", why),
            StoreError::Io(_) | StoreError::NoSpace { .. } | StoreError::Failed => {
                Error::StorageUnavailable(err)
            }
            StoreError::Corrupt { .. } | StoreError::Bug(_) => Error::Internal(Box::new(err)),
        }
    }
}

impl From<getrandom::Error> for Error {
    fn from(err: getrandom::Error) -> Self {
        Error::Internal(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_source() {
        let err = Error::Internal("secret path /var/lib/x".into());
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let message = err.public_message("req-1");
        assert!(!message.contains("/var/lib"));
        assert!(message.contains("req-1"));
    }

    #[test]
    fn domain_errors_map_to_their_statuses() {
        let cases = [
            (DomainError::TokenNameTaken("a".into()), 409, "conflict"),
            (DomainError::TokenNotFound("a".into()), 404, "not_found"),
            (DomainError::LicenseUnknown, 400, "invalid_license"),
            (DomainError::LicenseExpired, 400, "license_expired"),
            (DomainError::LicenseInUse, 409, "license_in_use"),
            (DomainError::GraceSecret, 403, "forbidden"),
            (DomainError::TokenQuota { limit: 3 }, 409, "token_quota"),
        ];
        for (domain, status, code) in cases {
            let err = Error::from(domain);
            assert_eq!((err.status().as_u16(), err.code()), (status, code));
        }
    }

    #[test]
    fn a_cursor_of_another_list_is_a_bad_request_naming_cursor() {
        let err = Error::from(StoreError::InvalidCursor("not an account".into()));
        assert_eq!(
            (err.status().as_u16(), err.code()),
            (400, "invalid_request")
        );
        assert!(err.public_message("req-1").starts_with("cursor"), "{err:?}");
    }
}
