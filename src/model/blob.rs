//! Content-addressed file content: a blob is named by the `blake3` hash of its bytes.

use std::fmt;

/// The `blake3` hash of a blob's content: its name on disk and in records.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct BlobHash([u8; 32]);

impl BlobHash {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        BlobHash(bytes)
    }

    /// The hash of `content` (for small content and tests; files are hashed as they stream).
    pub fn of(content: &[u8]) -> Self {
        BlobHash(*blake3::hash(content).as_bytes())
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Reads 64 hex digits (either case).
    ///
    /// # Errors
    /// Not 64 hex digits.
    pub fn parse_hex(text: &str) -> Result<Self, String> {
        blake3::Hash::from_hex(text)
            .map(|hash| BlobHash(*hash.as_bytes()))
            .map_err(|_| format!("`{text}` is not a blake3 hash (64 hex digits)"))
    }
}

impl From<blake3::Hash> for BlobHash {
    fn from(hash: blake3::Hash) -> Self {
        BlobHash(*hash.as_bytes())
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.to_hex())
    }
}

/// A stored blob: its hash and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRef {
    pub hash: BlobHash,
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let hash = BlobHash::of(b"hello");
        assert_eq!(hash.to_hex(), blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(BlobHash::parse_hex(&hash.to_hex()).unwrap(), hash);
        assert_eq!(
            BlobHash::parse_hex(&hash.to_hex().to_uppercase()).unwrap(),
            hash
        );
        assert!(BlobHash::parse_hex("abc").is_err());
        assert!(BlobHash::parse_hex(&"g".repeat(64)).is_err());
    }
}
