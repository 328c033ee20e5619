//! base64url without padding (RFC 4648 §5): download-link tokens (`update::link`) and
//! list cursors (`store::page`). Decoding is strict (no padding, no stray bits), so every
//! token and cursor has exactly one spelling.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Every 12-bit value's two characters (8 KiB, built at compile time): a group of six
/// bytes is four lookups, not eight.
static PAIRS: [[u8; 2]; 4096] = {
    let mut pairs = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        pairs[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    pairs
};

/// The eight characters of the 48 bits of `n` (its low six bytes).
fn push_eight(chars: &mut [u8], n: u64) {
    for (i, pair) in chars.chunks_exact_mut(2).enumerate() {
        pair.copy_from_slice(&PAIRS[(n >> (36 - 12 * i)) as usize & 4095]);
    }
}

/// The encoding of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    encode_into(bytes, &mut out);
    out
}

/// Appends the encoding of `bytes` to `out`: six bytes at a time (one `u64` load, eight
/// characters in four [`PAIRS`] lookups) into a stack block of 256 characters, pushed as
/// one string. (A download link's token is about 90 bytes: one block, one UTF-8 check.)
pub fn encode_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    let mut block = [0u8; 256];
    for group in bytes.chunks(192) {
        let mut len = 0;
        // Six bytes at a time, read as eight (one load) while eight are left; the
        // last six or fewer below.
        let mut at = 0;
        while let Some(eight) = group.get(at..at + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(eight);
            push_eight(&mut block[len..len + 8], u64::from_be_bytes(word) >> 16);
            len += 8;
            at += 6;
        }
        let mut sixes = group[at..].chunks_exact(6);
        for six in &mut sixes {
            let n = u64::from_be_bytes([0, 0, six[0], six[1], six[2], six[3], six[4], six[5]]);
            push_eight(&mut block[len..len + 8], n);
            len += 8;
        }
        // Up to five bytes left: a whole triple (four characters), then one or two
        // bytes (two or three).
        let rest = sixes.remainder();
        let mut n = 0u64;
        for &b in rest {
            n = n << 8 | u64::from(b);
        }
        let chars = match rest.len() {
            0 => 0,
            1 => 2,
            2 => 3,
            3 => 4,
            4 => 6,
            _ => 7,
        };
        // The bits of `rest`, left-aligned to whole sextets.
        let bits = rest.len() * 8;
        let n = n << (chars * 6 - bits);
        for (i, c) in block[len..len + chars].iter_mut().enumerate() {
            *c = ALPHABET[(n >> (6 * (chars - 1 - i))) as usize & 63];
        }
        len += chars;
        // The alphabet is ASCII: every block is UTF-8.
        if let Ok(text) = std::str::from_utf8(&block[..len]) {
            out.push_str(text);
        }
    }
}

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    }))
}

/// The bytes of `text`; `None` for a character outside the alphabet, padding, an
/// impossible length, or stray bits in the last character.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let sextets: Vec<u32> = text.bytes().map(sextet).collect::<Option<_>>()?;
    if sextets.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, s)| n | s << (18 - 6 * i));
        let bytes = chunk.len() - 1;
        if bytes < 3 && n & ((1 << (8 * (3 - bytes))) - 1) != 0 {
            return None;
        }
        for i in 0..bytes {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super as base64url;

    #[test]
    fn base64url_is_strict() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\x00"] {
            assert_eq!(base64url::decode(&base64url::encode(bytes)).unwrap(), bytes);
        }
        // RFC 4648 §10's vectors, and every length across the 192-byte blocks.
        assert_eq!(base64url::encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url::encode(b"fooba"), "Zm9vYmE");
        assert_eq!(base64url::encode(&[0xfb, 0xff]), "-_8");
        let long: Vec<u8> = (0..420u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..=long.len() {
            let text = base64url::encode(&long[..len]);
            assert_eq!(text.len(), (len * 4).div_ceil(3));
            assert_eq!(base64url::decode(&text).unwrap(), &long[..len]);
        }
        // "Zg" is "f"; "Zh" is "f" with a stray bit set.
        assert_eq!(base64url::decode("Zg").unwrap(), b"f");
        assert_eq!(base64url::decode("Zh"), None);
        assert_eq!(base64url::decode("Zg=="), None);
        assert_eq!(base64url::decode("Z"), None);
    }

    #[test]
    fn padding_and_characters_outside_the_alphabet_are_refused() {
        for bad in ["Zm9vYg==", "Z", "Zm9v!", "Zh", "a b", "Zm9v+", "Zm9v/"] {
            assert_eq!(base64url::decode(bad), None, "{bad}");
        }
    }
}
