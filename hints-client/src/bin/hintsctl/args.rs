//! hintsctl's command line: global options and subcommands as clap derives them, and the
//! parsers that check database names and durations before anything is sent.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hints_client::{DbName, Stamp};
use hints_proto::duration::parse_duration_secs;

use crate::at::parse_at;
use crate::exim_import::parse_import_db;
use crate::failure::EXIT_STATUS_HELP;

/// The per-call timeout unless `--timeout` or `--timeout-ms` says otherwise. Longer than the
/// library's default, since an operator's tidy or scan page may take a while on a big
/// database.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// `--socket`'s help: the default is the rule hintsd listens by.
const SOCKET_HELP: &str = "The daemon's socket [default: $HINTSD_SOCKET, else $XDG_RUNTIME_DIR/hintsd/hintsd.sock, \
                           else /run/hintsd/hintsd.sock for root and /tmp/hintsd-<uid>/hintsd.sock for others: \
                           the rule hintsd listens by]";

/// The help of `get`'s database argument, which names Exim's databases.
const DB_HELP: &str = "The database (retry, callout, ratelimit, seen, misc, tls, wait-<transport>, or any other \
                       name of a-z, 0-9, _ and -)";

/// `--at`'s help, shared by the commands that take it.
const AT_HELP: &str = "When the event happened, as epoch seconds with up to 6 decimals (1767323045 or \
                       1767323045.250000) [default: hintsd's clock]";

/// `import-exim --help`: what it does, what a dump does not carry, and its exit status.
const IMPORT_EXIM_HELP: &str = "\
Load Exim's hints databases into hintsd from what exim_dumpdb prints.

With --spool DIR, runs `exim_dumpdb -z DIR NAME` for each database (retry, callout, misc, seen,
ratelimit and every wait-* file in DIR/db, or those named with --db) and loads what it prints.
With --stdin --db NAME, reads one dump made by `exim_dumpdb [-z] DIR NAME` from stdin (give
--utc if it was made with -z; otherwise its times are read in local time, from TZ).

Each record is put in Exim's own layout (the bytes Exim 4.96 to 4.99 writes, x86-64) under the
key exim_dumpdb prints: without the NUL that ends a key in Exim's files, as hintsd keeps its own
ratelimit and seen records. Records go in pipelined batches. hintsd stamps each record when it
is imported, so its max_age counts from the import; the Exim time stamps inside are kept.

Lines are read strictly: a line is taken only if the record it gives prints back as exactly that
line; any other line is skipped and reported with its number and the reason, never guessed.
Progress goes to stderr (a bar on a terminal, else a line every 10000 records). The summary goes
to stdout: records imported per database, records the dump does not carry, lines skipped and
why, and what the dump lost.

What exim_dumpdb's output does not carry, and what the import puts in its place:
  retry      the record's own time_stamp: set to last_try (Exim writes both in one moment)
  wait-*     the time_stamp: set to the time of the import; sequence: rebuilt from the
             <host>:<n> continuation records in the same dump
  misc       everything but key and time (serialize counts, EHLO-cache bits): misc records are
             counted in the summary, not imported
  callout    ccache_reject_mfnull (3) prints as unknown: imported as unknown (0); a domain record
             of the obsolete 24-byte size is not printed at all
  ratelimit  the rate beyond 3 decimals (imported rounded to 0.001); a unique record's Bloom
             filter bits (imported empty, so a value already counted in the current period counts
             once more) and its bloom_epoch (exim_dumpdb 4.96-4.99 prints the time stamp in its
             place, and that is imported)
  seen       nothing
  tls        everything: not importable (raw session bytes, good only to the host that made them)
Times printed in local time are ambiguous in the hour a DST change repeats; -z dumps are not.

Exit status: 0 when every line was read and its record imported (misc records counted); 1 when
lines were skipped, exim_dumpdb reported a problem or a database named with --db has no file
(everything else is imported); 2, 3 and 4 as for every command (an error from hintsd stops the
import).";

/// What `dump` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    /// key, stamp, epoch and value, tab-separated
    Text,
    /// one JSON object a line
    Json,
    /// exim_dumpdb's format for the database
    Exim,
}

