//! Latencies in HDR histograms: microseconds, three significant digits, up to an hour.
//!
//! In the JSON report a histogram carries its percentiles (for people and `jq`) and its
//! recorded buckets, so that the reports of several load-tester processes (the pods of
//! the in-cluster Job) merge into exactly the histogram one process would have
//! recorded, rather than into an average of percentiles, which means nothing.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest value kept apart; anything longer is recorded as an hour.
const HIGHEST_MICROS: u64 = 3_600_000_000;

#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, latency: Duration) {
        self.record_micros(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn record_micros(&mut self, micros: u64) {
        self.0.saturating_record(micros.min(HIGHEST_MICROS));
    }

    /// Adds every value `other` recorded.
    pub fn add(&mut self, other: &Latency) {
        self.0.add(&other.0).expect("histograms of one layout add up");
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The value at `quantile` (0.0 to 1.0), in microseconds; 0 when empty.
    pub fn quantile_micros(&self, quantile: f64) -> u64 {
        self.0.value_at_quantile(quantile)
    }

    /// `p50 … p99 … max` in milliseconds, for the human summary.
    pub fn describe(&self) -> String {
        if self.count() == 0 {
            return "none recorded".into();
        }
        let ms = |micros: u64| micros as f64 / 1e3;
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} values)",
            ms(self.quantile_micros(0.5)),
            ms(self.quantile_micros(0.99)),
            ms(self.quantile_micros(0.999)),
            ms(self.0.max()),
            self.count()
        )
    }
}

/// The JSON form. Only `buckets` is read back; the rest is derived from it.
#[derive(Serialize, Deserialize)]
struct Wire {
    count: u64,
    #[serde(default)]
    min_us: u64,
    #[serde(default)]
    mean_us: f64,
    #[serde(default)]
    p50_us: u64,
    #[serde(default)]
    p90_us: u64,
    #[serde(default)]
    p99_us: u64,
    #[serde(default)]
    p999_us: u64,
    #[serde(default)]
    max_us: u64,
    /// `[value, count]` for every bucket that recorded something.
    buckets: Vec<(u64, u64)>,
}

impl Serialize for Latency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let histogram = &self.0;
        let empty = histogram.is_empty();
        Wire {
            count: histogram.len(),
            min_us: if empty { 0 } else { histogram.min() },
            mean_us: if empty { 0.0 } else { (histogram.mean() * 10.0).round() / 10.0 },
            p50_us: histogram.value_at_quantile(0.5),
            p90_us: histogram.value_at_quantile(0.9),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
            buckets: histogram
                .iter_recorded()
                .map(|bucket| (bucket.value_iterated_to(), bucket.count_at_value()))
                .collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let mut latency = Latency::default();
        for (value, count) in wire.buckets {
            latency.0.record_n(value.min(HIGHEST_MICROS), count).map_err(serde::de::Error::custom)?;
        }
        if latency.count() != wire.count {
            return Err(serde::de::Error::custom(format!(
                "histogram buckets hold {} values, its count says {}",
                latency.count(),
                wire.count
            )));
        }
        Ok(latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(values: impl IntoIterator<Item = u64>) -> Latency {
        let mut latency = Latency::default();
        values.into_iter().for_each(|micros| latency.record_micros(micros));
        latency
    }

    #[test]
    fn survives_its_json_form() {
        let latency = recorded((1..=1000).map(|i| i * 37));
        let json = serde_json::to_value(&latency).unwrap();
        assert_eq!(json["count"], 1000);
        let back: Latency = serde_json::from_value(json).unwrap();
        for quantile in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(back.quantile_micros(quantile), latency.quantile_micros(quantile), "q{quantile}");
        }
    }

    #[test]
    fn merged_reports_equal_one_recording_of_everything() {
        let (fast, slow) = (recorded(100..600), recorded(5_000..5_100));
        let mut merged: Latency = serde_json::from_value(serde_json::to_value(&fast).unwrap()).unwrap();
        merged.add(&serde_json::from_value(serde_json::to_value(&slow).unwrap()).unwrap());
        let together = recorded((100..600).chain(5_000..5_100));
        assert_eq!(merged.count(), 600);
        for quantile in [0.5, 0.8, 0.9, 0.99] {
            assert_eq!(merged.quantile_micros(quantile), together.quantile_micros(quantile), "q{quantile}");
        }
        assert!(merged.quantile_micros(0.9) >= 5_000, "the slow sixth shows at p90");
    }

    #[test]
    fn a_count_that_disagrees_with_the_buckets_is_refused() {
        let json = serde_json::json!({"count": 3, "buckets": [[10, 1]]});
        assert!(serde_json::from_value::<Latency>(json).is_err());
    }
}
