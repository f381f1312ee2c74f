//! Outlier detection as Envoy does it for Istio's `outlierDetection`: consecutive errors per
//! endpoint eject it at once (within `maxEjectionPercent`); a sweep every `interval` returns
//! endpoints whose ejection time (base × number of ejections) has passed. Atomics only; the
//! caller gives the time, so the rules are tested without sleeping.
use sluice_compile::policy::cluster::Outlier;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// What one try of a request told about its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered with this status.
    Status(u16),
    /// Connect failure, reset or timeout: an error of the gateway's own making (local origin).
    /// `timeout` maps it to 504 rather than 503 when local errors are not split out.
    Local { timeout: bool },
}

/// One endpoint's error counters and ejection state.
#[derive(Debug, Default)]
pub struct Health {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    consecutive_local: AtomicU32,
    ejected: AtomicBool,
    /// When the current ejection started, in milliseconds of the caller's clock.
    ejected_at: AtomicU64,
    /// Ejections so far; the multiplier of the ejection time, lowered after healthy intervals.
    ejections: AtomicU32,
    /// A reload removed the endpoint: requests still on it must not count it as ejected.
    retired: AtomicBool,
}

/// Counts of a cluster's endpoints, for the ejection cap and panic mode.
#[derive(Debug, Default)]
pub struct Ejected(AtomicU32);

impl Ejected {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }

    /// Recounted when a reload changes the endpoints.
    pub fn set(&self, n: u32) {
        self.0.store(n, Ordering::Release);
    }

    /// Whether ejections are ignored: fewer than `min_health_percent` of `total` endpoints are
    /// healthy (Envoy's panic threshold, which Istio sets to `minHealthPercent`).
    pub fn panic(&self, total: usize, min_health_percent: u32) -> bool {
        let ejected = self.get() as usize;
        ejected > 0 && ((total - ejected.min(total)) * 100) < total * min_health_percent as usize
    }
}

/// Ejection that the caller should log.
#[derive(Debug, PartialEq, Eq)]
pub struct Ejection {
    pub reason: &'static str,
    pub count: u32,
    pub duration: Duration,
}

