//! Failed-authentication throttling per client address.
//!
//! Each address may fail authentication `limit` times per minute (a fixed window that
//! opens at its first failure). Past that, every request from it that needs a token gets
//! `429` with `Retry-After` until the window ends, before its token is even looked at, so
//! guessing is really slowed. Other addresses are unaffected. IPv6 clients are grouped by
//! their /64 (one host usually owns a whole /64).
//!
//! Cost on the hot path: while no address is blocked, checking is one atomic load.

use crate::model::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses tracked at once; beyond it, finished windows are dropped first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Timestamp,
    failures: u32,
}

pub struct Throttle {
    /// Failures allowed per address per window; 0 disables throttling.
    limit: u32,
    windows: Mutex<Windows>,
    /// Addresses over their limit in a window that has not ended (may overcount until the
    /// next prune; never undercounts).
    blocked: AtomicUsize,
}

#[derive(Default)]
struct Windows {
    by_client: HashMap<IpAddr, Window>,
    /// When ended windows were last dropped (at most once a second).
    pruned: Option<Timestamp>,
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

impl Throttle {
    pub fn new(limit: u32) -> Self {
        Throttle {
            limit,
            windows: Mutex::new(Windows::default()),
            blocked: AtomicUsize::new(0),
        }
    }

    fn ends(window: &Window) -> Timestamp {
        window.started.saturating_add(WINDOW)
    }

    /// `Some(retry_after)` when `addr` is blocked at `now`.
    pub fn check(&self, addr: IpAddr, now: Timestamp) -> Option<Duration> {
        if self.blocked.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.by_client.get(&key(addr))?;
        let ends = Self::ends(window);
        // Rounded up to whole seconds by the Retry-After header.
        (window.failures > self.limit && ends > now).then(|| {
            Duration::from_millis((ends.as_millis() - now.as_millis()).div_ceil(1000) * 1000)
        })
    }

    /// Records a failed authentication from `addr`. Memory is bounded: past
    /// `MAX_TRACKED` clients with open windows, new clients are not tracked (logged).
    pub fn fail(&self, addr: IpAddr, now: Timestamp) {
        if self.limit == 0 {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let due = windows
            .pruned
            .is_none_or(|at| now >= at.saturating_add(Duration::from_secs(1)));
        if due
            && (windows.by_client.len() >= MAX_TRACKED || self.blocked.load(Ordering::Relaxed) > 0)
        {
            self.prune(&mut windows, now);
        }
        let client = key(addr);
        if windows.by_client.len() >= MAX_TRACKED && !windows.by_client.contains_key(&client) {
            tracing::warn!(
                tracked = MAX_TRACKED,
                "failed-authentication tracking is full; not tracking a new client"
            );
            return;
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
        if window.failures == self.limit.saturating_add(1) {
            self.blocked.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(client = %client, failures = window.failures, "throttling failed authentications");
        }
    }

    /// Drops ended windows and recounts the blocked ones.
    fn prune(&self, windows: &mut Windows, now: Timestamp) {
        windows
            .by_client
            .retain(|_, window| Self::ends(window) > now);
        let blocked = windows
            .by_client
            .values()
            .filter(|w| w.failures > self.limit)
            .count();
        self.blocked.store(blocked, Ordering::Relaxed);
        windows.pruned = Some(now);
    }

    /// Forgets ended windows (call now and then).
    pub fn tidy(&self, now: Timestamp) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        self.prune(&mut windows, now);
    }
}

/// The client address of a request: the peer, or with `trust_proxy` the rightmost address
/// of `X-Forwarded-For` (the one the trusted proxy appended; those to its left come from
/// the client and can be forged).
pub fn client_addr(peer: IpAddr, headers: &http::HeaderMap, trust_proxy: bool) -> IpAddr {
    if !trust_proxy {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .next_back()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn blocks_past_the_limit_until_the_window_ends() {
        let throttle = Throttle::new(3);
        let bad: IpAddr = "10.0.0.1".parse().unwrap();
        let good: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            throttle.fail(bad, at(100));
        }
        assert_eq!(
            throttle.check(bad, at(100)),
            None,
            "the limit itself is allowed"
        );
        throttle.fail(bad, at(110));
        assert_eq!(throttle.check(bad, at(110)), Some(Duration::from_secs(50)));
        assert_eq!(
            throttle.check(bad, Timestamp::from_millis(110_500)),
            Some(Duration::from_secs(50)),
            "rounded up to whole seconds"
        );
        assert_eq!(throttle.check(good, at(110)), None);
        assert_eq!(throttle.check(bad, at(160)), None, "window over");
        throttle.fail(bad, at(160));
        assert_eq!(throttle.check(bad, at(160)), None, "a new window starts");
    }

    #[test]
    fn ipv6_is_throttled_per_64() {
        let throttle = Throttle::new(1);
        throttle.fail("2001:db8::1".parse().unwrap(), at(0));
        throttle.fail("2001:db8::2".parse().unwrap(), at(0));
        assert!(
            throttle
                .check("2001:db8::ffff".parse().unwrap(), at(1))
                .is_some()
        );
        assert!(
            throttle
                .check("2001:db8:0:1::1".parse().unwrap(), at(1))
                .is_none()
        );
    }

    #[test]
    fn tracking_is_bounded() {
        let throttle = Throttle::new(u32::MAX);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            throttle.fail(IpAddr::V4(i.into()), at(0));
        }
        let tracked = throttle.windows.lock().unwrap().by_client.len();
        assert_eq!(tracked, MAX_TRACKED);
        // Once their windows end, room comes back.
        throttle.fail("10.0.0.1".parse().unwrap(), at(61));
        assert_eq!(throttle.windows.lock().unwrap().by_client.len(), 1);
    }

    #[test]
    fn zero_disables() {
        let throttle = Throttle::new(0);
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..100 {
            throttle.fail(addr, at(0));
        }
        assert_eq!(throttle.check(addr, at(0)), None);
    }

    #[test]
    fn forwarded_for_is_read_only_when_trusted() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(client_addr(peer, &headers, false), peer);
        assert_eq!(
            client_addr(peer, &headers, true),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_addr(peer, &headers, true), peer);
    }
}
