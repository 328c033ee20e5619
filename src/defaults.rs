//! Every default setting, declared once: `upkeep serve --help` shows these (the flags in
//! `cli` take their defaults from here), and `Settings::default()` — what tests and
//! benches start from — is built from the same values.

use std::time::Duration;

/// Where `upkeep serve` listens.
pub const LISTEN: &str = "127.0.0.1:8787";
/// `activationLimit` of an account with no plan license: 0 = unlimited (SPEC §1).
pub const ACTIVATION_LIMIT: u32 = 0;
/// New activations one download key may make in 24 h (SPEC §9).
pub const MAX_ACTIVATIONS_PER_DAY: u32 = 20;
/// Deactivations a key holder may make per key in 30 days (SPEC §9.2).
pub const MAX_DEACTIVATIONS_PER_MONTH: u32 = 10;
/// Largest JSON request body, bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest streamed upload, bytes (SPEC §7: 256 MiB).
pub const MAX_UPLOAD: u64 = 256 * 1024 * 1024;
/// How long a signed download link works (SPEC §8.1 item 3: WordPress may use a cached
/// link hours later).
pub const DOWNLOAD_URL_TTL: &str = "24h";
/// Unknown license keys one address may send per minute to the public update checks and
/// licensing routes before they answer `rate_limited` (SPEC §2: a separate, larger budget
/// than token failures — shared hosting puts many sites behind one address).
pub const PUBLIC_KEY_FAILURES_PER_MINUTE: u32 = 300;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one client address may hold.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// Time for a request's headers (and an idle keep-alive connection).
pub const HEADER_TIMEOUT: &str = "10s";
/// Time for a whole request body (between chunks, for streamed ones).
pub const BODY_TIMEOUT: &str = "30s";
/// Time in-flight requests get at shutdown.
pub const DRAIN_TIMEOUT: &str = "10s";
/// How often token uses are written to disk.
pub const PERSIST_USES_EVERY: &str = "60s";
/// How often report counts are added to the stored rollups: SPEC §10 says at least once a
/// minute, so it is not a flag (tests shorten it through `Settings`).
pub const REPORT_FLUSH_EVERY: &str = "60s";
/// Failed authentications per client address per minute.
pub const AUTH_FAILURES_PER_MINUTE: u32 = 20;
/// Free space kept in reserve on the data directory's filesystem, bytes.
pub const MIN_FREE_SPACE: u64 = crate::store::DEFAULT_RESERVE;
/// Tokens one account may hold.
pub const MAX_TOKENS_PER_ACCOUNT: usize = crate::store::DEFAULT_MAX_TOKENS_PER_ACCOUNT;

/// A default duration above as a [`Duration`].
///
/// # Panics
/// Never for the constants above (a unit test parses each).
pub fn duration(text: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|err| panic!("default `{text}`: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_duration_parses() {
        for text in [
            HEADER_TIMEOUT,
            BODY_TIMEOUT,
            DRAIN_TIMEOUT,
            PERSIST_USES_EVERY,
            REPORT_FLUSH_EVERY,
        ] {
            assert!(!duration(text).is_zero(), "{text}");
        }
        assert!(duration(REPORT_FLUSH_EVERY) <= std::time::Duration::from_secs(60));
    }
}
