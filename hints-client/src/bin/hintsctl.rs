//! hintsctl, the admin command line for hintsd: parses the arguments, runs the command, and
//! turns the outcome into an exit status (0 ok, 1 not found or busy, 2 usage, 3 unavailable
//! or refused, 4 any other error; see `hintsctl --help`).

// The modules live in hintsctl/ beside this file (a binary's root looks in its own folder).
#[path = "hintsctl/args.rs"]
mod args;
#[path = "hintsctl/at.rs"]
mod at;
#[path = "hintsctl/bytes.rs"]
mod bytes;
#[path = "hintsctl/commands.rs"]
mod commands;
#[path = "hintsctl/exim_format.rs"]
mod exim_format;
#[path = "hintsctl/exim_import.rs"]
mod exim_import;
#[path = "hintsctl/failure.rs"]
mod failure;
#[path = "hintsctl/render.rs"]
mod render;
#[path = "hintsctl/time.rs"]
mod time;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit here with clap's status 2; --help and --version with 0.
    let cli = args::Cli::parse();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let outcome = commands::run(&cli, &mut out);
    let _ = out.flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.is_silent() {
                eprintln!("hintsctl: {failure}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}
