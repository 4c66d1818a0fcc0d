//! A memcached cluster: the ketama ring over the primary servers, a small gutter pool
//! with a ring of its own, a few idle connections per server, and [`Cluster::run`], which
//! sends one pipelined batch per server, all servers in parallel, under one deadline.
//!
//! A server marked down ([`super::health`]) gets nothing: its keys go to the gutter ring
//! (never rehashed onto the surviving primaries, where one hot key could overload a
//! neighbour), or, without a gutter pool, nowhere (the caller reads the origin).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::client::{Conn, Op, Reply, Timeouts, request_len};
use super::error::{RemoteError, RemoteResult};
use super::health::{Health, HealthPolicy};
use super::ketama::{Ring, Server};

/// Batches whose requests are all at most this many bytes are sent from the calling
/// thread (write all, then read all); larger ones get a thread per server.
pub const INLINE_REQUEST_BYTES: usize = 32 << 10;

/// How to reach and judge the servers.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Primary servers in ring order, as twemproxy server lines: `host:port`,
    /// `host:port:weight` or `host:port:weight name` ([`Server::parse`]).
    pub servers: Vec<String>,
    /// Gutter servers for the keys of primaries that are down (may be empty), in the
    /// same syntax.
    pub gutter: Vec<String>,
    /// Connect and batch deadlines.
    pub timeouts: Timeouts,
    /// When a server is marked down.
    pub health: HealthPolicy,
    /// The longest TTL (seconds) of anything written to the gutter pool.
    pub gutter_ttl: u32,
    /// Idle connections kept per server.
    pub max_idle: usize,
}

impl ClusterConfig {
    /// Defaults for `servers` (no gutter).
    pub fn new<S: AsRef<str>>(servers: &[S]) -> ClusterConfig {
        ClusterConfig {
            servers: servers.iter().map(|s| s.as_ref().to_owned()).collect(),
            gutter: Vec::new(),
            timeouts: Timeouts::default(),
            health: HealthPolicy::default(),
            gutter_ttl: 60,
            max_idle: 8,
        }
    }

    /// Parses a comma-separated list of server lines (`host:port[:weight [name]]`).
    pub fn parse_list(list: &str) -> RemoteResult<Vec<String>> {
        let v: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        for s in &v {
            Server::parse(s).map_err(RemoteError::Config)?;
        }
        Ok(v)
    }
}

/// One server: its connections, health and counters.
#[derive(Debug)]
pub struct Endpoint {
    addr: String,
    idle: Mutex<Vec<Conn>>,
    /// Its health.
    pub health: Health,
    round_trips: AtomicU64,
    errors: AtomicU64,
}

