//! In-process single-flight: however many requests miss the same key at once, one of them
//! (the *leader*) fetches it; the others (*followers*) wait for its result, up to their
//! deadline. A leader claims many keys at once, so a request still makes one batched
//! fetch for all the keys it leads.
//!
//! A leader that finishes without a value (or is dropped, e.g. by a panic) wakes its
//! followers with `None`; each then fetches for itself. Across processes the same job is
//! done by memcached leases (see [`super::store`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

#[derive(Debug)]
struct Flight<V> {
    /// `None` while in flight; `Some(result)` once the leader is done.
    done: Mutex<Option<Option<V>>>,
    cv: Condvar,
}

/// The keys in flight. `Send + Sync`.
#[derive(Debug)]
pub struct Flights<K, V> {
    inflight: Mutex<HashMap<K, Arc<Flight<V>>>>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Flights {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

/// What [`Flights::claim`] gave for one key.
#[derive(Debug)]
pub enum Claim<'f, K: Eq + Hash + Clone, V: Clone> {
    /// Fetch it, then [`Leader::finish`].
    Leader(Leader<'f, K, V>),
    /// Someone else is fetching it: [`Follower::wait`].
    Follower(Follower<V>),
}

/// The duty to fetch one key and publish the result.
#[derive(Debug)]
pub struct Leader<'f, K: Eq + Hash + Clone, V: Clone> {
    flights: &'f Flights<K, V>,
    key: K,
    flight: Arc<Flight<V>>,
    finished: bool,
}

/// A wait for another request's fetch.
#[derive(Debug)]
pub struct Follower<V> {
    flight: Arc<Flight<V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Flights<K, V> {
    /// An empty set of flights.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leads `key` if nobody is fetching it, else follows. O(1).
    pub fn claim(&self, key: K) -> Claim<'_, K, V> {
        let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get(&key) {
            return Claim::Follower(Follower { flight: f.clone() });
        }
        let flight = Arc::new(Flight {
            done: Mutex::new(None),
            cv: Condvar::new(),
        });
        map.insert(key.clone(), flight.clone());
        Claim::Leader(Leader {
            flights: self,
            key,
            flight,
            finished: false,
        })
    }

    /// Keys in flight now.
    pub fn len(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Leader<'_, K, V> {
    /// The key this leader fetches.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Publishes the result (`None`: the fetch failed) and wakes every follower.
    pub fn finish(mut self, value: Option<V>) {
        self.complete(value);
    }

    fn complete(&mut self, value: Option<V>) {
        if self.finished {
            return;
        }
        self.finished = true;
        // Remove first: a request arriving from now on starts a new flight (or, usually,
        // finds the value in the cache the leader filled before finishing).
        self.flights
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
        *self.flight.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        self.flight.cv.notify_all();
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        self.complete(None);
    }
}

impl<V: Clone> Follower<V> {
    /// The leader's result, or `None` if it failed or `deadline` passed first.
    pub fn wait(&self, deadline: Instant) -> Option<V> {
        let mut done = self.flight.done.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = done.as_ref() {
                return r.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            done = self
                .flight
                .cv
                .wait_timeout(done, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn one_fetch_for_many_callers() {
        let flights: Flights<u32, u32> = Flights::new();
        let fetches = AtomicUsize::new(0);
        let barrier = std::sync::Barrier::new(16);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    barrier.wait();
                    let got = match flights.claim(7) {
                        Claim::Leader(l) => {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            l.finish(Some(49));
                            Some(49)
                        }
                        Claim::Follower(f) => f.wait(Instant::now() + Duration::from_secs(5)),
                    };
                    assert_eq!(got, Some(49));
                });
            }
        });
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(flights.is_empty());
    }

    #[test]
    fn a_dropped_leader_releases_followers() {
        let flights: Flights<u32, u32> = Flights::new();
        let Claim::Leader(l) = flights.claim(1) else {
            panic!()
        };
        let Claim::Follower(f) = flights.claim(1) else {
            panic!()
        };
        drop(l);
        assert_eq!(f.wait(Instant::now() + Duration::from_secs(1)), None);
        assert!(matches!(flights.claim(1), Claim::Leader(_)));
    }

    #[test]
    fn a_follower_gives_up_at_its_deadline() {
        let flights: Flights<u32, u32> = Flights::new();
        let _l = flights.claim(1);
        let Claim::Follower(f) = flights.claim(1) else {
            panic!()
        };
        let t = Instant::now();
        assert_eq!(f.wait(t + Duration::from_millis(30)), None);
        assert!(t.elapsed() < Duration::from_millis(500));
    }
}
