//! Scenario files: a TOML file naming a scenario and its options, so that a run can be
//! kept, reviewed and repeated. The options are the command line's, by their long
//! names, and go through the same parser: `--help` describes both, and options given
//! after the file override it.
//!
//! ```toml
//! scenario = "negotiate"
//! gateway = ["ws://127.0.0.1:8080/ws", "ws://127.0.0.1:8081/ws"]
//! rooms = 50
//! rate = 10000
//! duration = "20s"
//! ```

use anyhow::{Context, bail};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The scenario file (TOML): `scenario = "<name>"` and the scenario's options by
    /// their long names (`rooms = 50`, `duration = "20s"`, a list for a repeatable one,
    /// `true` for a flag).
    file: std::path::PathBuf,
    /// Options overriding the file's, as on the scenario's command line.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    overrides: Vec<String>,
}

impl RunArgs {
    #[cfg(test)]
    pub fn new(file: std::path::PathBuf, overrides: Vec<String>) -> Self {
        Self { file, overrides }
    }
}

/// The command line the file stands for: the program, the scenario, the file's options,
/// then the overrides (the last occurrence of an option wins).
pub fn command_line(program: &str, args: &RunArgs) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let mut line = vec![program.to_string()];
    line.extend(options(&text).with_context(|| format!("in {}", args.file.display()))?);
    line.extend(args.overrides.iter().cloned());
    Ok(line)
}

/// The scenario's name, then its options as arguments.
fn options(text: &str) -> anyhow::Result<Vec<String>> {
    let table: toml::Table = text.parse().context("not valid TOML")?;
    let scenario = match table.get("scenario") {
        Some(toml::Value::String(name)) => name.clone(),
        Some(_) => bail!("`scenario` must be a string"),
        None => bail!("`scenario` is missing: the name of the scenario to run"),
    };
    if scenario == "run" {
        bail!("a scenario file cannot run another");
    }
    let mut arguments = vec![scenario];
    for (key, value) in table.iter().filter(|(key, _)| key.as_str() != "scenario") {
        let option = format!("--{}", key.replace('_', "-"));
        let values = match value {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for value in values {
            match value {
                toml::Value::Boolean(true) => arguments.push(option.clone()),
                toml::Value::Boolean(false) => {}
                toml::Value::String(text) => arguments.extend([option.clone(), text.clone()]),
                toml::Value::Integer(number) => arguments.extend([option.clone(), number.to_string()]),
                toml::Value::Float(number) => arguments.extend([option.clone(), number.to_string()]),
                other => bail!("`{key}`: {} is not an option value", other.type_str()),
            }
        }
    }
    Ok(arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_becomes_the_scenarios_command_line() {
        let text = r#"
            scenario = "storm"
            gateway = ["ws://a/ws", "ws://b/ws"]
            pairs = 20
            rate = 1500.5
            disrupt_at = "5s"
            disrupt = "kill -TERM 42"
            verbose = true
            quiet = false
        "#;
        let arguments = options(text).unwrap();
        assert_eq!(arguments[0], "storm");
        let rest = arguments[1..].join(" ");
        assert!(rest.contains("--gateway ws://a/ws --gateway ws://b/ws"), "{rest}");
        assert!(rest.contains("--pairs 20") && rest.contains("--rate 1500.5"), "{rest}");
        assert!(rest.contains("--disrupt-at 5s"), "underscores become dashes: {rest}");
        assert!(arguments.contains(&"kill -TERM 42".to_string()), "a value stays one argument");
        assert!(rest.contains("--verbose") && !rest.contains("--quiet"), "{rest}");
    }

    #[test]
    fn a_file_without_a_scenario_or_with_odd_values_is_refused_with_the_reason() {
        assert!(options("rooms = 5").unwrap_err().to_string().contains("`scenario` is missing"));
        assert!(options("scenario = 5").unwrap_err().to_string().contains("must be a string"));
        assert!(options("scenario = \"run\"").unwrap_err().to_string().contains("cannot run another"));
        let table = options("scenario = \"negotiate\"\n[rooms]\nmany = 1").unwrap_err();
        assert!(table.to_string().contains("`rooms`"), "{table}");
        assert!(options("scenario = ").is_err(), "not TOML");
    }
}
