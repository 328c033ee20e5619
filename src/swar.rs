//! Byte tests eight bytes at a time ("SIMD within a register"), for the scans the update
//! check runs on every request: JSON escaping (`update::json`), the log line's escape
//! check (`telemetry`), form decoding (`update::request`) and the cuts at `&` and `=` of
//! a query ([`find`]). Each test is exact for "does any byte of the word …"; which byte
//! is left to a byte-by-byte pass.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// `bytes` as little-endian words of eight, and the remainder (under eight bytes).
pub fn words(bytes: &[u8]) -> (impl Iterator<Item = u64> + '_, &[u8]) {
    let chunks = bytes.chunks_exact(8);
    let rest = chunks.remainder();
    let words = chunks.map(|chunk| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        u64::from_le_bytes(word)
    });
    (words, rest)
}

/// Whether any byte of `word` is `byte`.
pub fn has(word: u64, byte: u8) -> bool {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// Whether any byte of `word` is below `limit` (`limit` at most 0x80).
pub fn has_below(word: u64, limit: u8) -> bool {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS != 0
}

/// Whether any byte of `word` has its high bit set (is not ASCII).
pub fn has_high(word: u64) -> bool {
    word & HIGHS != 0
}

/// The index of the first `byte` in `bytes`: words without it skipped eight bytes at a
/// time (`slice::iter().position` goes byte by byte; `str::find` pays a searcher's
/// set-up, too much for a short query).
pub fn find(bytes: &[u8], byte: u8) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if has(u64::from_le_bytes(word), byte) {
            return chunk.iter().position(|&b| b == byte).map(|i| at + i);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_test_agrees_with_the_bytes() {
        // Every byte value at every place of a word of otherwise plain letters.
        for place in 0..8 {
            for b in 0..=u8::MAX {
                let mut bytes = *b"abcdefgh";
                bytes[place] = b;
                let word = u64::from_le_bytes(bytes);
                for probe in [b'%', b'+', b'"', b'\\', 0x7f, 0, b'a'] {
                    assert_eq!(has(word, probe), bytes.contains(&probe), "{b} at {place}");
                }
                for limit in [0x20, 0x80, 1] {
                    assert_eq!(
                        has_below(word, limit),
                        bytes.iter().any(|&x| x < limit),
                        "{b} at {place} below {limit}"
                    );
                }
                assert_eq!(has_high(word), !bytes.is_ascii(), "{b} at {place}");
            }
        }
        // `find` against `position`, at every length and place up to three words.
        for len in 0..=24 {
            for place in 0..=len {
                let mut bytes = vec![b'a'; len];
                if place < len {
                    bytes[place] = b'&';
                }
                if place + 3 < len {
                    bytes[place + 3] = b'&';
                }
                for probe in [b'&', b'a', b'='] {
                    assert_eq!(
                        find(&bytes, probe),
                        bytes.iter().position(|&b| b == probe),
                        "{probe} in {bytes:?}"
                    );
                }
            }
        }
        let (mut ws, rest) = words(b"0123456789");
        assert_eq!(ws.next(), Some(u64::from_le_bytes(*b"01234567")));
        assert_eq!(ws.next(), None);
        assert_eq!(rest, b"89");
    }
}
