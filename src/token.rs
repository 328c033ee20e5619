//! The `upk_…` token format, pure: secret generation, parsing (the checksum checked before
//! any store access), the server key and the values derived from it. Knows nothing of
//! HTTP, the store or errors beyond its own [`Malformed`].
//!
//! Token format (documented for secret scanners):
//!
//! ```text
//! upk_(at|ot|pl)_[0-9A-Za-z]{38}
//! ```
//!
//! `at` = account token, `ot` = operator token, `pl` = plan license key. The first 32
//! characters after the kind are the secret (OS RNG, base62); the last 6 are a checksum:
//! the first 8 bytes of `blake3(everything before it)` as a little-endian integer, modulo
//! 62⁶, in base62. A typo or truncation is therefore rejected without touching the store.

use crate::model::{TokenHash, TokenId};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SECRET_LEN: usize = 32;
const CHECK_LEN: usize = 6;
const HEAD_LEN: usize = "upk_at_".len();
/// Length of every token: `upk_` + kind + `_` + secret + check.
pub const TOKEN_LEN: usize = HEAD_LEN + SECRET_LEN + CHECK_LEN;

/// What a token string is for; the two letters after `upk_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `upk_at_…`: an account token.
    Account,
    /// `upk_ot_…`: an operator token.
    Operator,
    /// `upk_pl_…`: a plan license key.
    PlanLicense,
}

impl TokenKind {
    const fn tag(self) -> &'static str {
        match self {
            TokenKind::Account => "at",
            TokenKind::Operator => "ot",
            TokenKind::PlanLicense => "pl",
        }
    }

    fn from_tag(tag: &[u8]) -> Option<Self> {
        match tag {
            b"at" => Some(TokenKind::Account),
            b"ot" => Some(TokenKind::Operator),
            b"pl" => Some(TokenKind::PlanLicense),
            _ => None,
        }
    }
}

/// A freshly made token: the string to show once, and the hash to store.
pub struct NewSecret {
    pub token: String,
    pub hash: TokenHash,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Makes a new token of `kind` from 32 base62 characters of the OS RNG.
///
/// # Errors
/// The OS RNG failed (essentially never on Linux).
pub fn generate(kind: TokenKind) -> Result<NewSecret, getrandom::Error> {
    use rand_core::TryRng;
    let mut secret = [0u8; SECRET_LEN];
    let mut filled = 0;
    let mut pool = [0u8; 64];
    while filled < SECRET_LEN {
        getrandom::SysRng.try_fill_bytes(&mut pool)?;
        // Rejection sampling: 248 = 4 × 62, so `byte % 62` is uniform below it.
        for byte in pool {
            if byte < 248 && filled < SECRET_LEN {
                secret[filled] = ALPHABET[usize::from(byte % 62)];
                filled += 1;
            }
        }
    }
    Ok(assemble(kind, &secret))
}

/// The 32-byte server key (`<data>/server.key`): operator-token values are derived from
/// it and the token's id, so they can be shown again (`GET /_/token/value`) while the
/// database alone (a backup, a stolen disk image of the store) reveals none.
#[derive(Clone)]
pub struct ServerKey([u8; 32]);

impl ServerKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ServerKey(bytes)
    }

    /// A fresh key from the OS RNG.
    ///
    /// # Errors
    /// The OS RNG failed.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(ServerKey(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(…)")
    }
}

/// The token of `kind` derived from `key` and `id`: the same inputs always give the same
/// token. Secret characters come from blake3's keyed XOF, rejection-sampled into base62.
pub fn derive(kind: TokenKind, key: &ServerKey, id: TokenId) -> NewSecret {
    let mut hasher = blake3::Hasher::new_keyed(key.as_bytes());
    hasher.update(b"upkeep token value v1\0");
    hasher.update(kind.tag().as_bytes());
    hasher.update(&id.0.to_be_bytes());
    let mut xof = hasher.finalize_xof();
    let mut secret = [0u8; SECRET_LEN];
    let mut filled = 0;
    let mut pool = [0u8; 64];
    while filled < SECRET_LEN {
        xof.fill(&mut pool);
        for byte in pool {
            if byte < 248 && filled < SECRET_LEN {
                secret[filled] = ALPHABET[usize::from(byte % 62)];
                filled += 1;
            }
        }
    }
    assemble(kind, &secret)
}

/// A random account prefix: 8 characters of `[a-z0-9]` from the OS RNG.
///
/// # Errors
/// The OS RNG failed.
pub fn random_prefix() -> Result<crate::model::AccountPrefix, getrandom::Error> {
    use rand_core::TryRng;
    const LOWER: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(8);
    let mut pool = [0u8; 32];
    while out.len() < 8 {
        getrandom::SysRng.try_fill_bytes(&mut pool)?;
        // 252 = 7 × 36: uniform below it.
        for byte in pool {
            if byte < 252 && out.len() < 8 {
                out.push(char::from(LOWER[usize::from(byte % 36)]));
            }
        }
    }
    Ok(crate::model::AccountPrefix::parse(&out)
        .unwrap_or_else(|_| unreachable!("8 chars of [a-z0-9]")))
}

/// Builds the token string for `kind` around a 32-character base62 `secret`.
fn assemble(kind: TokenKind, secret: &[u8; SECRET_LEN]) -> NewSecret {
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str("upk_");
    token.push_str(kind.tag());
    token.push('_');
    // The secret is ASCII base62 by construction.
    token.extend(secret.iter().map(|&b| char::from(b)));
    let check = checksum(token.as_bytes());
    token.extend(check.iter().map(|&b| char::from(b)));
    let hash = TokenHash::of(&token);
    NewSecret { token, hash }
}

