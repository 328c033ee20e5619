//! The public update-check protocols' pure parts (SPEC §8): the dialect-neutral answer,
//! its renderers for each dialect, PHP serialization for EDD, signed download links and
//! request-parsing helpers. No HTTP, no store: the routes decide, these arrange.
//!
//! - [`answer`] — [`answer::Offer`] / [`answer::Answer`]: what the decision (§8.1) says,
//!   the licence codes (§9), "nothing to offer", `last_updated`'s format.
//! - [`render`] — one `serde_json` renderer per dialect (§8.2).
//! - [`php`] — `serialize()` for EDD's `sections`, `banners`, `icons`.
//! - [`link`] — `/dl/{token}/{filename}` tokens (§8.1 item 3, §8.4): signed, expiring.
//! - [`request`] — doubly encoded form values, EDD's `item_name` slugs, EDD batches.

pub mod answer;
pub mod link;
pub mod php;
pub mod render;
pub mod request;
