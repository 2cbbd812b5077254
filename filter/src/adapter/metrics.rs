//! Metric ids of this VM: defined once in on_configure, then bumped by enum.

use crate::metrics::{Counter, IDP_LATENCY_MS};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub struct Metrics {
    counters: Vec<Option<u32>>,
    latency: Option<u32>,
}

impl Metrics {
    /// Define every metric; a host that refuses one just leaves it unset
    /// (metrics must never be the reason a request fails).
    pub fn define() -> Metrics {
        let counters = Counter::ALL
            .iter()
            .map(|c| hostcalls::define_metric(MetricType::Counter, c.name()).ok())
            .collect();
        let latency = hostcalls::define_metric(MetricType::Histogram, IDP_LATENCY_MS).ok();
        Metrics { counters, latency }
    }

    pub fn bump(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub fn add(&self, counter: Counter, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(Some(id)) = self.counters.get(counter.index()) {
            let _ = hostcalls::increment_metric(*id, n.min(i64::MAX as u64) as i64);
        }
    }

    pub fn idp_latency_ms(&self, ms: u64) {
        if let Some(id) = self.latency {
            let _ = hostcalls::record_metric(id, ms);
        }
    }
}
