//! `upkeep::token::parse` on arbitrary strings, and on valid tokens with one character
//! changed.
//!
//! Checks: no panic; `Ok` only for a string of `TOKEN_LEN` bytes that starts with
//! `upk_<kind>_`, whose hash is `TokenHash::of` the string, and which parses again to the
//! same result (also through `parse_kind`); errors are deterministic. From inputs of 43+
//! bytes a valid token is derived (`auth::derive`: 32-byte key, 8-byte id, kind): it must
//! parse to its own kind and hash, and changing one character of its checksum must make it
//! fail.

#![no_main]

use libfuzzer_sys::fuzz_target;
use upkeep::model::{TokenHash, TokenId};
use upkeep::token::{ServerKey, TOKEN_LEN, TokenKind, derive, parse, parse_kind};

/// Length of the checksum at the end of every token.
const CHECK_LEN: usize = 6;

fn tag(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Account => "at",
        TokenKind::Operator => "ot",
        TokenKind::PlanLicense => "pl",
    }
}

fn check(text: &str) {
    let first = parse(text);
    assert_eq!(parse(text), first, "parse is not deterministic on {text:?}");
    if let Ok((kind, hash)) = first {
        assert_eq!(text.len(), TOKEN_LEN, "accepted {text:?}");
        assert!(text.starts_with(&format!("upk_{}_", tag(kind))), "{text:?}");
        assert!(
            text[7..].bytes().all(|b| b.is_ascii_alphanumeric()),
            "{text:?}"
        );
        assert_eq!(hash, TokenHash::of(text), "{text:?}");
        assert_eq!(parse_kind(text, kind), Ok(hash), "{text:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    check(&String::from_utf8_lossy(data));

    if data.len() < 43 {
        return;
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&data[..32]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&data[32..40]);
    let kind = match data[40] % 3 {
        0 => TokenKind::Account,
        1 => TokenKind::Operator,
        _ => TokenKind::PlanLicense,
    };
    let secret = derive(
        kind,
        &ServerKey::from_bytes(key),
        TokenId(u64::from_le_bytes(id)),
    );
    let token = secret.token.clone();
    assert_eq!(token.len(), TOKEN_LEN);
    assert_eq!(parse(&token), Ok((kind, secret.hash)), "{token:?}");
    check(&token);

    // One character replaced by any char (possibly multi-byte).
    let at = usize::from(data[41]) % TOKEN_LEN;
    let replacement =
        char::from_u32(u32::from(data[42]) | (u32::from(data.get(43).copied().unwrap_or(0)) << 8))
            .unwrap_or('\u{fffd}');
    let mut mutated: String = token.chars().take(at).collect();
    mutated.push(replacement);
    mutated.extend(token.chars().skip(at + 1));
    check(&mutated);
    if mutated != token && at >= TOKEN_LEN - CHECK_LEN {
        assert!(
            parse(&mutated).is_err(),
            "a changed checksum still parses: {mutated:?}"
        );
    }
    // Truncated and extended tokens are never accepted.
    assert!(parse(&token[..TOKEN_LEN - 1]).is_err());
    assert!(parse(&format!("{token}{replacement}")).is_err());
});
