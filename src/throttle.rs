//! Failed-authentication throttling per client address.
//!
//! Only failures are throttled (SPEC §2): a request is authenticated first, and a valid
//! credential works whatever its address did. Each address may fail `limit` times per
//! minute (a fixed window that opens at its first failure); past that, its further
//! failures get `429` with `Retry-After` instead of `401`, so guessing is slowed while
//! anyone else behind the same NAT or IPv6 /64 keeps working. IPv6 clients are grouped by
//! their /64 (one host usually owns a whole /64).
//!
//! Memory is bounded: at most `MAX_TRACKED` addresses. When the table is full even after
//! dropping ended windows, a failure from an address not in it is refused (429) rather than
//! let through unthrottled, and the warning about it is logged at most once a minute.
//!
//! Cost on the hot path: none; successful authentications never touch the throttle.

use crate::model::Timestamp;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses tracked at once; beyond it, finished windows are dropped first.
const MAX_TRACKED: usize = 100_000;
/// Warnings of one kind are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Timestamp,
    failures: u32,
}

pub struct Throttle {
    /// Failures allowed per address per window; 0 disables throttling.
    limit: u32,
    windows: Mutex<Windows>,
}

#[derive(Default)]
struct Windows {
    by_client: HashMap<IpAddr, Window>,
    /// When ended windows were last dropped (at most once a second).
    pruned: Option<Timestamp>,
    /// Rate limits for the two warnings.
    full: Warning,
    blocked: Warning,
}

/// A warning logged at most once per [`WARN_EVERY`], with the count of the ones held back.
#[derive(Default)]
struct Warning {
    last: Option<Timestamp>,
    suppressed: u64,
}

impl Warning {
    /// `Some(suppressed since the last one)` when a line may be logged now.
    fn due(&mut self, now: Timestamp) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now < last.saturating_add(WARN_EVERY))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The key an address is throttled under: itself for IPv4, its /64 for IPv6.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// `Retry-After` for a window ending at `ends`, rounded up to whole seconds.
fn retry_after(ends: Timestamp, now: Timestamp) -> Duration {
    Duration::from_millis(
        (ends.as_millis().saturating_sub(now.as_millis()))
            .div_ceil(1000)
            .max(1)
            * 1000,
    )
}

impl Throttle {
    pub fn new(limit: u32) -> Self {
        Throttle {
            limit,
            windows: Mutex::new(Windows::default()),
        }
    }

    fn ends(window: &Window) -> Timestamp {
        window.started.saturating_add(WINDOW)
    }

    /// Records a failed authentication from `addr`; `Some(retry_after)` when `addr` is now
    /// over its limit (answer 429), `None` when the failure is still allowed (answer 401).
    pub fn fail(&self, addr: IpAddr, now: Timestamp) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let client = key(addr);
        if windows.by_client.len() >= MAX_TRACKED && !windows.by_client.contains_key(&client) {
            let due = windows
                .pruned
                .is_none_or(|at| now >= at.saturating_add(Duration::from_secs(1)));
            if due {
                Self::prune(&mut windows, now);
            }
            if windows.by_client.len() >= MAX_TRACKED {
                // Fail closed: an untracked address cannot be let through unthrottled.
                if let Some(suppressed) = windows.full.due(now) {
                    tracing::warn!(
                        tracked = MAX_TRACKED,
                        suppressed,
                        "failed-authentication table is full; refusing failures from new addresses"
                    );
                }
                return Some(WINDOW);
            }
        }
        let window = windows.by_client.entry(client).or_insert(Window {
            started: now,
            failures: 0,
        });
        if Self::ends(window) <= now {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
        if window.failures <= self.limit {
            return None;
        }
        let (failures, ends) = (window.failures, Self::ends(window));
        if failures == self.limit.saturating_add(1)
            && let Some(suppressed) = windows.blocked.due(now)
        {
            tracing::warn!(client = %client, failures, suppressed, "throttling failed authentications");
        }
        Some(retry_after(ends, now))
    }

    /// Whether `addr` has used its whole budget of failures in the current window (its
    /// next attempt would be over the limit), without counting anything.
    pub fn blocked(&self, addr: IpAddr, now: Timestamp) -> bool {
        if self.limit == 0 {
            return false;
        }
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows
            .by_client
            .get(&key(addr))
            .is_some_and(|w| Self::ends(w) > now && w.failures >= self.limit)
    }

    /// Drops ended windows.
    fn prune(windows: &mut Windows, now: Timestamp) {
        windows
            .by_client
            .retain(|_, window| Self::ends(window) > now);
        windows.pruned = Some(now);
    }

    /// Forgets ended windows (call now and then).
    pub fn tidy(&self, now: Timestamp) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        Self::prune(&mut windows, now);
    }
}