fn checksum(head: &[u8]) -> [u8; CHECK_LEN] {
    let digest = blake3::hash(head);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    let mut n = u64::from_le_bytes(first) % 62u64.pow(CHECK_LEN as u32);
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Why a string is not a well-formed token. Never shown to clients (they all get the same
/// 401); used by tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Length,
    Prefix,
    Kind,
    Charset,
    Checksum,
}

/// Checks a token's shape and checksum and returns its kind and hash.
/// Allocates nothing; touches no store.
///
/// # Errors
/// Which rule the string breaks.
pub fn parse(token: &str) -> Result<(TokenKind, TokenHash), Malformed> {
    let bytes = token.as_bytes();
    if bytes.len() != TOKEN_LEN {
        return Err(Malformed::Length);
    }
    if &bytes[..4] != b"upk_" || bytes[6] != b'_' {
        return Err(Malformed::Prefix);
    }
    let kind = TokenKind::from_tag(&bytes[4..6]).ok_or(Malformed::Kind)?;
    if !bytes[HEAD_LEN..].iter().all(u8::is_ascii_alphanumeric) {
        return Err(Malformed::Charset);
    }
    let (head, check) = bytes.split_at(TOKEN_LEN - CHECK_LEN);
    // Not secret-dependent in a useful way: the checksum is public information about the
    // string the client itself sent.
    if checksum(head) != check {
        return Err(Malformed::Checksum);
    }
    Ok((kind, TokenHash::from_bytes(*blake3::hash(bytes).as_bytes())))
}

/// Parses a token that must be of `kind`.
///
/// # Errors
/// The string is malformed or of another kind.
pub fn parse_kind(token: &str, kind: TokenKind) -> Result<TokenHash, Malformed> {
    match parse(token)? {
        (found, hash) if found == kind => Ok(hash),
        _ => Err(Malformed::Kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_match_the_documented_shape() {
        for kind in [
            TokenKind::Account,
            TokenKind::Operator,
            TokenKind::PlanLicense,
        ] {
            let secret = generate(kind).unwrap();
            assert_eq!(secret.token.len(), TOKEN_LEN);
            assert!(secret.token.starts_with(&format!("upk_{}_", kind.tag())));
            assert!(
                secret.token[HEAD_LEN..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric())
            );
            assert_eq!(parse(&secret.token), Ok((kind, secret.hash)));
        }
    }

    #[test]
    fn derived_values_are_stable_per_key_and_id() {
        let key = ServerKey::from_bytes([7; 32]);
        let a = derive(TokenKind::Operator, &key, TokenId(1));
        assert_eq!(a.token, derive(TokenKind::Operator, &key, TokenId(1)).token);
        assert_eq!(parse(&a.token), Ok((TokenKind::Operator, a.hash)));
        assert_ne!(a.token, derive(TokenKind::Operator, &key, TokenId(2)).token);
        let other_key = ServerKey::from_bytes([8; 32]);
        assert_ne!(
            a.token,
            derive(TokenKind::Operator, &other_key, TokenId(1)).token
        );
        assert!(!format!("{key:?}").contains('7'));
    }

    #[test]
    fn secrets_differ() {
        let a = generate(TokenKind::Account).unwrap();
        let b = generate(TokenKind::Account).unwrap();
        assert_ne!(a.token, b.token);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let token = generate(TokenKind::Account).unwrap().token;
        for position in HEAD_LEN..TOKEN_LEN {
            let mut bytes = token.clone().into_bytes();
            bytes[position] = if bytes[position] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(
                parse(&changed).map(|_| ()),
                Err(Malformed::Checksum),
                "{position}"
            );
        }
    }

    #[test]
    fn malformed_shapes_are_named() {
        let token = generate(TokenKind::Account).unwrap().token;
        assert_eq!(
            parse(&token[..TOKEN_LEN - 1]).map(|_| ()),
            Err(Malformed::Length)
        );
        assert_eq!(
            parse(&token.replacen("upk_", "upq_", 1)).map(|_| ()),
            Err(Malformed::Prefix)
        );
        assert_eq!(
            parse(&token.replacen("_at_", "_xx_", 1)).map(|_| ()),
            Err(Malformed::Kind)
        );
        let mut bytes = token.into_bytes();
        bytes[10] = b'-';
        assert_eq!(
            parse(&String::from_utf8(bytes).unwrap()).map(|_| ()),
            Err(Malformed::Charset)
        );
        assert_eq!(parse("").map(|_| ()), Err(Malformed::Length));
    }

    #[test]
    fn a_known_secret_has_a_stable_checksum() {
        // The format is a protocol: this string must stay valid forever.
        let fixed = assemble(TokenKind::Account, b"0123456789abcdefghijABCDEFGHIJxy");
        assert_eq!(
            &fixed.token[..HEAD_LEN + SECRET_LEN],
            "upk_at_0123456789abcdefghijABCDEFGHIJxy"
        );
        assert_eq!(parse(&fixed.token).unwrap().1, TokenHash::of(&fixed.token));
        assert_eq!(fixed.token, FIXED_TOKEN);
    }
    const FIXED_TOKEN: &str = "upk_at_0123456789abcdefghijABCDEFGHIJxylE1nJR";
}
