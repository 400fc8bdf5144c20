//! Server-wide counters for `srvr`, `stat`, `mntr` and `cons`. Lock-free: updated on the request path.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug)]
pub struct ServerStats {
    pub started: Instant,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub outstanding_requests: AtomicI64,
    pub alive_connections: AtomicI64,
    latency_count: AtomicU64,
    latency_total_us: AtomicU64,
    latency_min_us: AtomicU64,
    latency_max_us: AtomicU64,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            outstanding_requests: AtomicI64::new(0),
            alive_connections: AtomicI64::new(0),
            latency_count: AtomicU64::new(0),
            latency_total_us: AtomicU64::new(0),
            latency_min_us: AtomicU64::new(u64::MAX),
            latency_max_us: AtomicU64::new(0),
        }
    }
}

/// Latency in ms as `srvr` prints it: min/avg/max.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
}

impl ServerStats {
    pub fn record_latency(&self, since: Instant) {
        let us = since.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_total_us.fetch_add(us, Ordering::Relaxed);
        self.latency_min_us.fetch_min(us, Ordering::Relaxed);
        self.latency_max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn latency(&self) -> Latency {
        let count = self.latency_count.load(Ordering::Relaxed);
        if count == 0 {
            return Latency {
                min_ms: 0.0,
                avg_ms: 0.0,
                max_ms: 0.0,
            };
        }
        let total = self.latency_total_us.load(Ordering::Relaxed) as f64;
        Latency {
            min_ms: self.latency_min_us.load(Ordering::Relaxed) as f64 / 1000.0,
            avg_ms: total / count as f64 / 1000.0,
            max_ms: self.latency_max_us.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }

    pub fn reset(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.latency_count.store(0, Ordering::Relaxed);
        self.latency_total_us.store(0, Ordering::Relaxed);
        self.latency_min_us.store(u64::MAX, Ordering::Relaxed);
        self.latency_max_us.store(0, Ordering::Relaxed);
    }
}