impl Endpoint {
    fn new(addr: &str) -> Endpoint {
        Endpoint {
            addr: addr.to_owned(),
            idle: Mutex::new(Vec::new()),
            health: Health::new(),
            round_trips: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Batches sent (round trips).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Batches that failed.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// One batch on a pooled (or new) connection. An error drops the connection and
    /// counts against the server's health. No retry.
    pub fn batch(
        &self,
        ops: &[Op<'_>],
        deadline: Instant,
        cfg: &ClusterConfig,
    ) -> RemoteResult<Vec<Reply>> {
        let conn = self.send(ops, deadline, cfg)?;
        self.receive(conn, ops, deadline, cfg)
    }

    /// Writes a batch on a pooled (or new) connection; [`receive`](Self::receive) reads
    /// its replies.
    pub fn send(
        &self,
        ops: &[Op<'_>],
        deadline: Instant,
        cfg: &ClusterConfig,
    ) -> RemoteResult<Conn> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let result = match pooled {
            Some(c) => Ok(c),
            None => Conn::connect(&self.addr, cfg.timeouts.connect, deadline),
        }
        .and_then(|mut c| c.send(ops, deadline).map(|()| c));
        result.inspect_err(|_| self.failed(cfg))
    }

    /// Reads the replies of a batch [`send`](Self::send) wrote, and pools the connection.
    pub fn receive(
        &self,
        mut conn: Conn,
        ops: &[Op<'_>],
        deadline: Instant,
        cfg: &ClusterConfig,
    ) -> RemoteResult<Vec<Reply>> {
        match conn.receive(ops, deadline) {
            Ok(replies) => {
                self.health.ok();
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < cfg.max_idle {
                    idle.push(conn);
                }
                Ok(replies)
            }
            Err(e) => {
                self.failed(cfg);
                Err(e)
            }
        }
    }

    fn failed(&self, cfg: &ClusterConfig) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.health.error(&cfg.health);
    }
}

/// Where a key goes now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// Its primary server (index into [`Cluster::primaries`]).
    Primary(usize),
    /// A gutter server, its primary being down (index into [`Cluster::gutters`]).
    Gutter(usize),
    /// No server: its primary is down and there is no usable gutter.
    Nowhere,
}

/// The servers and their rings. `Send + Sync`; share one per process.
#[derive(Debug)]
pub struct Cluster {
    cfg: ClusterConfig,
    ring: Ring,
    primaries: Vec<Endpoint>,
    gutter_ring: Ring,
    gutters: Vec<Endpoint>,
}

impl Cluster {
    /// A cluster over `cfg`'s servers. Connects lazily.
    pub fn new(cfg: ClusterConfig) -> RemoteResult<Cluster> {
        if cfg.servers.is_empty() {
            return Err(RemoteError::Config("no memcached servers".into()));
        }
        let parse = |list: &[String]| -> RemoteResult<Vec<Server>> {
            list.iter()
                .map(|s| Server::parse(s).map_err(RemoteError::Config))
                .collect()
        };
        let (servers, gutter) = (parse(&cfg.servers)?, parse(&cfg.gutter)?);
        Ok(Cluster {
            primaries: servers.iter().map(|s| Endpoint::new(&s.addr)).collect(),
            gutters: gutter.iter().map(|s| Endpoint::new(&s.addr)).collect(),
            ring: Ring::new(servers),
            gutter_ring: Ring::new(gutter),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// The primary servers, in ring order.
    pub fn primaries(&self) -> &[Endpoint] {
        &self.primaries
    }

    /// The gutter servers.
    pub fn gutters(&self) -> &[Endpoint] {
        &self.gutters
    }

    /// Where `key` goes now: its ketama server if up, else the gutter ring's server if up,
    /// else nowhere. O(log points).
    pub fn route(&self, key: &str) -> Route {
        let Some(p) = self.ring.locate(key.as_bytes()) else {
            return Route::Nowhere;
        };
        if self.primaries[p].health.is_up() {
            return Route::Primary(p);
        }
        match self.gutter_ring.locate(key.as_bytes()) {
            Some(g) if self.gutters[g].health.is_up() => Route::Gutter(g),
            _ => Route::Nowhere,
        }
    }

    fn endpoint(&self, r: Route) -> Option<&Endpoint> {
        match r {
            Route::Primary(i) => self.primaries.get(i),
            Route::Gutter(i) => self.gutters.get(i),
            Route::Nowhere => None,
        }
    }

    /// Sends `ops` grouped by route: one pipelined batch per server, the servers working
    /// in parallel (small requests: written to every server, then read from each, from
    /// this thread; large ones: a scoped thread per server), all by `deadline`. Returns one entry per op: `None` where
    /// its server failed, timed out or is down (the caller treats it as a miss). Sets
    /// routed to the gutter get at most [`ClusterConfig::gutter_ttl`].
    pub fn run(&self, ops: &[Op<'_>], deadline: Instant) -> Vec<Option<Reply>> {
        let mut groups: Vec<(Route, Vec<usize>)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let r = self.route(op_key(op));
            if r == Route::Nowhere {
                continue;
            }
            match groups.iter_mut().find(|(g, _)| *g == r) {
                Some((_, v)) => v.push(i),
                None => groups.push((r, vec![i])),
            }
        }
        let mut out: Vec<Option<Reply>> = vec![None; ops.len()];
        let batches: Vec<Vec<Op<'_>>> = groups
            .iter()
            .map(|(route, idx)| {
                idx.iter()
                    .map(|&i| {
                        let mut op = ops[i].clone();
                        if let (Route::Gutter(_), Op::Set { ttl, .. }) = (*route, &mut op) {
                            if *ttl == 0 || *ttl > self.cfg.gutter_ttl {
                                *ttl = self.cfg.gutter_ttl;
                            }
                        }
                        op
                    })
                    .collect()
            })
            .collect();
        let small = batches
            .iter()
            .all(|b| request_len(b) <= INLINE_REQUEST_BYTES);
        let results: Vec<Option<Vec<Reply>>> = if groups.len() <= 1 || small {
            // One thread: write every server's request, then read each server's replies.
            // The servers work in parallel; a request this small fits the socket buffers,
            // so no write waits for a read.
            let sent: Vec<Option<Conn>> = groups
                .iter()
                .zip(&batches)
                .map(|((r, _), b)| self.endpoint(*r)?.send(b, deadline, &self.cfg).ok())
                .collect();
            groups
                .iter()
                .zip(&batches)
                .zip(sent)
                .map(|(((r, _), b), conn)| {
                    self.endpoint(*r)?
                        .receive(conn?, b, deadline, &self.cfg)
                        .ok()
                })
                .collect()
        } else {
            // Large requests (push, big write-backs): a thread per server.
            std::thread::scope(|s| {
                let handles: Vec<_> = groups
                    .iter()
                    .zip(&batches)
                    .map(|((r, _), b)| {
                        s.spawn(move || self.endpoint(*r)?.batch(b, deadline, &self.cfg).ok())
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().ok().flatten())
                    .collect()
            })
        };
        for ((_, idx), res) in groups.iter().zip(results) {
            if let Some(replies) = res {
                for (&i, r) in idx.iter().zip(replies) {
                    out[i] = Some(r);
                }
            }
        }
        out
    }

    /// Total batches sent to every server (primaries and gutter).
    pub fn round_trips(&self) -> u64 {
        self.primaries
            .iter()
            .chain(&self.gutters)
            .map(Endpoint::round_trips)
            .sum()
    }
}

fn op_key<'a>(op: &Op<'a>) -> &'a str {
    match *op {
        Op::Get { key, .. } | Op::Exists { key } | Op::Set { key, .. } | Op::Delete { key } => key,
    }
}
