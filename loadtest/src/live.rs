//! What a run shows while it runs: a progress bar (indicatif) with the current rate, p99
//! and errors, or a plain line every few seconds when standard error is not a terminal
//! (a pod's log); and the same numbers second by second, kept as the run's timeline
//! (in the report, and drawn by `--plot`).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

/// One second of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Seconds since the load started, at the end of this second.
    pub t_s: f64,
    /// Messages received a second.
    pub per_s: f64,
    /// Latency percentiles of this second's messages (0 when none were measured).
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub errors: u64,
}

/// A run's timeline, one point a second.
pub type Timeline = Vec<Point>;

/// Adds a timeline of a run made at the same time: rates and errors add up second by
/// second, and the higher percentile of the two is kept (the exact merged percentile
/// would need both seconds' histograms).
pub fn merge(mine: &mut Timeline, theirs: Timeline) {
    for (index, point) in theirs.into_iter().enumerate() {
        match mine.get_mut(index) {
            Some(mine) => {
                mine.per_s += point.per_s;
                mine.errors += point.errors;
                mine.p50_us = mine.p50_us.max(point.p50_us);
                mine.p99_us = mine.p99_us.max(point.p99_us);
                mine.p999_us = mine.p999_us.max(point.p999_us);
            }
            None => mine.push(point),
        }
    }
}

/// The numbers of the second under way, shared by every task of the run.
pub struct Live {
    current: Mutex<Second>,
}

struct Second {
    messages: u64,
    errors: u64,
    latency: Histogram<u64>,
}

impl Default for Live {
    fn default() -> Self {
        let latency = Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid histogram bounds");
        Self { current: Mutex::new(Second { messages: 0, errors: 0, latency }) }
    }
}

impl Live {
    /// A message arrived, after `latency_us` if it was measured.
    pub fn message(&self, latency_us: Option<u64>) {
        let mut current = self.lock();
        current.messages += 1;
        if let Some(latency) = latency_us {
            current.latency.saturating_record(latency.max(1));
        }
    }

    pub fn error(&self) {
        self.lock().errors += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Second> {
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends the second under way: its point, and a fresh second.
    fn close_second(&self, t_s: f64, length: Duration) -> Point {
        let mut current = self.lock();
        let quantile = |q: f64| if current.latency.is_empty() { 0 } else { current.latency.value_at_quantile(q) };
        let point = Point {
            t_s,
            per_s: current.messages as f64 / length.as_secs_f64().max(f64::EPSILON),
            p50_us: quantile(0.5),
            p99_us: quantile(0.99),
            p999_us: quantile(0.999),
            errors: current.errors,
        };
        current.messages = 0;
        current.errors = 0;
        current.latency.reset();
        point
    }
}

/// Watches a run's [`Live`] numbers for `length` (the load phase) and shows them.
pub struct Watch {
    task: tokio::task::JoinHandle<Timeline>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// How often a plain progress line is written when there is no terminal to draw on.
const PLAIN_EVERY: u64 = 5;

impl Watch {
    pub fn start(what: &'static str, live: Arc<Live>, length: Duration) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let terminal = std::io::stderr().is_terminal();
            let bar = ProgressBar::with_draw_target(
                Some(length.as_millis() as u64),
                if terminal { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
            );
            bar.set_style(
                ProgressStyle::with_template("{prefix} {elapsed_precise} [{bar:30}] {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(what);
            let started = Instant::now();
            let mut timeline = Timeline::new();
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            ticks.tick().await;
            let mut errors = 0;
            let mut last = started;
            loop {
                // The last, partial second is closed too when the run stops.
                let stopping = tokio::select! {
                    _ = ticks.tick() => false,
                    _ = &mut stopped => true,
                };
                let now = Instant::now();
                let point = live.close_second(now.duration_since(started).as_secs_f64(), now - last);
                // A last sliver of a second says little about a rate: left out.
                if stopping && now - last < Duration::from_millis(250) {
                    break;
                }
                last = now;
                errors += point.errors;
                let message = format!("{:.0}/s, p99 {:.2} ms, {errors} errors", point.per_s, point.p99_us as f64 / 1e3);
                bar.set_position(now.duration_since(started).as_millis() as u64);
                bar.set_message(message.clone());
                if !terminal && timeline.len() as u64 % PLAIN_EVERY == PLAIN_EVERY - 1 {
                    eprintln!("{what}: {:.0} s: {message}", point.t_s);
                }
                timeline.push(point);
                if stopping {
                    break;
                }
            }
            bar.finish_and_clear();
            timeline
        });
        Self { task, stop }
    }

    /// Stops watching; the timeline so far.
    pub async fn finish(self) -> Timeline {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_is_closed_with_its_rate_and_percentiles_then_starts_afresh() {
        let live = Live::default();
        for micros in 1..=100 {
            live.message(Some(micros * 10));
        }
        live.error();
        let point = live.close_second(1.0, Duration::from_millis(500));
        assert_eq!(point.per_s, 200.0, "100 messages in half a second");
        assert!((495..=505).contains(&point.p50_us), "{point:?}");
        assert!((985..=1000).contains(&point.p99_us), "{point:?}");
        assert_eq!(point.errors, 1);
        let empty = live.close_second(2.0, Duration::from_secs(1));
        assert_eq!((empty.per_s, empty.p99_us, empty.errors), (0.0, 0, 0));
    }

    #[test]
    fn merged_timelines_add_rates_and_keep_the_higher_percentiles() {
        let point = |per_s, p99_us| Point { per_s, p99_us, ..Point::default() };
        let mut mine = vec![point(100.0, 900), point(100.0, 800)];
        merge(&mut mine, vec![point(50.0, 1_000), point(50.0, 700), point(10.0, 5)]);
        assert_eq!(
            mine.iter().map(|p| (p.per_s, p.p99_us)).collect::<Vec<_>>(),
            [(150.0, 1_000), (150.0, 800), (10.0, 5)]
        );
    }
}
