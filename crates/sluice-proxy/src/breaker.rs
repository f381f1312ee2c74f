//! Envoy-style circuit breakers: a count with a limit that is checked, never waited on. Over
//! the limit the caller answers at once (503, flag UO) instead of queueing.
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// How many of something are open or in flight (connections, pending or active requests).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU32);

/// One unit of a `Gauge`, given back when dropped.
#[derive(Debug)]
pub struct Permit(Arc<Gauge>);

impl Gauge {
    /// A permit if fewer than `max` are taken. `u32::MAX` is "no limit" (Envoy's 2^32-1).
    pub fn try_acquire(self: &Arc<Self>, max: u32) -> Option<Permit> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Permit(self.clone()))
    }

    /// A permit whatever the count (Envoy opens a host's first connection even over the limit).
    pub fn acquire(self: &Arc<Self>) -> Permit {
        self.0.fetch_add(1, Ordering::AcqRel);
        Permit(self.clone())
    }

    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_stop_at_the_limit_and_come_back() {
        let g = Arc::new(Gauge::default());
        let a = g.try_acquire(2).unwrap();
        let _b = g.try_acquire(2).unwrap();
        assert!(g.try_acquire(2).is_none());
        drop(a);
        assert!(g.try_acquire(2).is_some());
        let _forced = g.acquire();
        assert_eq!(g.get(), 2);
    }
}
