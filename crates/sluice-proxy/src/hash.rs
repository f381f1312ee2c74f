//! Consistent hashing (DestinationRule `consistentHash`): a request's key (header, cookie,
//! source IP or query parameter) hashed onto a ring (`ringHash`) or a Maglev table. Pure: no
//! clocks, no I/O. The hash is fixed (not randomly seeded), so every replica of a gateway sends
//! a key to the same endpoint.
use http::header::{HeaderMap, HeaderValue, COOKIE};
use sluice_compile::policy::cluster::{HashKey, HashTable};
use std::net::SocketAddr;

/// Envoy's ring-size cap.
const MAX_RING: u64 = 8 * 1024 * 1024;
/// Maglev tables larger than this are not built (Istio's validation limit).
const MAX_MAGLEV: u64 = 5_000_011;

/// A 64-bit hash with good avalanche: FNV-1a over the bytes, then MurmurHash3's finaliser.
pub fn hash64(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Endpoints by hash: built once per snapshot from the endpoints' names and weights.
#[derive(Debug)]
pub enum Table {
    /// Sorted (hash, endpoint) points.
    Ring(Vec<(u64, u32)>),
    /// Slot → endpoint; the length is prime.
    Maglev(Vec<u32>),
}

impl Table {
    /// `names[i]` and `weights[i]` describe endpoint `i` (weights > 0).
    pub fn new(kind: HashTable, names: &[String], weights: &[u32]) -> Table {
        match kind {
            HashTable::RingHash { minimum_ring_size } => {
                Table::Ring(ring(names, weights, minimum_ring_size.clamp(1, MAX_RING)))
            }
            HashTable::Maglev { table_size } => {
                Table::Maglev(maglev(names, weights, table_size.clamp(1, MAX_MAGLEV)))
            }
        }
    }

    /// The endpoint for `hash`, skipping endpoints `usable` refuses (the next point on the
    /// ring, or the next slot of the table); `None` when none is usable.
    pub fn lookup(&self, hash: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        match self {
            Table::Ring(points) if !points.is_empty() => {
                let start = points.partition_point(|(h, _)| *h < hash);
                (0..points.len())
                    .map(|k| points[(start + k) % points.len()].1 as usize)
                    .find(|&i| usable(i))
            }
            Table::Maglev(slots) if !slots.is_empty() => {
                let start = (hash % slots.len() as u64) as usize;
                (0..slots.len())
                    .map(|k| slots[(start + k) % slots.len()] as usize)
                    .find(|&i| usable(i))
            }
            _ => None,
        }
    }
}

/// Ketama ring: each endpoint gets points in proportion to its weight, at least one, and the
/// ring at least `min_size` points.
fn ring(names: &[String], weights: &[u32], min_size: u64) -> Vec<(u64, u32)> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return Vec::new();
    }
    let size = min_size.max(names.len() as u64);
    let mut points = Vec::new();
    for (i, (name, w)) in names.iter().zip(weights).enumerate() {
        let count = (size * u64::from(*w)).div_ceil(total).max(1);
        for k in 0..count {
            points.push((hash64(format!("{name}_{k}").as_bytes(), 0), i as u32));
        }
    }
    points.sort_unstable();
    points
}

/// Maglev's permutation table (Eisenbud et al., 2016), weighted: an endpoint takes its turn in
/// a round only while its share of filled slots is below its share of the weight.
fn maglev(names: &[String], weights: &[u32], size: u64) -> Vec<u32> {
    let n = names.len();
    if n == 0 {
        return Vec::new();
    }
    // Every slot is in each endpoint's permutation only when the size is prime.
    let m = (size.max(2)..)
        .find(|&k| is_prime(k))
        .expect("primes are unbounded");
    let offset: Vec<u64> = names.iter().map(|s| hash64(s.as_bytes(), 0) % m).collect();
    let skip: Vec<u64> = names
        .iter()
        .map(|s| hash64(s.as_bytes(), 1) % (m - 1).max(1) + 1)
        .collect();
    let max_weight = u64::from(*weights.iter().max().expect("not empty"));
    let mut next = vec![0u64; n];
    let mut filled_by = vec![0u64; n];
    let mut table = vec![u32::MAX; m as usize];
    let mut filled = 0u64;
    let mut round = 0u64;
    while filled < m {
        round += 1;
        for i in 0..n {
            if filled_by[i] * max_weight >= round * u64::from(weights[i]) {
                continue;
            }
            // The endpoint's next preferred slot that is still free.
            loop {
                let slot = ((offset[i] + next[i] * skip[i]) % m) as usize;
                next[i] += 1;
                if table[slot] == u32::MAX {
                    table[slot] = i as u32;
                    filled_by[i] += 1;
                    filled += 1;
                    break;
                }
            }
            if filled == m {
                break;
            }
        }
    }
    table
}

fn is_prime(k: u64) -> bool {
    k >= 2
        && (2..)
            .take_while(|d| d * d <= k)
            .all(|d| !k.is_multiple_of(d))
}