/// Inspect and manage the hints databases of a running hintsd.
#[derive(Debug, Parser)]
#[command(name = "hintsctl", version, after_help = EXIT_STATUS_HELP)]
pub struct Cli {
    #[arg(long, global = true, value_name = "PATH", help = SOCKET_HELP)]
    pub socket: Option<PathBuf>,

    /// How long each call to hintsd may take, in Exim's time syntax (5s, 1m, 1m30s) [default: 5s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// The same in milliseconds, for timeouts under a second
    #[arg(long, global = true, value_name = "MS", value_parser = parse_timeout_ms, conflicts_with = "timeout")]
    pub timeout_ms: Option<Duration>,

    /// Give keys, prefixes and values as hex, and print them as hex
    #[arg(long, global = true)]
    pub hex: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The per-call timeout the options choose.
    pub fn timeout(&self) -> Duration {
        self.timeout.or(self.timeout_ms).unwrap_or(DEFAULT_TIMEOUT)
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that hintsd answers, and print its version and the round-trip time.
    Ping,

    #[command(
        about = "Print the value stored under KEY (exit status 1 when there is none)",
        long_about = "Print the value stored under KEY (exit status 1 when there is none).\n\n\
                      The value is printed escaped (printable ASCII as itself, \\\\ \\n \\t \\r, \
                      other bytes as \\xNN), or as hex with --hex, followed by a newline."
    )]
    Get {
        #[arg(value_parser = parse_db, help = DB_HELP)]
        db: DbName,
        /// The key (its bytes as given, or hex with --hex)
        key: OsString,
    },

    /// Store VALUE under KEY, and print the stamp hintsd gave the write.
    ///
    /// The stamp is printed as RFC 3339 in UTC with microseconds, a TAB, and epoch seconds
    /// with six decimals.
    Put {
        /// The database
        #[arg(value_parser = parse_db)]
        db: DbName,
        /// The key (its bytes as given, or hex with --hex)
        key: OsString,
        /// The value (its bytes as given, or hex with --hex)
        value: OsString,
    },

    /// Delete the record under KEY (exit status 1 when there was none).
    Del {
        /// The database
        #[arg(value_parser = parse_db)]
        db: DbName,
        /// The key (its bytes as given, or hex with --hex)
        key: OsString,
    },

    #[command(
        about = "Print the records whose key starts with a prefix, in key order, one key<TAB>value line each",
        long_about = "Print the records whose key starts with a prefix, in key order, one key<TAB>value line each.\n\n\
                      Keys and values are escaped as get prints them (hex with --hex). Pages are fetched \
                      until --limit records are printed or there are no more."
    )]
    Scan {
        /// The database
        #[arg(value_parser = parse_db)]
        db: DbName,
        /// Only keys that start with this (hex with --hex) [default: every key]
        #[arg(long, value_name = "PREFIX", default_value = "", hide_default_value = true)]
        prefix: OsString,
        /// Print at most this many records [default: all]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
    },

    #[command(
        about = "Print every record of a database with its stamp, one line each, or as exim_dumpdb does",
        long_about = "Print every record of a database with its stamp, one line each, or as exim_dumpdb does.\n\n\
                      Lines are key<TAB>stamp<TAB>epoch<TAB>value: the stamp in RFC 3339 UTC with \
                      microseconds, the epoch as seconds with six decimals, key and value escaped as get \
                      prints them (hex with --hex). With --json (--format json), one JSON object a line instead: \
                      {\"key\":..,\"key_hex\":..,\"stamp\":\"2026-..Z\",\"epoch\":SECS,\"micros\":N,\
                      \"value\":..,\"value_hex\":..}, key and value as escaped strings and as hex.\n\n\
                      With --format exim, the records as Exim's exim_dumpdb prints that database (retry, misc, \
                      wait-<transport>, callout, ratelimit, seen), byte for byte, so that tools reading that \
                      output (exinext) keep working: keys raw, values decoded from Exim's layouts, times as \
                      dd-Mon-yyyy hh:mm:ss in local time (TZ, else /etc/localtime), or in UTC with -z/--utc as \
                      exim_dumpdb -z. Records come in key order (exim_dumpdb's is the DB file's hash order). A \
                      record that cannot be printed so (a value not in Exim's layout, a misc record that is \
                      neither a serialize record nor an EHLO cache entry, a key with a NUL) is named on stderr \
                      and skipped, and the exit status is then 1. One difference: for a unique ratelimit \
                      record exim_dumpdb 4.96-4.99 prints the time stamp in the epoch: column too (it reuses one \
                      static buffer); hintsctl prints the real bloom_epoch, which for a record imported from a \
                      dump is that same time."
    )]
    Dump {
        /// The database
        #[arg(value_parser = parse_db)]
        db: DbName,
        /// One JSON object a line (JSON Lines): the same as --format json
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// text (the default), json, or exim: exim_dumpdb's own format for this database
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<DumpFormat>,
        /// With --format exim: print times in UTC, as exim_dumpdb -z [default: local time, from TZ]
        #[arg(short = 'z', long)]
        utc: bool,
    },

    /// Remove records last written longer ago than --older-than, and print how many went.
    Tidy {
        /// The database
        #[arg(value_parser = parse_db)]
        db: DbName,
        /// The age past which records go, in Exim's time syntax (30d, 1d12h, 2w)
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        older_than: Duration,
    },

    /// Print each database's record count, bytes held and operation counts.
    ///
    /// A table by default: db, records, bytes, then one column per kind of operation. With
    /// --json, one JSON object per database a line (JSON Lines):
    /// {"db":..,"records":N,"bytes":N,"ops":{"get":N,"put":N,..}}.
    Stats {
        /// Only this database [default: every running database]
        #[arg(value_parser = parse_db)]
        db: Option<DbName>,
        /// One JSON object per database a line (JSON Lines)
        #[arg(long)]
        json: bool,
    },

    #[command(
        about = "Apply an Exim ratelimit condition, and print whether the rate is over its limit",
        long_about = "Apply an Exim ratelimit condition, and print whether the rate is over its limit.\n\n\
                      The condition is Exim's, limit / period / options / key, in one argument: \
                      '100 / 1h / strict / per_rcpt / 192.0.2.1'. hintsd updates the ratelimit \
                      database as Exim would (readonly leaves it alone). Prints `over <rate>` or \
                      `under <rate>`, the smoothed rate in the shortest form that reads back exactly; \
                      with --json, {\"over\":bool,\"rate\":number,\"key\":\"..\",\"written\":bool}. \
                      The exit status is 0 either way."
    )]
    Ratelimit {
        /// The condition, as in Exim's ACL: limit / period / options / key
        #[arg(allow_hyphen_values = true)]
        condition: String,
        #[arg(long, value_name = "SECONDS[.MICROS]", value_parser = parse_at, help = AT_HELP)]
        at: Option<Stamp>,
        /// Print one JSON object instead
        #[arg(long)]
        json: bool,
    },

    #[command(
        about = "Apply an Exim seen condition, and print its result, true or false",
        long_about = "Apply an Exim seen condition, and print its result, true or false.\n\n\
                      The condition is Exim's in one argument: '-5m / key=192.0.2.1' (seen within \
                      the last 5 minutes), '1d / key=k / readonly'. hintsd updates the seen database \
                      as Exim would. With --json, {\"result\":bool,\"written\":bool}. The exit \
                      status is 0 either way."
    )]
    Seen {
        /// The condition, as in Exim's ACL: [-]interval / key=K / options
        #[arg(allow_hyphen_values = true)]
        condition: String,
        #[arg(long, value_name = "SECONDS[.MICROS]", value_parser = parse_at, help = AT_HELP)]
        at: Option<Stamp>,
        /// Print one JSON object instead
        #[arg(long)]
        json: bool,
    },

    #[command(
        about = "Check a greylist triplet, and print pass or how long to defer",
        long_about = "Check a greylist triplet, and print pass or how long to defer.\n\n\
                      The first attempt of a triplet is deferred; a retry once --delay has passed \
                      passes and is remembered; a triplet unseen for --expiry is forgotten. Prints \
                      `pass` or `defer <seconds left>`; with --json, \
                      {\"pass\":bool,\"retry_after_secs\":N}. The exit status is 0 either way."
    )]
    Greylist {
        /// The triplet's key, sender host, sender and recipient as the MTA joins them (hex with --hex)
        key: OsString,
        /// How long a triplet is deferred, in Exim's time syntax (5m, 1h)
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        delay: Duration,
        /// How long an unseen triplet is remembered, in Exim's time syntax (7d)
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        expiry: Duration,
        /// The database
        #[arg(long, value_parser = parse_db, default_value = "greylist")]
        db: DbName,
        #[arg(long, value_name = "SECONDS[.MICROS]", value_parser = parse_at, help = AT_HELP)]
        at: Option<Stamp>,
        /// Print one JSON object instead
        #[arg(long)]
        json: bool,
    },

    #[command(
        about = "Take one of --limit slots under KEY, and print taken or busy with the holder count",
        long_about = "Take one of --limit slots under KEY, and print taken or busy with the holder count.\n\n\
                      Prints `taken <holders>` (exit status 0) or `busy <holders>` when every slot is \
                      taken (exit status 1). A slot belongs to the connection that took it: without \
                      --hold it is released as hintsctl exits and closes its connection; with --hold, \
                      hintsctl keeps the connection, and the slot, for that long, then releases it and \
                      exits (interrupting it releases the slot too). If hintsd restarts meanwhile, the \
                      slot is lost with the connection, and the release reports it (exit status 3)."
    )]
    Serialize {
        /// The database (Exim keeps serialize records in misc)
        #[arg(value_parser = parse_db)]
        db: DbName,
        /// The key (hex with --hex)
        key: OsString,
        /// How many holders the key may have at once
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Hold the slot this long before releasing it, in Exim's time syntax (30s, 5m)
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        hold: Option<Duration>,
    },

    /// Add to the 64-bit counter under KEY (1 by default), and print its new value.
    ///
    /// A missing counter starts at 0. --add takes a negative number too (--add=-3, --add -3).
    Counter {
        /// The database
        #[arg(value_parser = parse_db)]
        db: DbName,
        /// The key (hex with --hex)
        key: OsString,
        /// What to add; negative subtracts
        #[arg(long, value_name = "N", default_value_t = 1, allow_negative_numbers = true)]
        add: i64,
        /// How long a counter this creates lives, in Exim's time syntax (1h, 1d) [default: the database's own expiry]
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        expiry: Option<Duration>,
        #[arg(long, value_name = "SECONDS[.MICROS]", value_parser = parse_at, help = AT_HELP)]
        at: Option<Stamp>,
    },

    #[command(
        name = "import-exim",
        about = "Load Exim's hints databases into hintsd from what exim_dumpdb prints",
        long_about = IMPORT_EXIM_HELP
    )]
    ImportExim {
        /// Exim's spool directory (the one holding db/): run exim_dumpdb -z on its databases
        #[arg(long, value_name = "DIR", required_unless_present = "stdin", conflicts_with = "stdin")]
        spool: Option<PathBuf>,
        /// Read one dump from stdin instead, made by exim_dumpdb [-z] DIR NAME (name its database with --db)
        #[arg(long, requires = "dbs")]
        stdin: bool,
        /// A database to import; repeat for more [default with --spool: retry, callout, misc, seen, ratelimit and every wait-* file in DIR/db]
        #[arg(long = "db", value_name = "NAME", value_parser = parse_import_db)]
        dbs: Vec<String>,
        /// With --stdin: the dump's times are UTC (made with exim_dumpdb -z) [default: local time, from TZ]
        #[arg(long, requires = "stdin")]
        utc: bool,
        /// exim_dumpdb's path [default: exim_dumpdb on PATH, else in /usr/sbin]
        #[arg(long, value_name = "PATH", conflicts_with = "stdin")]
        exim_dumpdb: Option<PathBuf>,
        /// Read and check the dumps and print the summary, but load nothing
        #[arg(long)]
        dry_run: bool,
    },

    /// Make hintsd write its snapshots now, and print how many databases and records it wrote.
    Snapshot {
        /// Only this database [default: every database]
        #[arg(value_parser = parse_db)]
        db: Option<DbName>,
    },
}