/// The client address of a request: the peer, or with `trust_proxy` the **last** entry
/// of the last `X-Forwarded-For` header — the one the trusted proxy appended; everything
/// to its left came from the client and can be forged. A port (`203.0.113.7:5123`,
/// `[2001:db8::1]:443`) is stripped. If that entry is not an address, the peer (the proxy)
/// is used: skipping to an earlier entry would let the client choose.
pub fn client_addr(peer: IpAddr, headers: &http::HeaderMap, trust_proxy: bool) -> IpAddr {
    if !trust_proxy {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| forwarded_addr(last.trim()))
        .unwrap_or(peer)
}

/// An address as proxies write it in `X-Forwarded-For`, with or without a port.
fn forwarded_addr(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn refuses_failures_past_the_limit_until_the_window_ends() {
        let throttle = Throttle::new(3);
        let bad: IpAddr = "10.0.0.1".parse().unwrap();
        let good: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(
                throttle.fail(bad, at(100)),
                None,
                "the limit itself is allowed"
            );
        }
        assert_eq!(throttle.fail(bad, at(110)), Some(Duration::from_secs(50)));
        assert_eq!(
            throttle.fail(bad, Timestamp::from_millis(110_500)),
            Some(Duration::from_secs(50)),
            "rounded up to whole seconds"
        );
        assert_eq!(throttle.fail(good, at(110)), None);
        assert_eq!(throttle.fail(bad, at(160)), None, "a new window starts");
    }

    #[test]
    fn ipv6_is_throttled_per_64() {
        let throttle = Throttle::new(1);
        assert!(
            throttle
                .fail("2001:db8::1".parse().unwrap(), at(0))
                .is_none()
        );
        assert!(
            throttle
                .fail("2001:db8::2".parse().unwrap(), at(0))
                .is_some()
        );
        assert!(
            throttle
                .fail("2001:db8:0:1::1".parse().unwrap(), at(1))
                .is_none()
        );
    }

    #[test]
    fn a_full_table_refuses_new_addresses_instead_of_letting_them_through() {
        let throttle = Throttle::new(u32::MAX);
        for i in 0..MAX_TRACKED as u32 {
            assert_eq!(throttle.fail(IpAddr::V4(i.into()), at(0)), None);
        }
        // Full: a new address is refused (fail closed); a tracked one is still counted.
        let newcomer = IpAddr::V4((MAX_TRACKED as u32 + 1).into());
        assert_eq!(throttle.fail(newcomer, at(1)), Some(WINDOW));
        assert_eq!(throttle.fail(IpAddr::V4(7.into()), at(1)), None);
        assert_eq!(
            throttle.windows.lock().unwrap().by_client.len(),
            MAX_TRACKED
        );
        // Once their windows end, room comes back.
        assert_eq!(throttle.fail(newcomer, at(61)), None);
        assert_eq!(throttle.windows.lock().unwrap().by_client.len(), 1);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let mut warning = Warning::default();
        assert_eq!(warning.due(at(0)), Some(0));
        for _ in 0..1000 {
            assert_eq!(warning.due(at(30)), None);
        }
        assert_eq!(warning.due(at(60)), Some(1000));
        assert_eq!(warning.due(at(61)), None);
    }

    #[test]
    fn zero_disables() {
        let throttle = Throttle::new(0);
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..100 {
            assert_eq!(throttle.fail(addr, at(0)), None);
        }
    }

    #[test]
    fn forwarded_for_is_read_only_when_trusted_and_only_its_last_entry() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let mut headers = http::HeaderMap::new();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(client_addr(peer, &headers, false), peer);
        assert_eq!(client_addr(peer, &headers, true), ip("203.0.113.7"));
        // A proxy appending `ip:port`: the port is stripped, never skipped over.
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7:5123".parse().unwrap(),
        );
        assert_eq!(client_addr(peer, &headers, true), ip("203.0.113.7"));
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, [2001:db8::1]:443".parse().unwrap(),
        );
        assert_eq!(client_addr(peer, &headers, true), ip("2001:db8::1"));
        headers.insert("x-forwarded-for", "6.6.6.6, [2001:db8::2]".parse().unwrap());
        assert_eq!(client_addr(peer, &headers, true), ip("2001:db8::2"));
        // An unparseable last entry falls back to the peer, not to the client's choice.
        headers.insert("x-forwarded-for", "6.6.6.6, garbage".parse().unwrap());
        assert_eq!(client_addr(peer, &headers, true), peer);
        // Several header lines: the last line's last entry.
        headers.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        headers.append("x-forwarded-for", "198.51.100.9".parse().unwrap());
        assert_eq!(client_addr(peer, &headers, true), ip("198.51.100.9"));
    }
}