/// What a request is hashed by, read from the request; `None` when it has no such key (Envoy
/// then balances it as if no hash were configured).
pub fn request_hash(
    key: &HashKey,
    headers: &HeaderMap,
    query: Option<&str>,
    peer: SocketAddr,
) -> Option<u64> {
    match key {
        HashKey::Header(name) => headers.get(name).map(|v| hash64(v.as_bytes(), 0)),
        HashKey::Cookie { name, .. } => cookie(headers, name).map(|v| hash64(v.as_bytes(), 0)),
        HashKey::SourceIp => Some(match peer.ip() {
            std::net::IpAddr::V4(ip) => hash64(&ip.octets(), 0),
            std::net::IpAddr::V6(ip) => hash64(&ip.octets(), 0),
        }),
        HashKey::QueryParameter(name) => query?
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| k == name)
            .map(|(_, v)| hash64(v.as_bytes(), 0)),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The cookie the gateway gives a client that came without one, when the rule has a `ttl`:
/// its value (hashed for this request) and the `Set-Cookie` header. The value is derived from the
/// client's connection, so requests racing on one connection get the same cookie.
pub fn new_cookie(key: &HashKey, peer: SocketAddr, local_port: u32) -> Option<(u64, HeaderValue)> {
    let HashKey::Cookie {
        name,
        path,
        ttl: Some(ttl),
    } = key
    else {
        return None;
    };
    let value = format!(
        "{:016x}",
        hash64(format!("{peer}|{local_port}").as_bytes(), 0)
    );
    let mut header = format!("{name}=\"{value}\"");
    // A zero ttl makes a session cookie (Istio's rule).
    if !ttl.is_zero() {
        header.push_str(&format!("; Max-Age={}", ttl.as_secs()));
    }
    if let Some(p) = path {
        header.push_str(&format!("; Path={p}"));
    }
    header.push_str("; HttpOnly");
    Some((
        hash64(value.as_bytes(), 0),
        HeaderValue::from_str(&header).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:80")).collect()
    }

    /// Share of 10,000 keys whose endpoint changes when the last of `n` endpoints goes.
    fn moved(kind: HashTable, n: usize) -> f64 {
        let before = Table::new(kind, &names(n), &vec![1; n]);
        let after = Table::new(kind, &names(n - 1), &vec![1; n - 1]);
        let moved = (0..10_000u64)
            .filter(|k| {
                let h = hash64(&k.to_le_bytes(), 0);
                before.lookup(h, |_| true) != after.lookup(h, |_| true)
            })
            .count();
        moved as f64 / 10_000.0
    }

    #[test]
    fn removing_one_of_n_endpoints_moves_about_one_nth_of_keys() {
        for kind in [
            HashTable::RingHash {
                minimum_ring_size: 1024,
            },
            HashTable::Maglev { table_size: 65537 },
        ] {
            let m = moved(kind, 5);
            // The removed endpoint's keys (1/5) must move, plus a little churn (the ring gives
            // the remaining endpoints more points, as Envoy's does).
            assert!((0.18..0.30).contains(&m), "{kind:?}: {m}");
        }
    }

    #[test]
    fn weights_shape_the_share() {
        let t = Table::new(HashTable::Maglev { table_size: 65537 }, &names(2), &[3, 1]);
        let Table::Maglev(slots) = &t else { panic!() };
        let first = slots.iter().filter(|s| **s == 0).count() as f64 / slots.len() as f64;
        assert!((0.73..0.77).contains(&first), "{first}");
        let t = Table::new(
            HashTable::RingHash {
                minimum_ring_size: 4096,
            },
            &names(2),
            &[3, 1],
        );
        let hits = (0..10_000u64)
            .filter(|k| t.lookup(hash64(&k.to_le_bytes(), 0), |_| true) == Some(0))
            .count();
        assert!((6_800..8_200).contains(&hits), "{hits}");
    }

    #[test]
    fn an_unusable_endpoint_is_skipped_and_the_rest_stay() {
        let t = Table::new(HashTable::Maglev { table_size: 101 }, &names(3), &[1, 1, 1]);
        for k in 0..200u64 {
            let h = hash64(&k.to_le_bytes(), 0);
            let normal = t.lookup(h, |_| true).unwrap();
            let without_1 = t.lookup(h, |i| i != 1).unwrap();
            assert_ne!(without_1, 1);
            if normal != 1 {
                assert_eq!(normal, without_1);
            }
        }
        assert_eq!(t.lookup(1, |_| false), None);
    }

    #[test]
    fn keys_come_from_the_request() {
        let mut h = HeaderMap::new();
        h.insert("x-user", HeaderValue::from_static("alice"));
        h.append(COOKIE, HeaderValue::from_static("a=1; session=\"abc\""));
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let header = HashKey::Header(http::header::HeaderName::from_static("x-user"));
        assert_eq!(
            request_hash(&header, &h, None, peer),
            Some(hash64(b"alice", 0))
        );
        let cookie = HashKey::Cookie {
            name: "session".into(),
            path: None,
            ttl: None,
        };
        assert_eq!(
            request_hash(&cookie, &h, None, peer),
            Some(hash64(b"abc", 0))
        );
        let q = HashKey::QueryParameter("u".into());
        assert_eq!(
            request_hash(&q, &h, Some("x=1&u=bob"), peer),
            Some(hash64(b"bob", 0))
        );
        assert_eq!(request_hash(&q, &h, Some("x=1"), peer), None);
        let other_port: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        assert_eq!(
            request_hash(&HashKey::SourceIp, &h, None, peer),
            request_hash(&HashKey::SourceIp, &h, None, other_port)
        );
    }

    #[test]
    fn a_new_cookie_carries_the_ttl_and_path() {
        let key = HashKey::Cookie {
            name: "s".into(),
            path: Some("/".into()),
            ttl: Some(std::time::Duration::from_secs(60)),
        };
        let (hash, header) = new_cookie(&key, "127.0.0.1:5000".parse().unwrap(), 80).unwrap();
        let header = header.to_str().unwrap().to_string();
        assert!(
            header.ends_with("; Max-Age=60; Path=/; HttpOnly"),
            "{header}"
        );
        let value = header.split('"').nth(1).unwrap();
        assert_eq!(hash, hash64(value.as_bytes(), 0));
    }
}
