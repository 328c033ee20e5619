//! `upkeep::http::auth::credential` and `authenticate` on arbitrary `x-api-key` and
//! `Authorization` header values, against an empty `TokenIndex`.
//!
//! Input: segments separated by `\n`; each segment is one selector byte and a value.
//! `selector % 6`: 0 `x-api-key: VALUE`, 1 `authorization: VALUE`,
//! 2 `authorization: Bearer VALUE`, 3 `x-api-key: <valid token>VALUE`,
//! 4 `authorization: Bearer <valid token>VALUE`, 5 `x-api-key: VALUE<valid token>`
//! (valid = well-formed with a correct checksum, kind from `selector / 6 % 3`). Values
//! that are not legal header bytes are skipped; at most 8 headers.
//!
//! Checks: no panic; a credential found is trimmed and taken from one of the values;
//! `authenticate` with no tokens known is always `Unauthenticated`.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use upkeep::Error;
use upkeep::http::auth::{authenticate, credential};
use upkeep::model::{Timestamp, TokenId};
use upkeep::store::TokenIndex;
use upkeep::token::{ServerKey, TokenKind, derive};

fn valid_token(selector: u8) -> String {
    let kind = match selector / 6 % 3 {
        0 => TokenKind::Account,
        1 => TokenKind::Operator,
        _ => TokenKind::PlanLicense,
    };
    derive(
        kind,
        &ServerKey::from_bytes([7; 32]),
        TokenId(u64::from(selector)),
    )
    .token
}

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    let mut values: Vec<Vec<u8>> = Vec::new();
    for segment in data.split(|&b| b == b'\n').take(8) {
        let Some((&selector, raw)) = segment.split_first() else {
            continue;
        };
        let (name, value) = match selector % 6 {
            0 => ("x-api-key", raw.to_vec()),
            1 => ("authorization", raw.to_vec()),
            2 => ("authorization", [b"Bearer ".as_slice(), raw].concat()),
            3 => (
                "x-api-key",
                [valid_token(selector).as_bytes(), raw].concat(),
            ),
            4 => (
                "authorization",
                [b"Bearer ", valid_token(selector).as_bytes(), raw].concat(),
            ),
            _ => (
                "x-api-key",
                [raw, valid_token(selector).as_bytes()].concat(),
            ),
        };
        let Ok(header) = HeaderValue::from_bytes(&value) else {
            continue;
        };
        headers.append(HeaderName::from_static(name), header);
        values.push(value);
    }

    match credential(&headers) {
        Ok(token) => {
            assert_eq!(token, token.trim(), "credential not trimmed: {token:?}");
            let found = token.is_empty()
                || values
                    .iter()
                    .any(|value| value.windows(token.len()).any(|w| w == token.as_bytes()));
            assert!(
                found,
                "credential {token:?} is in no header value: {headers:?}"
            );
        }
        Err(Error::Unauthenticated) => {}
        Err(other) => panic!("credential: unexpected error {other:?}"),
    }
    let index = TokenIndex::default();
    let now = Timestamp::from_secs(1_795_478_400);
    match authenticate(&headers, &index, now) {
        Err(Error::Unauthenticated) => {}
        Ok(caller) => panic!("authenticated against an empty index: {caller:?} from {headers:?}"),
        Err(other) => panic!("authenticate: unexpected error {other:?}"),
    }
});
