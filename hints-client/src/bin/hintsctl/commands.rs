//! Each subcommand: its arguments turned into client calls, and the answers printed.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use hints_client::config::resolve_socket;
use hints_client::{Client, ClientConfig, DbName, Error, Record};
use hints_proto::limits::SCAN_PAGE_RECORDS_MAX;

use crate::args::{Cli, Command, DumpFormat};
use crate::bytes::parse_hex;
use crate::exim_import::ImportArgs;
use crate::failure::Failure;
use crate::render::{
    Shown, dump_json, dump_line, greylist_json, greylist_line, rate_json, rate_line, scan_line, seen_json, seen_line,
    slot_line, snapshot_line, stamp_line, stats_json, stats_table,
};
use crate::{exim_format, exim_import};

/// Runs the command `cli` names against the daemon, printing to `out`.
///
/// # Errors
/// A [`Failure`] whose exit code says what went wrong.
pub fn run(cli: &Cli, out: &mut impl Write) -> Result<(), Failure> {
    let config =
        ClientConfig::new(resolve_socket(cli.socket.clone())).with_timeout(cli.timeout()).with_client_name("hintsctl");
    let mut client = Client::new(config);
    let shown = if cli.hex { Shown::Hex } else { Shown::Escaped };
    let input = |arg: &OsStr, what: &str| input_bytes(arg, cli.hex, what);
    match &cli.command {
        Command::Ping => ping(&mut client, out)?,
        Command::Get { db, key } => {
            let key = input(key, "KEY")?;
            let Some(record) = client.get(db, &key)? else {
                return Err(no_record(db, &key, shown));
            };
            writeln!(out, "{}", shown.text(&record.value))?;
        }
        Command::Put { db, key, value } => {
            let (key, value) = (input(key, "KEY")?, input(value, "VALUE")?);
            let stamp = client.put(db, &key, &value)?;
            writeln!(out, "{}", stamp_line(stamp))?;
        }
        Command::Del { db, key } => {
            let key = input(key, "KEY")?;
            if !client.delete(db, &key)? {
                return Err(no_record(db, &key, shown));
            }
        }
        Command::Scan { db, prefix, limit } => {
            let prefix = input(prefix, "--prefix")?;
            each_record(&mut client, db, &prefix, *limit, |record| {
                writeln!(out, "{}", scan_line(record, shown)).map_err(Failure::from)
            })?;
        }
        Command::Dump { db, json, format, utc } => {
            let format = if *json { DumpFormat::Json } else { format.unwrap_or(DumpFormat::Text) };
            if *utc && format != DumpFormat::Exim {
                return Err(Failure::Usage("-z/--utc is for --format exim".into()));
            }
            if format == DumpFormat::Exim {
                if cli.hex {
                    return Err(Failure::Usage(
                        "--hex does not apply to --format exim (exim_dumpdb prints keys raw)".into(),
                    ));
                }
                exim_format::dump(&mut client, db, *utc, out)?;
            } else {
                each_record(&mut client, db, b"", None, |record| {
                    let line = if format == DumpFormat::Json {
                        dump_json(record).map_err(std::io::Error::other)?
                    } else {
                        dump_line(record, shown)
                    };
                    writeln!(out, "{line}").map_err(Failure::from)
                })?;
            }
        }
        Command::ImportExim { spool, stdin: _, dbs, utc, exim_dumpdb, dry_run } => {
            let args = ImportArgs {
                spool: spool.as_deref(),
                dbs,
                utc: *utc,
                exim_dumpdb: exim_dumpdb.as_deref(),
                dry_run: *dry_run,
            };
            exim_import::import(&mut client, &args, out)?;
        }
        Command::Tidy { db, older_than } => {
            let removed = client.tidy(db, *older_than)?;
            writeln!(out, "{removed}")?;
        }
        Command::Stats { db, json } => {
            let all = client.stats(db.as_ref())?;
            if *json {
                for stats in &all {
                    writeln!(out, "{}", stats_json(stats).map_err(std::io::Error::other)?)?;
                }
            } else {
                write!(out, "{}", stats_table(&all))?;
            }
        }
        Command::Ratelimit { condition, at, json } => {
            let outcome = client.ratelimit(condition, *at)?;
            let line = if *json { rate_json(&outcome).map_err(std::io::Error::other)? } else { rate_line(&outcome) };
            writeln!(out, "{line}")?;
        }
        Command::Seen { condition, at, json } => {
            let outcome = client.seen(condition, *at)?;
            if *json {
                writeln!(out, "{}", seen_json(outcome).map_err(std::io::Error::other)?)?;
            } else {
                writeln!(out, "{}", seen_line(outcome))?;
            }
        }
        Command::Greylist { key, delay, expiry, db, at, json } => {
            let key = input(key, "KEY")?;
            let outcome = client.greylist(db, &key, *delay, *expiry, *at)?;
            let line =
                if *json { greylist_json(outcome).map_err(std::io::Error::other)? } else { greylist_line(outcome) };
            writeln!(out, "{line}")?;
        }
        Command::Serialize { db, key, limit, hold } => {
            let key = input(key, "KEY")?;
            serialize(&mut client, db, &key, *limit, *hold, shown, out)?;
        }
        Command::Counter { db, key, add, expiry, at } => {
            let key = input(key, "KEY")?;
            let value = client.counter(db, &key, *add, *expiry, *at)?;
            writeln!(out, "{value}")?;
        }
        Command::Snapshot { db } => {
            let (databases, records) = client.snapshot(db.as_ref())?;
            writeln!(out, "{}", snapshot_line(databases, records))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Takes a slot and prints the answer; with `hold`, keeps the connection (which owns the
/// slot) open that long, then releases it. Without, the slot goes when the process exits and
/// its connection closes.
fn serialize(
    client: &mut Client,
    db: &DbName,
    key: &[u8],
    limit: u32,
    hold: Option<Duration>,
    shown: Shown,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let slot = client.serialize_take(db, key, limit)?;
    writeln!(out, "{}", slot_line(slot))?;
    // Whoever reads the line learns at once that the slot is held, not after the hold.
    out.flush()?;
    if !slot.held {
        return Err(Failure::Busy);
    }
    let Some(hold) = hold else {
        return Ok(());
    };
    std::thread::sleep(hold);
    // Never resent: if the connection broke during the hold, this fails rather than
    // releasing on a new connection that never held the slot.
    client.serialize_release(db, key).map_err(|err| {
        let lost = if err.is_unavailable() { " (the slot went with the connection)" } else { "" };
        let doing = format!("releasing the slot in {db} under {} after --hold{lost}", shown.text(key));
        Failure::ClientDuring { doing, err }
    })?;
    Ok(())
}

/// Connects with one ping, then times a second.
fn ping(client: &mut Client, out: &mut impl Write) -> Result<(), Failure> {
    client.ping()?;
    let started = Instant::now();
    client.ping()?;
    let round_trip = started.elapsed();
    let version = client.daemon_version().unwrap_or("(unknown version)");
    let socket = client.config().socket.display();
    let path = if client.is_on_ring() { "shared-memory ring" } else { "socket" };
    writeln!(out, "pong from hintsd {version} at {socket} over its {path}: round trip {round_trip:?}")?;
    Ok(())
}

/// An argument's bytes: as given, or decoded from hex with `--hex`.
fn input_bytes(arg: &OsStr, hex: bool, what: &str) -> Result<Vec<u8>, Failure> {
    if !hex {
        return Ok(arg.as_bytes().to_vec());
    }
    let text = arg.to_str().ok_or_else(|| Failure::Usage(format!("{what} is not hex: it is not even text")))?;
    parse_hex(text).map_err(|why| Failure::Usage(format!("{what}: {why}")))
}

fn no_record(db: &DbName, key: &[u8], shown: Shown) -> Failure {
    Failure::NotFound(format!("no record in {db} under {}", shown.text(key)))
}

/// Calls `visit` for each record whose key starts with `prefix`, in key order, up to `limit`
/// records, fetching pages of up to [`SCAN_PAGE_RECORDS_MAX`] and following their cursors.
///
/// # Errors
/// The client's, and whatever `visit` returns.
pub fn each_record(
    client: &mut Client,
    db: &DbName,
    prefix: &[u8],
    limit: Option<u64>,
    mut visit: impl FnMut(&Record) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut left = limit.unwrap_or(u64::MAX);
    let mut after: Option<Vec<u8>> = None;
    while left > 0 {
        let ask = u32::try_from(left).unwrap_or(u32::MAX).min(SCAN_PAGE_RECORDS_MAX);
        let page = client.scan(db, prefix, after.as_deref(), ask)?;
        for record in page.records.iter().take(usize::try_from(left).unwrap_or(usize::MAX)) {
            visit(record)?;
            left -= 1;
        }
        let Some(next) = page.next else {
            break;
        };
        if after.as_ref().is_some_and(|previous| next <= *previous) {
            let why = "a scan cursor that does not move forward".to_owned();
            return Err(Failure::Client(Error::Protocol(why)));
        }
        after = Some(next);
    }
    Ok(())
}
