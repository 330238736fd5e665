//! The `hintsd` binary: parses arguments, loads the configuration, sets up logs, runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hintsd::config::{Config, LogFormat, Overrides};

/// The hints daemon: keeps an MTA's hints databases in memory behind a Unix socket.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Configuration file (TOML). Every key is optional; without a file the embedded defaults
    /// apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Socket path. Default: $HINTSD_SOCKET, else $XDG_RUNTIME_DIR/hintsd/hintsd.sock, else
    /// /run/hintsd/hintsd.sock (root) or /tmp/hintsd-<uid>/hintsd.sock.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The text socket for Exim's ${readsocket}. Default: hintsd-text.sock beside the socket.
    #[arg(long, value_name = "PATH")]
    text_socket: Option<PathBuf>,
    /// Log format on stderr; the filter comes from $HINTSD_LOG (default: info).
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Directory of the snapshot files (default /var/lib/hintsd for root, else
    /// $XDG_STATE_HOME/hintsd or ~/.local/state/hintsd).
    #[arg(long, value_name = "DIR")]
    snapshot_dir: Option<PathBuf>,
    /// Keep hints only in memory: load no snapshot at start and write none.
    #[arg(long, conflicts_with = "snapshot_dir")]
    no_snapshot: bool,
    /// Check the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
    /// Fault injection for tests: a get or put of this key panics inside its database.
    #[arg(long, hide = true, value_name = "KEY")]
    fault_panic_key: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let overrides = Overrides {
        socket: args.socket,
        text_socket: args.text_socket,
        snapshot_dir: args.snapshot_dir,
        no_snapshot: args.no_snapshot,
        log_format: args.log_format,
        fault_panic_key: args.fault_panic_key.map(String::into_bytes),
    };
    let config = match Config::load(args.config.as_deref(), overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("hintsd: {err}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        println!("{config:#?}");
        return ExitCode::SUCCESS;
    }
    if let Err(err) = hintsd::telemetry::init(config.log_format) {
        eprintln!("hintsd: {err}");
        return ExitCode::from(2);
    }
    match hintsd::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "hintsd could not run");
            eprintln!("hintsd: {err}");
            ExitCode::from(1)
        }
    }
}
