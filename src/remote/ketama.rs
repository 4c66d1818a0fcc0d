//! A consistent-hash ring that places keys exactly as libketama and twemproxy
//! (`hash: md5`, `distribution: ketama`) do, so that fms, twemproxy and other ketama
//! clients agree on which server holds every key.
//!
//! The continuum, as twemproxy's `ketama_update` builds it:
//!
//! * each server has a *name*: the `name` given in the pool config if any, else
//!   `host:port`, or just `host` when the port is 11211 (libmemcached compatibility);
//! * a server of weight `w` out of a total `W` over `n` servers gets
//!   `floor(w / W * 160 / 4 * n + 1e-10) * 4` points (computed in `f32`, as the C code
//!   does): 160 for equal weights;
//! * points come in groups of four from the md5 of `"<name>-<i>"` for `i = 0, 1, ...`:
//!   point `j` of a group is bytes `4j..4j+4` of the digest read little-endian;
//! * a key hashes to the first four bytes of its md5 (little-endian) and goes to the
//!   server of the first point `>= hash`, wrapping to the first point.
//!
//! Building is O(points log points); [`Ring::locate`] is a binary search, allocation-free.

use md5::{Digest, Md5};

/// Points per server at equal weights (40 md5 digests × 4 points).
pub const POINTS_PER_SERVER: u32 = 160;

/// libmemcached's default port: a server on it is named by its host alone.
pub const DEFAULT_PORT: u16 = 11211;

/// One server of a ring: the address to connect to and the name that places it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// `host:port` to connect to.
    pub addr: String,
    /// The string the ring hashes (twemproxy's server name).
    pub name: String,
    /// Relative weight (> 0).
    pub weight: u32,
}

impl Server {
    /// A server of weight 1 named as twemproxy names a server without a `name`: `host:port`,
    /// or `host` if the port is 11211. `addr` must be `host:port`.
    pub fn new(addr: &str) -> Server {
        Server::weighted(addr, 1)
    }

    /// [`Server::new`] with a weight.
    pub fn weighted(addr: &str, weight: u32) -> Server {
        let name = match addr.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>() == Ok(DEFAULT_PORT) => host.to_owned(),
            _ => addr.to_owned(),
        };
        Server {
            addr: addr.to_owned(),
            name,
            weight: weight.max(1),
        }
    }

    /// Parses a twemproxy server line: `host:port`, `host:port:weight` or
    /// `host:port:weight name` (the name then places the server on the ring instead of
    /// its address, so servers can move without moving their keys).
    pub fn parse(spec: &str) -> Result<Server, String> {
        let spec = spec.trim();
        let (addr_part, name) = match spec.split_once(' ') {
            Some((a, n)) if !n.trim().is_empty() => (a, Some(n.trim())),
            _ => (spec, None),
        };
        let bad = || format!("{spec:?} is not host:port[:weight [name]]");
        let parts: Vec<&str> = addr_part.split(':').collect();
        let (host, port, weight) = match parts.as_slice() {
            [h, p] => (*h, *p, 1),
            [h, p, w] => (
                *h,
                *p,
                w.parse::<u32>().ok().filter(|&w| w > 0).ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad());
        }
        let addr = format!("{host}:{port}");
        Ok(match name {
            Some(n) => Server::named(&addr, n, weight),
            None => Server::weighted(&addr, weight),
        })
    }

    /// A server with an explicit name (twemproxy's `host:port:weight name`).
    pub fn named(addr: &str, name: &str, weight: u32) -> Server {
        Server {
            addr: addr.to_owned(),
            name: name.to_owned(),
            weight: weight.max(1),
        }
    }
}

/// A ketama continuum over a fixed list of servers. Immutable; share it.
#[derive(Clone, Debug)]
pub struct Ring {
    servers: Vec<Server>,
    /// `(point, server index)`, sorted by point.
    points: Vec<(u32, u32)>,
}

