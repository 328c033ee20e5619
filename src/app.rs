//! `App`: the shared state of a running server (store, event bus, clock, settings,
//! throttle, metrics, request ids) and its [`Settings`]. The request pipeline that uses it
//! is `http::service` (`App::handle`); service contexts for reads and writes off the
//! runtime come from [`App::ctx`] and [`App::write`].

use crate::clock::Clock;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::model::Timestamp;
use crate::store::Store;
use crate::throttle::Throttle;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Tunables of a running server. Defaults live once, on the `serve` flags (`cli`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `activationLimit` of an account with no plan license.
    pub default_activation_limit: u32,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Largest streamed upload (routes whose body policy is `Stream`; 413 beyond).
    pub max_upload: u64,
    /// Most connections served at once; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// Most connections one client address holds at once (see `server`).
    pub max_connections_per_address: usize,
    /// Time a client has to send a request's headers (and to send the next one on an idle
    /// keep-alive connection).
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body.
    pub body_timeout: Duration,
    /// At shutdown, time given to in-flight requests before connections are cut.
    pub drain_timeout: Duration,
    /// How often token uses (`last_used_at`) are written to the store.
    pub persist_uses_every: Duration,
    /// How often the report counts are added to the stored rollups (SPEC §10: at least
    /// once a minute; not a flag).
    pub report_flush_every: Duration,
    /// Whether `GET /_/token/value` may read operator-token values back.
    pub token_values: bool,
    /// Writes are refused while the store's filesystem has less free space (bytes).
    pub min_free_space: u64,
    /// Failed authentications allowed per client address per minute (0: no limit).
    pub auth_failures_per_minute: u32,
    /// Read the client address from `X-Forwarded-For` (behind a reverse proxy).
    pub trust_proxy: bool,
    /// Most tokens one account may hold (`409 token_quota` beyond).
    pub max_tokens_per_account: usize,
    /// The public base URL links are built from (`--public-url`, no trailing `/`); `None`:
    /// from each request's Host.
    pub public_url: Option<String>,
    /// How long a signed download link works.
    pub download_url_ttl: Duration,
    /// New activations one download key may make in 24 h (0: no limit).
    pub max_activations_per_day: u32,
    /// Development sites (activated with `counts: false`).
    pub dev_site_patterns: crate::model::DevSitePatterns,
    /// Deactivations a key holder may make per key in 30 days on the public licensing
    /// routes (0: no limit).
    pub max_deactivations_per_month: u32,
}

impl Settings {
    /// The activation rules of customer licensing (SPEC §9) these settings make.
    pub fn activation_rules(&self) -> crate::service::licensing::ActivationRules {
        crate::service::licensing::ActivationRules {
            default_activation_limit: self.default_activation_limit,
            max_activations_per_day: self.max_activations_per_day,
            dev_sites: self.dev_site_patterns.clone(),
        }
    }
}

impl Default for Settings {
    /// The values tests and benches start from: the `serve` flags' defaults
    /// ([`crate::defaults`]), with read-back of operator-token values on and no proxy.
    fn default() -> Self {
        use crate::defaults::{self as d, duration};
        Settings {
            default_activation_limit: d::ACTIVATION_LIMIT,
            max_body_bytes: d::MAX_BODY_BYTES,
            max_upload: d::MAX_UPLOAD,
            max_connections: d::MAX_CONNECTIONS,
            max_connections_per_address: d::MAX_CONNECTIONS_PER_ADDRESS,
            header_timeout: duration(d::HEADER_TIMEOUT),
            body_timeout: duration(d::BODY_TIMEOUT),
            drain_timeout: duration(d::DRAIN_TIMEOUT),
            persist_uses_every: duration(d::PERSIST_USES_EVERY),
            report_flush_every: duration(d::REPORT_FLUSH_EVERY),
            token_values: true,
            min_free_space: d::MIN_FREE_SPACE,
            auth_failures_per_minute: d::AUTH_FAILURES_PER_MINUTE,
            trust_proxy: false,
            max_tokens_per_account: d::MAX_TOKENS_PER_ACCOUNT,
            max_activations_per_day: d::MAX_ACTIVATIONS_PER_DAY,
            dev_site_patterns: crate::model::DevSitePatterns::default(),
            max_deactivations_per_month: d::MAX_DEACTIVATIONS_PER_MONTH,
            public_url: None,
            download_url_ttl: duration(d::DOWNLOAD_URL_TTL),
        }
    }
}

/// Everything a request handler may use.
pub struct App {
    /// Shared with the blocking threads writes run on (`service::write`).
    pub store: std::sync::Arc<Store>,
    /// Domain events, published after their writes are durable (`service::Events`).
    pub events: std::sync::Arc<crate::service::Events>,
    pub clock: Clock,
    pub settings: Settings,
    pub throttle: Throttle,
    pub metrics: Metrics,
    pub(crate) request_ids: RequestIds,
    /// The public side (SPEC §8): catalogue views, link and key secrets, counters.
    pub public: crate::update::Public,
}

/// Request ids: a per-process random prefix and a counter, `3f2a9c1b-0000002a`.
///
/// Each thread takes ids in blocks of [`RequestIds::BLOCK`] from the shared counter, so
/// the hot path touches no cache line another core writes; ids stay unique, and
/// increase within a thread.
pub(crate) struct RequestIds {
    /// This process's boot number, in hex.
    boot: [u8; 8],
    next: AtomicU64,
    /// Tells this instance's blocks from another's (tests run many apps per thread).
    instance: u64,
}

