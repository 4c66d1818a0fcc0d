//! Marking servers down: after `errors` consecutive failures a server is down for
//! `down_for`; while down nothing is sent to it (its keys go to the gutter pool, or to the
//! origin). When the time is up one request probes it: a success clears the count, a
//! failure marks it down again at once.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a server counts as down.
#[derive(Clone, Copy, Debug)]
pub struct HealthPolicy {
    /// Consecutive errors (timeouts, connection and protocol errors) that mark it down.
    pub errors: u32,
    /// How long it stays down.
    pub down_for: Duration,
}

impl Default for HealthPolicy {
    fn default() -> HealthPolicy {
        HealthPolicy {
            errors: 3,
            down_for: Duration::from_secs(10),
        }
    }
}

/// One server's health. Lock-free; shared by every request.
#[derive(Debug)]
pub struct Health {
    epoch: Instant,
    consecutive: AtomicU32,
    /// Milliseconds since `epoch` until which the server is down (0: up).
    down_until: AtomicU64,
    /// Times it was marked down.
    downs: AtomicU64,
}

impl Default for Health {
    fn default() -> Health {
        Health::new()
    }
}

impl Health {
    /// A healthy server.
    pub fn new() -> Health {
        Health {
            epoch: Instant::now(),
            consecutive: AtomicU32::new(0),
            down_until: AtomicU64::new(0),
            downs: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Whether requests may go to this server now. O(1).
    pub fn is_up(&self) -> bool {
        let until = self.down_until.load(Ordering::Acquire);
        until == 0 || self.now_ms() >= until
    }

    /// Records a successful exchange: the error count starts again.
    pub fn ok(&self) {
        self.consecutive.store(0, Ordering::Release);
        self.down_until.store(0, Ordering::Release);
    }

    /// Records a failed exchange; returns whether this marked the server down.
    pub fn error(&self, policy: &HealthPolicy) -> bool {
        let n = self.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= policy.errors.max(1) {
            let until = self.now_ms() + policy.down_for.as_millis() as u64;
            self.down_until.store(until, Ordering::Release);
            // A probe after the down period that fails marks it down again at once.
            self.consecutive
                .store(policy.errors.max(1) - 1, Ordering::Release);
            self.downs.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// How many times the server was marked down.
    pub fn downs(&self) -> u64 {
        self.downs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_k_errors_for_t() {
        let p = HealthPolicy {
            errors: 2,
            down_for: Duration::from_millis(50),
        };
        let h = Health::new();
        assert!(!h.error(&p));
        assert!(h.is_up());
        assert!(h.error(&p));
        assert!(!h.is_up());
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.is_up(), "probe allowed after the down period");
        assert!(h.error(&p), "one failed probe marks it down again");
        assert!(!h.is_up());
        h.ok();
        assert!(h.is_up());
        assert_eq!(h.downs(), 2);
    }
}
