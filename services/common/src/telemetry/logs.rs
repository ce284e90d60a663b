//! Logging through `tracing`: human-readable lines or JSON, with a filter that the
//! admin port can change while the process runs.

use std::io::IsTerminal;
use std::sync::Mutex;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Registry, reload};

use super::FLOW;
use super::traces::Tracer;

/// The log filter in force, changeable at run time.
pub struct LogFilter {
    handle: reload::Handle<EnvFilter, Registry>,
    /// The directives as given (without what is added to them, see [`effective`]).
    current: Mutex<String>,
    traced: bool,
}

impl LogFilter {
    /// The directives in force, as given.
    pub fn get(&self) -> String {
        self.current.lock().expect("log filter lock").clone()
    }

    /// Replaces the directives (`RUST_LOG` syntax). Invalid ones change nothing.
    pub fn set(&self, directives: &str) -> Result<(), String> {
        let filter = effective(directives, self.traced)?;
        self.handle.reload(filter).map_err(|e| e.to_string())?;
        *self.current.lock().expect("log filter lock") = directives.trim().to_string();
        tracing::info!(filter = directives.trim(), "log filter changed");
        Ok(())
    }
}

/// Parses filter directives, with the parser's complaint on error.
pub fn parse_filter(directives: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder().parse(directives.trim()).map_err(|e| format!("invalid log filter {directives:?}: {e}"))
}

/// The filter of the log output. Without trace export the [`FLOW`] spans are turned off
/// here, which disables them altogether (no other layer wants them); with it they stay,
/// so that log lines inside them carry their `trace_id`.
fn effective(directives: &str, traced: bool) -> Result<EnvFilter, String> {
    let directives = directives.trim();
    let filter = parse_filter(directives)?;
    // The user's directives are checked on their own, so that an error names them
    // rather than the appended one.
    if traced { Ok(filter) } else { parse_filter(&format!("{directives},{FLOW}=off")) }
}

/// Installs the global subscriber: log lines (JSON with `json`) filtered by `RUST_LOG`
/// or else `directives`, plus, with a tracer, the spans of [`FLOW`] as OpenTelemetry
/// spans. Colors only on a terminal.
pub(super) fn install(directives: &str, json: bool, tracer: Option<&Tracer>) -> anyhow::Result<LogFilter> {
    let directives = std::env::var("RUST_LOG").ok().filter(|d| !d.trim().is_empty()).unwrap_or(directives.to_string());
    let traced = tracer.is_some();
    let (filter, handle) = reload::Layer::new(effective(&directives, traced).map_err(anyhow::Error::msg)?);
    let output = tracing_subscriber::fmt::layer().with_target(false).with_ansi(std::io::stdout().is_terminal());
    let output =
        if json { output.json().with_current_span(true).with_span_list(false).boxed() } else { output.boxed() };
    let logs = tracing_subscriber::registry().with(output.with_filter(filter));
    // Not as an `Option` layer: an absent one counts as interested in everything, so
    // every span the log filter turns off (the FLOW spans of every message) would still
    // be made and closed, for nobody.
    match tracer {
        Some(tracer) => {
            let spans = tracing_opentelemetry::layer()
                .with_tracer(tracer.tracer())
                .with_filter(Targets::new().with_target(FLOW, Level::INFO));
            logs.with(spans).try_init()?
        }
        None => logs.try_init()?,
    }
    Ok(LogFilter { handle, current: Mutex::new(directives.trim().to_string()), traced })
}