/// A database name, checked as the daemon checks it.
fn parse_db(text: &str) -> Result<DbName, String> {
    DbName::new(text).map_err(|reply| reply.message)
}

/// A duration in Exim's time syntax.
fn parse_age(text: &str) -> Result<Duration, String> {
    parse_duration_secs(text).map(Duration::from_secs).map_err(|err| err.to_string())
}

/// A timeout in Exim's time syntax, more than zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_age(text)?;
    if timeout.is_zero() {
        return Err("a timeout must be longer than 0s (use --timeout-ms for less than a second)".into());
    }
    Ok(timeout)
}

/// A timeout in milliseconds, more than zero.
fn parse_timeout_ms(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("a timeout must be longer than 0 ms".into()),
        Ok(millis) => Ok(Duration::from_millis(millis)),
        Err(_) => Err(format!("{text:?} is not a whole number of milliseconds")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hintsctl").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_a_sentence_of_help() {
        for sub in Cli::command().get_subcommands() {
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            // clap drops the sentence's full stop.
            let capitalised = about.starts_with(|c: char| c.is_ascii_uppercase());
            assert!(capitalised && about.split(' ').count() >= 5, "{}: {about:?}", sub.get_name());
        }
    }

    #[test]
    fn usage_errors_are_clap_errors_with_status_2() {
        for args in [
            &["get", "Bad Name", "k"][..],
            &["tidy", "misc", "--older-than", "30x"],
            &["tidy", "misc"],
            &["--timeout", "0", "ping"],
            &["--timeout", "1s", "--timeout-ms", "5", "ping"],
            &["--timeout-ms", "soon", "ping"],
            &["scan", "misc", "--limit", "0"],
            &["frobnicate"],
            &["ratelimit"],
            &["ratelimit", "1 / 1s / k", "--at", "-1"],
            &["ratelimit", "1 / 1s / k", "--at", "1.1234567"],
            &["seen", "5m / key=k", "--at", "1.5s"],
            &["seen", "5m / key=k", "--at", ""],
            &["greylist", "t", "--delay", "5m"],
            &["greylist", "t", "--delay", "5m", "--expiry", "7x"],
            &["greylist", "t", "--delay", "5m", "--expiry", "7d", "--db", "Grey"],
            &["serialize", "misc", "k"],
            &["serialize", "misc", "k", "--limit", "0"],
            &["serialize", "misc", "k", "--limit", "-1"],
            &["serialize", "misc", "k", "--limit", "1", "--hold", "soon"],
            &["counter", "misc", "k", "--add", "1.5"],
            &["counter", "misc", "k", "--add", "9223372036854775808"],
            &["counter", "misc", "k", "--at", "18446744073709551616"],
            &["snapshot", "Bad Name"],
            &["dump", "seen", "--json", "--format", "exim"],
            &["dump", "seen", "--format", "xml"],
            &["import-exim"],
            &["import-exim", "--stdin"],
            &["import-exim", "--spool", "/var/spool/exim4", "--stdin", "--db", "seen"],
            &["import-exim", "--spool", "/var/spool/exim4", "--utc"],
            &["import-exim", "--spool", "/var/spool/exim4", "--db", "tls"],
            &["import-exim", "--spool", "/var/spool/exim4", "--db", "greylist"],
            &["import-exim", "--stdin", "--db", "seen", "--exim-dumpdb", "/usr/sbin/exim_dumpdb"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
            assert_ne!(err.kind(), ErrorKind::DisplayHelp);
        }
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cli = parse(&["get", "misc", "k", "--hex", "--socket", "/s.sock", "--timeout-ms", "250"]).unwrap();
        assert!(cli.hex);
        assert_eq!(cli.socket, Some(PathBuf::from("/s.sock")));
        assert_eq!(cli.timeout(), Duration::from_millis(250));
        let cli = parse(&["--timeout", "1m30s", "tidy", "misc", "--older-than", "30d"]).unwrap();
        assert_eq!(cli.timeout(), Duration::from_secs(90));
        assert!(
            matches!(cli.command, Command::Tidy { older_than, .. } if older_than == Duration::from_secs(30 * 86_400))
        );
        assert_eq!(parse(&["ping"]).unwrap().timeout(), DEFAULT_TIMEOUT);
    }

    #[test]
    fn dump_takes_a_format_and_import_exim_a_source() {
        let cli = parse(&["dump", "retry", "--format", "exim", "-z"]).unwrap();
        assert!(matches!(cli.command, Command::Dump { json: false, format: Some(DumpFormat::Exim), utc: true, .. }));
        let cli = parse(&["dump", "retry", "--json"]).unwrap();
        assert!(matches!(cli.command, Command::Dump { json: true, format: None, utc: false, .. }));

        let cli = parse(&["import-exim", "--spool", "/var/spool/exim4", "--db", "retry", "--db", "wait-remote_smtp"])
            .unwrap();
        let Command::ImportExim { spool, stdin, dbs, utc, exim_dumpdb, dry_run } = cli.command else { panic!() };
        assert_eq!(spool, Some(PathBuf::from("/var/spool/exim4")));
        assert_eq!(dbs, ["retry", "wait-remote_smtp"]);
        assert!(!stdin && !utc && !dry_run && exim_dumpdb.is_none());
        let cli = parse(&["import-exim", "--stdin", "--utc", "--db", "seen", "--dry-run"]).unwrap();
        assert!(matches!(cli.command, Command::ImportExim { spool: None, stdin: true, utc: true, dry_run: true, .. }));
    }

    #[test]
    fn conditions_are_one_argument_even_when_they_start_with_a_minus() {
        let cli = parse(&["seen", "-5m / key=192.0.2.1", "--json"]).unwrap();
        let Command::Seen { condition, at, json } = cli.command else { panic!("{cli:?}") };
        assert_eq!((condition.as_str(), at, json), ("-5m / key=192.0.2.1", None, true));
        let cli = parse(&["seen", "--at", "1767323045.25", "-1d / key=k"]).unwrap();
        let Command::Seen { condition, at, json } = cli.command else { panic!("{cli:?}") };
        let want = Some(Stamp { secs: 1_767_323_045, micros: 250_000 });
        assert_eq!((condition.as_str(), at, json), ("-1d / key=k", want, false));
        let cli = parse(&["ratelimit", "100 / 1h / strict / per_rcpt / 192.0.2.1", "--at", "7"]).unwrap();
        assert!(matches!(
            &cli.command,
            Command::Ratelimit { condition, at: Some(Stamp { secs: 7, micros: 0 }), json: false }
                if condition == "100 / 1h / strict / per_rcpt / 192.0.2.1"
        ));
    }

    #[test]
    fn greylist_serialize_counter_and_snapshot_take_their_options() {
        let cli = parse(&["greylist", "192.0.2.1 a@b c@d", "--delay", "5m", "--expiry", "7d"]).unwrap();
        let Command::Greylist { key, delay, expiry, db, at, json } = cli.command else { panic!("{cli:?}") };
        assert_eq!(key, "192.0.2.1 a@b c@d");
        assert_eq!((delay, expiry), (Duration::from_secs(300), Duration::from_secs(7 * 86_400)));
        assert_eq!((db.as_str(), at, json), ("greylist", None, false));

        let cli = parse(&["serialize", "misc", "host", "--limit", "2", "--hold", "1m"]).unwrap();
        let Command::Serialize { db, limit, hold, .. } = cli.command else { panic!("{cli:?}") };
        assert_eq!((db.as_str(), limit, hold), ("misc", 2, Some(Duration::from_secs(60))));
        let cli = parse(&["serialize", "misc", "host", "--limit", "1"]).unwrap();
        assert!(matches!(cli.command, Command::Serialize { hold: None, .. }));

        let adds = [(&["counter", "misc", "k"][..], 1), (&["counter", "misc", "k", "--add=-3"], -3)];
        let adds = adds.into_iter().chain([(&["counter", "misc", "k", "--add", "-3"][..], -3)]);
        for (args, want) in adds {
            let cli = parse(args).unwrap();
            assert!(matches!(cli.command, Command::Counter { add, .. } if add == want), "{args:?}");
        }
        let cli =
            parse(&["counter", "misc", "k", "--add", "-9223372036854775808", "--expiry", "1h", "--at", "5.000001"])
                .unwrap();
        let Command::Counter { add, expiry, at, .. } = cli.command else { panic!("{cli:?}") };
        assert_eq!((add, expiry, at), (i64::MIN, Some(Duration::from_secs(3600)), Some(Stamp { secs: 5, micros: 1 })));

        assert!(matches!(parse(&["snapshot"]).unwrap().command, Command::Snapshot { db: None }));
        let cli = parse(&["snapshot", "ratelimit"]).unwrap();
        assert!(matches!(cli.command, Command::Snapshot { db: Some(db) } if db.as_str() == "ratelimit"));
    }
}
