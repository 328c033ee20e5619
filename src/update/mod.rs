//! The public update-check protocols' pure parts (SPEC §8): the dialect-neutral answer,
//! its renderers for each dialect, PHP serialization for EDD, signed download links and
//! request-parsing helpers. No HTTP, no store: the routes decide, these arrange.
//!
//! - [`answer`] — [`answer::Offer`] / [`answer::Answer`]: what the decision (§8.1) says,
//!   the licence codes (§9), "nothing to offer", `last_updated`'s format.
//! - [`render`] — one renderer per dialect (§8.2), written field by field into the body's
//!   bytes with [`json`] (serde_json's escaping); the runs of fields a version fixes are
//!   rendered once per cached version ([`render::Kept`]) and copied after; `golden.rs`
//!   (tests) pins every dialect's exact bytes (`tests/fixtures/dialects/rendered.txt`).
//! - [`php`] — `serialize()` for EDD's `sections`, `banners`, `icons`.
//! - [`link`] — `/dl/{token}/{filename}` tokens (§8.1 item 3, §8.4): signed, expiring.
//! - [`decide`] — the decision itself over cached catalogue views ([`decide::Views`]);
//!   the caller's site arrives normalized once, or as a machine ([`decide::Place`]).
//! - [`request`] — doubly encoded form values, EDD's `item_name` slugs, EDD batches.

pub mod answer;
pub mod counts;
pub mod decide;
pub mod json;
pub mod keys;
pub mod link;
pub mod php;
pub mod render;
pub mod request;

#[cfg(test)]
mod golden;

/// What the public routes share in a running server: the catalogue views, the keys
/// derived from `server.key` for links and license keys, the download-key checker (the
/// licensing service, `keys.rs`), and the counters reports will read.
pub struct Public {
    pub views: decide::Views,
    pub links: link::LinkKey,
    pub vault: crate::secrets::KeyVault,
    pub download_keys: Box<dyn decide::DownloadKeys + Send + Sync>,
    /// Shared with the event bus, which drops a deleted account's unflushed counts.
    pub counts: std::sync::Arc<counts::Counts>,
    /// Unknown license keys per client address (SPEC §2): past the budget, key checks
    /// answer `rate_limited` without looking the key up.
    pub key_failures: crate::throttle::Throttle,
}

impl std::fmt::Debug for Public {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Public").finish_non_exhaustive()
    }
}

impl Public {
    pub fn new(server_key: &crate::token::ServerKey) -> Self {
        Public {
            views: decide::Views::default(),
            links: link::LinkKey::new(server_key),
            vault: crate::secrets::KeyVault::new(server_key),
            download_keys: Box::new(keys::LicensingKeys),
            counts: std::sync::Arc::default(),
            key_failures: crate::throttle::Throttle::new(
                crate::defaults::PUBLIC_KEY_FAILURES_PER_MINUTE,
            ),
        }
    }
}
