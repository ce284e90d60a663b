//! A scrape of a service's `/metrics` (Prometheus text), for tests that read what a
//! service counted.

use std::collections::{BTreeSet, HashMap};

/// A scrape: every sample line as `name{labels}` → value.
pub struct Scrape(HashMap<String, f64>);

impl Scrape {
    pub async fn of(admin: std::net::SocketAddr) -> Self {
        let (status, body) = crate::http_get(&format!("http://{admin}"), "/metrics").await;
        assert_eq!(status, 200, "/metrics answers: {body}");
        let samples = body
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect();
        Self(samples)
    }

    /// The value of one series, e.g. `foo_total{type="signal"}`; 0 when absent.
    pub fn value(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// Every label name used.
    pub fn label_names(&self) -> BTreeSet<String> {
        self.0
            .keys()
            .filter_map(|series| series.split_once('{'))
            .flat_map(|(_, labels)| {
                labels
                    .trim_end_matches('}')
                    .split(',')
                    .map(|pair| pair.split('=').next().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The metric names (histograms by their base name).
    pub fn names(&self) -> BTreeSet<String> {
        self.0
            .keys()
            .map(|series| {
                let name = metric_name(series);
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix).filter(|base| base.ends_with("_seconds")))
                    .unwrap_or(name)
                    .to_string()
            })
            .collect()
    }
}

fn metric_name(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}
