//! The standby page's rate limits: page views and POSTs per client, activations per instance.
//!
//! Each limit is a governor keyed limiter (GCRA: `limit` events at once, then one every `window / limit`) over a
//! key table of our own, [`BoundedKeys`], which holds at most a fixed number of keys and, when full, evicts the
//! keys closest to a fresh state instead of refusing new ones: a flood of new keys can make the service forget
//! old ones, never lock out a new visitor. [`Limiter::housekeep`] (run every few seconds) drops the keys that are
//! back to a fresh state.
//!
//! Clients are keyed by [`client_key`]: the peer address, or with `--trust-forwarded-for` the last
//! `X-Forwarded-For` entry (the one the Gateway in front appended); IPv6 addresses by their /64, which one host
//! usually holds whole.

use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::HeaderMap;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

/// Keys each limiter holds at most.
pub const MAX_KEYS: usize = 10_000;

/// A key table of at most `capacity` keys; when a new key finds it full, the eighth of the keys whose state is
/// closest to fresh (the earliest theoretical arrival time) is evicted first.
#[derive(Debug)]
pub struct BoundedKeys<K: Hash + Eq + Clone> {
    capacity: usize,
    cells: Mutex<HashMap<K, u64>>,
}

impl<K: Hash + Eq + Clone> BoundedKeys<K> {
    /// A table of at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(8), cells: Mutex::new(HashMap::new()) }
    }

    fn evict(cells: &mut HashMap<K, u64>, count: usize) {
        let mut times: Vec<u64> = cells.values().copied().collect();
        let Some(index) = count.checked_sub(1).filter(|i| *i < times.len()) else { return };
        let (_, &mut cutoff, _) = times.select_nth_unstable(index);
        let mut left = count;
        cells.retain(|_, t| {
            if left > 0 && *t <= cutoff {
                left -= 1;
                false
            } else {
                true
            }
        });
    }
}

impl<K: Hash + Eq + Clone> StateStore for BoundedKeys<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        let (answer, next) = f(cells.get(key).map(|t| Nanos::from(*t)))?;
        if !cells.contains_key(key) && cells.len() >= self.capacity {
            Self::evict(&mut cells, self.capacity / 8);
        }
        cells.insert(key.clone(), u64::from(next));
        Ok(answer)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedKeys<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        let below = u64::from(drop_below);
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, t| *t > below);
    }

    fn shrink_to_fit(&self) {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One rate limit over keys of type `K`.
#[derive(Debug)]
pub struct Limiter<K: Hash + Eq + Clone> {
    inner: RateLimiter<K, BoundedKeys<K>, DefaultClock>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// At most `limit` events per `window` per key (all at once, then evenly), holding at most `max_keys` keys.
    pub fn new(limit: u32, window: Duration, max_keys: usize) -> Self {
        let limit = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
        let period = window.checked_div(limit.get()).unwrap_or(window).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(limit)).allow_burst(limit);
        let clock = DefaultClock::default();
        Self { inner: RateLimiter::new(quota, BoundedKeys::new(max_keys), clock.clone()), clock }
    }

    /// Counts an event for `key`; `Err(seconds to wait)` when the key is over its limit.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.inner.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }

    /// Drops the keys back to a fresh state.
    pub fn housekeep(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// The address a client is counted as: IPv4 as is, IPv6 by its /64 (an IPv4-mapped IPv6 address as IPv4).
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// The client a request is counted against: with `trust_forwarded_for`, the last `X-Forwarded-For` entry when it
/// is an IP address (the Gateway appends the address it saw); else, or when that entry is missing or not an
/// address, the peer.
pub fn client_key(peer: SocketAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for
        && let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
        && let Ok(ip) = last.parse::<IpAddr>().or_else(|_| last.parse::<SocketAddr>().map(|s| s.ip()))
    {
        return normalize_ip(ip);
    }
    normalize_ip(peer.ip())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn limits_count_per_key_and_refill() {
        let limiter: Limiter<u32> = Limiter::new(2, Duration::from_millis(200), 100);
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.check(&1).is_ok());
        assert_eq!(limiter.check(&1), Err(1), "over the limit: wait (at least a second, as Retry-After says)");
        assert!(limiter.check(&2).is_ok(), "another key is not affected");
        std::thread::sleep(Duration::from_millis(120));
        assert!(limiter.check(&1).is_ok(), "one event comes back after window / limit");
    }

    #[test]
    fn a_full_table_evicts_instead_of_refusing() {
        let limiter: Limiter<u32> = Limiter::new(1, Duration::from_secs(3600), 64);
        for key in 0..1_000 {
            assert!(limiter.check(&key).is_ok(), "new key {key} is never refused");
        }
        assert!(limiter.len() <= 64, "{}", limiter.len());
        assert_eq!(limiter.check(&999), Err(3600), "a recent key is still limited");
    }

    #[test]
    fn housekeeping_drops_fresh_keys() {
        let limiter: Limiter<u32> = Limiter::new(5, Duration::from_millis(50), 100);
        for key in 0..10 {
            limiter.check(&key).unwrap();
        }
        assert_eq!(limiter.len(), 10);
        std::thread::sleep(Duration::from_millis(60));
        limiter.housekeep();
        assert!(limiter.is_empty());
    }

    #[test]
    fn clients_are_keyed_by_address_and_ipv6_by_prefix() {
        let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.7, 198.51.100.9".parse().unwrap());
        assert_eq!(client_key(peer, &headers, false), "192.0.2.1".parse::<IpAddr>().unwrap(), "not trusted");
        assert_eq!(client_key(peer, &headers, true), "198.51.100.9".parse::<IpAddr>().unwrap(), "the last entry");
        headers.insert("x-forwarded-for", "not-an-address".parse().unwrap());
        assert_eq!(client_key(peer, &headers, true), "192.0.2.1".parse::<IpAddr>().unwrap(), "garbage: the peer");
        let a: SocketAddr = "[2001:db8:1:2:aaaa::1]:1".parse().unwrap();
        let b: SocketAddr = "[2001:db8:1:2:bbbb::9]:1".parse().unwrap();
        let c: SocketAddr = "[2001:db8:1:3::1]:1".parse().unwrap();
        let none = HeaderMap::new();
        assert_eq!(client_key(a, &none, false), client_key(b, &none, false), "one /64");
        assert_ne!(client_key(a, &none, false), client_key(c, &none, false), "another /64");
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:1".parse().unwrap();
        assert_eq!(client_key(mapped, &none, false), client_key(peer, &none, false));
    }
}
