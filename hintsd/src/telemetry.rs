//! Log setup: `tracing-subscriber` with the `HINTSD_LOG` filter (default `info`), as text or
//! JSON lines on stderr. Libraries only emit; this is the one place a subscriber is installed.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::config::LogFormat;

/// The environment variable holding the log filter (`info`, `hintsd=debug`, ...).
pub const LOG_ENV: &str = "HINTSD_LOG";

/// Installs the subscriber.
///
/// # Errors
/// A malformed `HINTSD_LOG`, or a subscriber already installed.
pub fn init(format: LogFormat) -> Result<(), String> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .with_env_var(LOG_ENV)
        .from_env()
        .map_err(|err| format!("{LOG_ENV} is not a valid filter: {err}"))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = match format {
        LogFormat::Json => {
            fmt::layer().json().with_current_span(true).with_span_list(false).with_writer(std::io::stderr).boxed()
        }
        LogFormat::Text => fmt::layer().with_ansi(ansi).with_writer(std::io::stderr).boxed(),
    };
    tracing_subscriber::registry().with(filter).with(layer).try_init().map_err(|err| err.to_string())
}