/// The 32-bit key hash of twemproxy's `hash: md5`: the first four digest bytes,
/// little-endian.
pub fn key_hash(key: &[u8]) -> u32 {
    let d = Md5::digest(key);
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

impl Ring {
    /// Builds the continuum of `servers` (in pool order). An empty list gives a ring
    /// that locates nothing.
    pub fn new(servers: Vec<Server>) -> Ring {
        let n = servers.len() as u32;
        let total: u64 = servers.iter().map(|s| u64::from(s.weight)).sum();
        let mut points = Vec::with_capacity(servers.len() * POINTS_PER_SERVER as usize);
        for (idx, s) in servers.iter().enumerate() {
            let pct = s.weight as f32 / total as f32;
            // twemproxy's arithmetic, in f32, so that weighted pools agree too.
            let per_server = ((pct * POINTS_PER_SERVER as f32 / 4.0 * n as f32 + 0.000_000_000_1)
                .floor() as u32)
                * 4;
            for i in 0..per_server / 4 {
                let d = Md5::digest(format!("{}-{}", s.name, i).as_bytes());
                for j in 0..4 {
                    let b = &d[j * 4..j * 4 + 4];
                    points.push((u32::from_le_bytes([b[0], b[1], b[2], b[3]]), idx as u32));
                }
            }
        }
        // Ties between servers are astronomically rare; break them by pool order so the
        // ring is at least deterministic (twemproxy's qsort leaves them unspecified).
        points.sort_unstable();
        Ring { servers, points }
    }

    /// The servers, in pool order.
    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// Whether the ring has no servers.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Number of points on the continuum.
    pub fn point_count(&self) -> usize {
        self.points.len()
    }

    /// Index (in [`servers`](Self::servers)) of the server holding `key`; `None` for an
    /// empty ring. O(log points), allocation-free apart from the md5.
    pub fn locate(&self, key: &[u8]) -> Option<usize> {
        self.locate_hash(key_hash(key))
    }

    /// [`locate`](Self::locate) for a precomputed [`key_hash`].
    pub fn locate_hash(&self, hash: u32) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let i = self.points.partition_point(|&(p, _)| p < hash);
        let (_, idx) = self.points[if i == self.points.len() { 0 } else { i }];
        Some(idx as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_twemproxy() {
        assert_eq!(Server::new("10.0.0.1:11211").name, "10.0.0.1");
        assert_eq!(Server::new("10.0.0.1:11212").name, "10.0.0.1:11212");
        assert_eq!(Server::named("10.0.0.1:11211", "a", 1).name, "a");
    }

    #[test]
    fn parses_twemproxy_server_lines() {
        assert_eq!(Server::parse("h:11211").unwrap(), Server::new("h:11211"));
        assert_eq!(Server::parse("h:1:3").unwrap(), Server::weighted("h:1", 3));
        assert_eq!(
            Server::parse("h:1:2 alpha").unwrap(),
            Server::named("h:1", "alpha", 2)
        );
        for bad in ["h", "h:x", ":1", "h:1:0", "h:1:2:3", "h:1:w name"] {
            assert!(Server::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn equal_weights_give_160_points_each() {
        let r = Ring::new(vec![
            Server::new("a:1"),
            Server::new("b:2"),
            Server::new("c:3"),
        ]);
        assert_eq!(r.point_count(), 480);
        let mut counts = [0u32; 3];
        for i in 0..3000 {
            counts[r.locate(format!("k{i}").as_bytes()).unwrap()] += 1;
        }
        assert!(counts.iter().all(|&c| c > 500), "{counts:?}");
    }

    #[test]
    fn empty_ring_locates_nothing() {
        assert_eq!(Ring::new(vec![]).locate(b"x"), None);
    }

    #[test]
    fn md5_key_hash_is_little_endian_prefix() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(key_hash(b""), u32::from_le_bytes([0xd4, 0x1d, 0x8c, 0xd9]));
    }
}