/// Distinguishes [`RequestIds`] instances within the process.
static REQUEST_ID_INSTANCES: AtomicU64 = AtomicU64::new(1);

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One request's id, formatted on the stack: `{boot:08x}-{counter:08x}`.
#[derive(Clone, Copy)]
pub(crate) struct RequestId {
    bytes: [u8; 8 + 1 + 16],
    len: u8,
}

impl RequestId {
    fn new(boot: &[u8; 8], n: u64) -> Self {
        let mut bytes = [0u8; 25];
        bytes[..8].copy_from_slice(boot);
        bytes[8] = b'-';
        let digits = (16 - (n.leading_zeros() / 4) as usize).max(8);
        for i in 0..digits {
            bytes[9 + i] = HEX[((n >> (4 * (digits - 1 - i))) & 0xf) as usize];
        }
        RequestId {
            bytes,
            len: (9 + digits) as u8,
        }
    }

    /// `boot` in eight hex digits.
    fn boot_hex(boot: u32) -> [u8; 8] {
        let mut hex = [0u8; 8];
        for (i, byte) in hex.iter_mut().enumerate() {
            *byte = HEX[((boot >> (28 - 4 * i)) & 0xf) as usize];
        }
        hex
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII hex digits and '-' are ever written.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

thread_local! {
    /// This thread's block of request ids: whose, the next one, the end of the block.
    static REQUEST_ID_BLOCK: std::cell::Cell<(u64, u64, u64)> =
        const { std::cell::Cell::new((0, 0, 0)) };
}

impl RequestIds {
    fn new() -> Self {
        let mut bytes = [0u8; 4];
        // A clash of boot prefixes only makes two processes' ids look alike.
        let _ = getrandom::fill(&mut bytes);
        RequestIds {
            boot: RequestId::boot_hex(u32::from_le_bytes(bytes)),
            next: AtomicU64::new(1),
            instance: REQUEST_ID_INSTANCES.fetch_add(1, Ordering::Relaxed),
        }
    }

    const BLOCK: u64 = 256;

    pub(crate) fn next(&self) -> RequestId {
        let n = REQUEST_ID_BLOCK.with(|block| {
            let (owner, mut next, mut end) = block.get();
            if owner != self.instance || next == end {
                next = self.next.fetch_add(Self::BLOCK, Ordering::Relaxed);
                end = next + Self::BLOCK;
            }
            block.set((self.instance, next + 1, end));
            next
        });
        RequestId::new(&self.boot, n)
    }
}

impl App {
    pub fn new(store: Store, clock: Clock, settings: Settings) -> Self {
        store.set_reserve(settings.min_free_space);
        store.set_max_tokens_per_account(settings.max_tokens_per_account);
        let events = std::sync::Arc::<crate::service::Events>::default();
        crate::service::log_changes(&events);
        let public = crate::update::Public::new(store.server_key());
        let counts = public.counts.clone();
        events.subscribe(move |recorded| {
            if let crate::service::Event::AccountDeleted { account } = &recorded.event {
                counts.forget_account(account);
            }
        });
        App {
            public,
            store: std::sync::Arc::new(store),
            events,
            clock,
            throttle: Throttle::new(settings.auth_failures_per_minute),
            metrics: Metrics::default(),
            settings,
            request_ids: RequestIds::new(),
        }
    }

    /// A service context for `caller` (the CLI when `None`) at `now`, for reads.
    pub fn ctx(
        &self,
        caller: Option<&crate::http::auth::Caller>,
        now: Timestamp,
    ) -> crate::service::Ctx<'_> {
        crate::service::Ctx {
            store: &self.store,
            events: &self.events,
            actor: caller.map_or(crate::service::Actor::Cli, crate::http::auth::Caller::actor),
            now,
        }
    }

    /// A service context for a caller of the public routes (no token) at `now`.
    pub fn public_ctx(&self, now: Timestamp) -> crate::service::Ctx<'_> {
        crate::service::Ctx {
            store: &self.store,
            events: &self.events,
            actor: crate::service::Actor::Public,
            now,
        }
    }

    /// Runs a write off the runtime's workers as `caller` at `now` (`service::write`).
    ///
    /// # Errors
    /// Whatever the service refuses, or the store failing.
    pub async fn write<T, F>(
        &self,
        caller: &crate::http::auth::Caller,
        now: Timestamp,
        f: F,
    ) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&crate::service::Ctx<'c>) -> Result<crate::service::Done<'c, T>, Error>
            + Send
            + 'static,
    {
        crate::service::write(
            &self.store,
            &self.events,
            caller.actor(),
            Some(caller.token_hash),
            now,
            f,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_formatted_and_distinct_across_threads() {
        assert_eq!(
            RequestId::new(&RequestId::boot_hex(0x3f2a_9c1b), 0x2a).as_str(),
            "3f2a9c1b-0000002a"
        );
        assert_eq!(
            RequestId::new(&RequestId::boot_hex(1), u64::MAX).as_str(),
            "00000001-ffffffffffffffff"
        );
        let ids = RequestIds::new();
        let other = RequestIds::new();
        let mut seen = std::collections::HashSet::new();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        // Interleaved with another instance on the same thread.
                        (0..1000)
                            .map(|_| {
                                other.next();
                                ids.next().to_string()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                for id in handle.join().unwrap() {
                    assert!(seen.insert(id.clone()), "duplicate {id}");
                }
            }
        });
        assert_eq!(seen.len(), 4000);
    }
}
