//! The process's own resource use, in the names Prometheus client libraries use
//! (`process_*`), read from `/proc` at each scrape and rendered here directly: the
//! `metrics` facade has no fractional counters, and CPU seconds need them. Linux only;
//! elsewhere they are absent.

use std::fmt::Write;

/// The `process_*` metrics in the Prometheus text format (empty off Linux).
pub fn render() -> String {
    let mut out = String::new();
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return out };
    // The fields after the command name, which is in parentheses and may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else { return out };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15, threads 20, rss 24.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    if let (Some(user), Some(system)) = (field(14), field(15)) {
        metric(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time, in seconds.",
            (user + system) / clock_ticks(),
        );
    }
    if let Some(pages) = field(24) {
        metric("process_resident_memory_bytes", "gauge", "Resident memory, in bytes.", pages * page_size());
    }
    if let Some(threads) = field(20) {
        metric("process_threads", "gauge", "Operating-system threads.", threads);
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        metric("process_open_fds", "gauge", "Open file descriptors, sockets included.", entries.count() as f64);
    }
    out
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn page_size() -> f64 {
    // SAFETY: as above.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as f64 } else { 4096.0 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let text = super::render();
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
            assert!(text.lines().any(|line| line.starts_with(&format!("{name} "))), "{name} missing in {text}");
        }
    }
}