impl Health {
    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Acquire)
    }

    /// The endpoint left its cluster; its cluster's ejection count no longer includes it.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Counts the outcome; returns the ejection it caused, if any. `total` is the number of the
    /// cluster's endpoints, `now_ms` the caller's clock.
    pub fn record(
        &self,
        outcome: Outcome,
        policy: &Outlier,
        ejected: &Ejected,
        total: usize,
        now_ms: u64,
    ) -> Option<Ejection> {
        let bump = |c: &AtomicU32| c.fetch_add(1, Ordering::AcqRel) + 1;
        let reached = |n: u32, limit: Option<u32>| limit == Some(n);
        let status = match outcome {
            Outcome::Local { .. } if policy.split_local_origin => {
                let n = bump(&self.consecutive_local);
                return reached(n, policy.consecutive_local_origin)
                    .then(|| {
                        self.eject(
                            "consecutive local origin failures",
                            policy,
                            ejected,
                            total,
                            now_ms,
                        )
                    })
                    .flatten();
            }
            // Not split: a connect failure is a 503 of the gateway's, a timeout a 504.
            Outcome::Local { timeout } => {
                if timeout {
                    504
                } else {
                    503
                }
            }
            Outcome::Status(s) => {
                if policy.split_local_origin {
                    // The endpoint answered: its connection works.
                    self.consecutive_local.store(0, Ordering::Release);
                }
                s
            }
        };
        if status < 500 {
            self.consecutive_5xx.store(0, Ordering::Release);
            self.consecutive_gateway.store(0, Ordering::Release);
            return None;
        }
        let gateway = matches!(status, 502..=504);
        let g = if gateway {
            bump(&self.consecutive_gateway)
        } else {
            self.consecutive_gateway.store(0, Ordering::Release);
            0
        };
        let f = bump(&self.consecutive_5xx);
        if gateway && reached(g, policy.consecutive_gateway) {
            return self.eject("consecutive gateway errors", policy, ejected, total, now_ms);
        }
        if reached(f, policy.consecutive_5xx) {
            return self.eject("consecutive 5xx errors", policy, ejected, total, now_ms);
        }
        None
    }

    fn eject(
        &self,
        reason: &'static str,
        policy: &Outlier,
        ejected: &Ejected,
        total: usize,
        now_ms: u64,
    ) -> Option<Ejection> {
        // Envoy (since 1.27): an ejection must keep the ejected share within the maximum, so
        // with the default 10% fewer than ten endpoints are never ejected.
        if self.retired.load(Ordering::Acquire) {
            return None;
        }
        let max = policy.max_ejection_percent as usize;
        ejected
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                ((n as usize + 1) * 100 <= max * total).then_some(n + 1)
            })
            .ok()?;
        if self.ejected.swap(true, Ordering::AcqRel) {
            // Another request ejected it first.
            ejected.0.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.ejected_at.store(now_ms, Ordering::Release);
        let count = self.ejections.fetch_add(1, Ordering::AcqRel) + 1;
        self.reset_counters();
        Some(Ejection {
            reason,
            count,
            duration: policy.ejection_time(count),
        })
    }

    fn reset_counters(&self) {
        self.consecutive_5xx.store(0, Ordering::Release);
        self.consecutive_gateway.store(0, Ordering::Release);
        self.consecutive_local.store(0, Ordering::Release);
    }

    /// The interval's sweep: returns the endpoint when its ejection is over (true), or lowers
    /// the multiplier of an endpoint that stayed healthy.
    pub fn sweep(&self, policy: &Outlier, ejected: &Ejected, now_ms: u64) -> bool {
        if self.is_ejected() {
            let count = self.ejections.load(Ordering::Acquire);
            let until = self.ejected_at.load(Ordering::Acquire)
                + policy.ejection_time(count).as_millis() as u64;
            if now_ms >= until && self.ejected.swap(false, Ordering::AcqRel) {
                ejected.0.fetch_sub(1, Ordering::AcqRel);
                self.reset_counters();
                return true;
            }
        } else {
            let _ = self
                .ejections
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::istio::OutlierDetection;

    fn policy(f: impl FnOnce(&mut OutlierDetection)) -> Outlier {
        let mut o = OutlierDetection {
            max_ejection_percent: Some(100),
            ..Default::default()
        };
        f(&mut o);
        Outlier::from_istio(&o)
    }

    #[test]
    fn five_consecutive_5xx_eject_and_a_success_resets_the_count() {
        let p = policy(|_| {});
        let (h, e) = (Health::default(), Ejected::default());
        for _ in 0..4 {
            assert_eq!(h.record(Outcome::Status(500), &p, &e, 2, 0), None);
        }
        h.record(Outcome::Status(200), &p, &e, 2, 0);
        for _ in 0..4 {
            assert_eq!(h.record(Outcome::Status(503), &p, &e, 2, 0), None);
        }
        let ej = h.record(Outcome::Status(503), &p, &e, 2, 0).unwrap();
        assert_eq!((ej.count, ej.duration), (1, Duration::from_secs(30)));
        assert!(h.is_ejected());
        assert_eq!(e.get(), 1);
    }

    #[test]
    fn gateway_errors_and_local_failures() {
        let p = policy(|o| o.consecutive_gateway_errors = Some(2));
        let (h, e) = (Health::default(), Ejected::default());
        h.record(Outcome::Status(502), &p, &e, 2, 0);
        // A 500 breaks a run of gateway errors.
        h.record(Outcome::Status(500), &p, &e, 2, 0);
        assert_eq!(h.record(Outcome::Status(504), &p, &e, 2, 0), None);
        // A connect failure is a gateway error when local errors are not split out.
        let ej = h.record(Outcome::Local { timeout: false }, &p, &e, 2, 0);
        assert_eq!(ej.unwrap().reason, "consecutive gateway errors");

        let p = policy(|o| {
            o.split_external_local_origin_errors = Some(true);
            o.consecutive_local_origin_failures = Some(2);
        });
        let (h, e) = (Health::default(), Ejected::default());
        h.record(Outcome::Local { timeout: false }, &p, &e, 2, 0);
        h.record(Outcome::Status(200), &p, &e, 2, 0);
        assert_eq!(
            h.record(Outcome::Local { timeout: true }, &p, &e, 2, 0),
            None
        );
        let ej = h.record(Outcome::Local { timeout: true }, &p, &e, 2, 0);
        assert_eq!(ej.unwrap().reason, "consecutive local origin failures");
    }

    #[test]
    fn max_ejection_percent_caps_ejections() {
        // Istio's default 10%: of 2 endpoints none may go (Envoy since 1.27).
        let p = policy(|o| o.max_ejection_percent = None);
        let (h, e) = (Health::default(), Ejected::default());
        for _ in 0..10 {
            assert_eq!(h.record(Outcome::Status(500), &p, &e, 2, 0), None);
        }
        // 50% of 4: two may go, not three.
        let p = policy(|o| o.max_ejection_percent = Some(50));
        let e = Ejected::default();
        let hosts: Vec<Health> = (0..3).map(|_| Health::default()).collect();
        for h in &hosts {
            for _ in 0..5 {
                h.record(Outcome::Status(500), &p, &e, 4, 0);
            }
        }
        assert_eq!(hosts.iter().filter(|h| h.is_ejected()).count(), 2);
        assert_eq!(e.get(), 2);
    }

    #[test]
    fn ejection_time_grows_with_each_ejection_and_shrinks_when_healthy() {
        let p = policy(|o| o.base_ejection_time = Some(sluice_api::Duration::from_millis(100)));
        let (h, e) = (Health::default(), Ejected::default());
        let eject = |now| {
            for _ in 0..5 {
                h.record(Outcome::Status(500), &p, &e, 1, now);
            }
        };
        eject(0);
        assert!(!h.sweep(&p, &e, 99));
        assert!(h.sweep(&p, &e, 100));
        assert_eq!(e.get(), 0);
        eject(1000);
        // Second ejection: 2 × 100 ms.
        assert!(!h.sweep(&p, &e, 1199));
        assert!(h.sweep(&p, &e, 1200));
        // Two healthy sweeps bring the multiplier back to 0: the next ejection is 100 ms again.
        h.sweep(&p, &e, 1300);
        h.sweep(&p, &e, 1400);
        eject(2000);
        assert!(h.sweep(&p, &e, 2100));
    }

    #[test]
    fn panic_below_min_health_percent() {
        let e = Ejected::default();
        e.set(1);
        // 1 of 2 ejected: 50% healthy.
        assert!(e.panic(2, 60));
        assert!(!e.panic(2, 50));
        assert!(!e.panic(2, 0));
    }
}
