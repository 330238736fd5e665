//! `hintsctl import-exim`: loads Exim's hints databases into hintsd from `exim_dumpdb`'s output
//! (run here on a spool directory, or read from stdin), record by record in Exim's own layouts
//! and under Exim's keys, without the NUL that ends a key in Exim's files (`exim_dumpdb` prints
//! keys without it, and hintsd's own ratelimit and seen records are kept without it).
//!
//! Lines are read strictly ([`DumpReader`]): a line that does not print back byte for byte from
//! the record it gives is skipped and reported with its number and a reason. What a dump cannot
//! carry is said per database in the summary ([`DumpFormat::losses`]).

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hints_client::exim::dumpdb::{
    DEFAULT_DATABASES, DumpEntry, DumpFormat, DumpItem, DumpReader, DumpRecord, SkippedLine, TimeZone, Utc,
    rebuild_wait_sequences,
};
use hints_client::exim::ratelimit::RatelimitData;
use hints_client::exim::{CalloutRecord, callout::CCACHE_UNKNOWN};
use hints_client::{Client, DbName, Error, Request, Response};

use crate::bytes::escape;
use crate::exim_format::LocalTime;
use crate::failure::Failure;

/// Puts sent in one pipelined call (the client splits it into windows of its pipeline depth),
/// at most; fewer once their keys and values reach [`BATCH_BYTES_MAX`].
const BATCH: usize = 512;
/// Bytes of keys and values held for one pipelined call, at most (plus one record).
const BATCH_BYTES_MAX: usize = 1 << 20;
/// Bytes of exim_dumpdb's stderr kept for the summary (the rest is read and dropped).
const STDERR_BYTES_MAX: u64 = 64 * 1024;
/// The longest dump line read; exim_dumpdb's longest (a retry record with its 150-byte text,
/// or a full wait- record) is far shorter. A longer line is refused, never held whole.
const LINE_BYTES_MAX: u64 = 64 * 1024;
/// Without a terminal, a progress line on stderr every this many records.
const PROGRESS_EVERY: u64 = 10_000;
/// With a terminal, the progress bar is redrawn at most this often.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Skipped lines, and messages, kept per database for the summary (the rest are counted, so a
/// dump of millions of bad lines costs a count, not their texts).
const PROBLEMS_LISTED_MAX: usize = 20;

/// The first [`PROBLEMS_LISTED_MAX`] of one kind of problem, and how many there were.
#[derive(Debug)]
struct Listed<T> {
    first: Vec<T>,
    total: usize,
}

impl<T> Listed<T> {
    fn new() -> Listed<T> {
        Listed { first: Vec::new(), total: 0 }
    }

    fn push(&mut self, item: T) {
        self.total += 1;
        if self.first.len() < PROBLEMS_LISTED_MAX {
            self.first.push(item);
        }
    }

    /// How many were pushed, listed or not.
    fn len(&self) -> usize {
        self.total
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many were counted but not kept.
    fn unlisted(&self) -> usize {
        self.total - self.first.len()
    }
}

/// What `import-exim` was asked to do.
#[derive(Debug)]
pub struct ImportArgs<'a> {
    /// The spool directory to run `exim_dumpdb` on; `None`: read one dump from stdin.
    pub spool: Option<&'a Path>,
    /// The databases named with `--db` (checked by the argument parser).
    pub dbs: &'a [String],
    /// With stdin: the dump's times are UTC (`exim_dumpdb -z`), not local time.
    pub utc: bool,
    /// `exim_dumpdb`'s path, if given.
    pub exim_dumpdb: Option<&'a Path>,
    /// Read and check, load nothing.
    pub dry_run: bool,
}

/// What happened to one database.
#[derive(Debug)]
struct DbReport {
    name: String,
    format: DumpFormat,
    /// Named with `--db` (a missing file is then a problem, not a note).
    named: bool,
    /// The spool had no file for it.
    absent: bool,
    lines: usize,
    imported: u64,
    not_carried: u64,
    /// Unique ratelimit records, imported with empty Bloom filters.
    unique: u64,
    /// Callout results printed as `unknown` (which ccache_reject_mfnull also prints as).
    unknown_callouts: u64,
    skipped: Listed<SkippedLine>,
    /// `exim_dumpdb`'s own messages, its stderr and its exit status when not 0.
    messages: Listed<String>,
}

impl DbReport {
    fn new(name: &str, format: DumpFormat, named: bool) -> DbReport {
        DbReport {
            name: name.to_owned(),
            format,
            named,
            absent: false,
            lines: 0,
            imported: 0,
            not_carried: 0,
            unique: 0,
            unknown_callouts: 0,
            skipped: Listed::new(),
            messages: Listed::new(),
        }
    }

    /// Whether anything went wrong (the exit status is then 1).
    fn problems(&self) -> usize {
        self.skipped.len() + self.messages.len() + usize::from(self.absent && self.named)
    }

    /// What this database's dump did not carry, for the records it had.
    fn losses(&self) -> Vec<&'static str> {
        let all = self.format.losses();
        if self.imported + self.not_carried == 0 {
            return Vec::new();
        }
        match self.format {
            // [rate rounding, Bloom bits, bloom_epoch]: the last two only for unique records.
            DumpFormat::Ratelimit if self.unique == 0 => all[..1].to_vec(),
            // [unknown for mfnull, obsolete records]: the first only if some result was unknown.
            DumpFormat::Callout if self.unknown_callouts == 0 => all[1..].to_vec(),
            _ => all.to_vec(),
        }
    }
}

/// Runs the import and prints its summary to `out`; progress goes to stderr.
///
/// # Errors
/// A usage error (no `--db` with stdin, a spool without `db/`, no `exim_dumpdb`); the client's
/// errors, which stop the import; [`Failure::Incomplete`] when lines were skipped or
/// `exim_dumpdb` reported a problem (everything that did read was imported).
pub fn import(client: &mut Client, args: &ImportArgs<'_>, out: &mut impl Write) -> Result<(), Failure> {
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()))
        .unwrap_or(i64::MAX);
    let mut loader = Loader { client: (!args.dry_run).then_some(client), batch: Vec::new(), batch_bytes: 0 };
    let mut reports = Vec::new();
    let local = LocalTime::new();
    match args.spool {
        None => {
            let [name] = args.dbs else {
                return Err(Failure::Usage("--stdin reads one dump: name its database with one --db".into()));
            };
            let tz: &dyn TimeZone = if args.utc { &Utc } else { &local };
            let mut report = DbReport::new(name, format_of(name)?, true);
            let mut progress = Progress::new(name, None, args.dry_run);
            let stdin = io::stdin().lock();
            load(&mut loader, stdin, tz, now, &mut progress, &mut report)?;
            progress.finish();
            reports.push(report);
        }
        Some(spool) => {
            let db_dir = spool.join("db");
            if !db_dir.is_dir() {
                return Err(Failure::Usage(format!(
                    "{} is not a directory: is {} Exim's spool directory?",
                    db_dir.display(),
                    spool.display()
                )));
            }
            let dumpdb = find_exim_dumpdb(args.exim_dumpdb)?;
            for (name, named) in databases(args.dbs, &db_dir)? {
                let mut report = DbReport::new(&name, format_of(&name)?, named);
                if !db_dir.join(&name).is_file() {
                    report.absent = true;
                } else if let Err(reply) = DbName::new(name.clone()) {
                    report.messages.push(format!("not imported: {} (hintsd's database names)", reply.message));
                } else {
                    let total = std::io::stderr().is_terminal().then(|| count_keys(&dumpdb, spool, &name)).flatten();
                    let mut progress = Progress::new(&name, total, args.dry_run);
                    let outcome = load_from_exim_dumpdb(&mut loader, &dumpdb, spool, now, &mut progress, &mut report);
                    progress.finish();
                    outcome?;
                }
                reports.push(report);
            }
        }
    }
    summary(out, args, &reports)?;
    let problems: usize = reports.iter().map(DbReport::problems).sum();
    if problems > 0 {
        let what = if problems == 1 { "problem" } else { "problems" };
        return Err(Failure::Incomplete(format!(
            "{problems} {what} (skipped lines, exim_dumpdb's messages, missing databases): see the summary; \
             everything else {}",
            if args.dry_run { "read" } else { "was imported" }
        )));
    }
    Ok(())
}

fn format_of(name: &str) -> Result<DumpFormat, Failure> {
    DumpFormat::for_db(name).map_err(Failure::Usage)
}

/// The databases to import, each with whether `--db` named it: the ones named, or the
/// defaults and every `wait-*` file in `db_dir`.
fn databases(named: &[String], db_dir: &Path) -> Result<Vec<(String, bool)>, Failure> {
    if !named.is_empty() {
        return Ok(named.iter().map(|name| (name.clone(), true)).collect());
    }
    let mut dbs: Vec<(String, bool)> = DEFAULT_DATABASES.iter().map(|name| ((*name).to_owned(), false)).collect();
    let entries =
        std::fs::read_dir(db_dir).map_err(|err| Failure::Other(format!("cannot list {}: {err}", db_dir.display())))?;
    let mut waits = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| Failure::Other(format!("cannot list {}: {err}", db_dir.display())))?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.starts_with("wait-") && !name.ends_with(".lockfile") {
            waits.push(name);
        }
    }
    waits.sort();
    dbs.extend(waits.into_iter().map(|name| (name, false)));
    Ok(dbs)
}

/// `exim_dumpdb`: as given, else on `PATH`, else in the directories Exim is installed in.
fn find_exim_dumpdb(given: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let fallback = ["/usr/sbin", "/usr/local/sbin", "/usr/exim/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(fallback)
        .map(|dir| dir.join("exim_dumpdb"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Failure::Usage("cannot find exim_dumpdb on PATH or in /usr/sbin: give its path with --exim-dumpdb".into())
        })
}

fn dumpdb_command(dumpdb: &Path, flags: &[&str], spool: &Path, name: &str) -> Command {
    let mut command = Command::new(dumpdb);
    command.args(flags).arg(spool).arg(name).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// How many records `exim_dumpdb -k` lists (for the progress bar; `None` if it fails).
fn count_keys(dumpdb: &Path, spool: &Path, name: &str) -> Option<u64> {
    let output = dumpdb_command(dumpdb, &["-k"], spool, name).output().ok()?;
    output
        .status
        .success()
        .then(|| output.stdout.split(|&b| b == b'\n').filter(|line| line.starts_with(b"  ")).count())
        .and_then(|count| u64::try_from(count).ok())
}

/// Runs `exim_dumpdb -z <spool> <name>` (UTC: no time is ambiguous) and loads its output.
fn load_from_exim_dumpdb(
    loader: &mut Loader<'_>,
    dumpdb: &Path,
    spool: &Path,
    now: i64,
    progress: &mut Progress,
    report: &mut DbReport,
) -> Result<(), Failure> {
    let mut child = dumpdb_command(dumpdb, &["-z"], spool, &report.name)
        .spawn()
        .map_err(|err| Failure::Other(format!("cannot run {}: {err}", dumpdb.display())))?;
    let stderr = drain(&mut child);
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let loaded = load(loader, stdout, &Utc, now, progress, report);
    if loaded.is_err() {
        // Stopping early: exim_dumpdb would otherwise wait on a full pipe.
        let _ = child.kill();
    }
    let status = child.wait();
    let stderr = stderr.join().unwrap_or_default();
    loaded?;
    let status = status.map_err(|err| Failure::Other(format!("waiting for exim_dumpdb: {err}")))?;
    for line in stderr.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        report.messages.push(format!("exim_dumpdb said on stderr: {}", escape(line)));
    }
    if !status.success() {
        report.messages.push(format!("exim_dumpdb {} {}: {status}", spool.display(), report.name));
    }
    Ok(())
}

/// Reads a child's stderr to the end on a thread, so that neither pipe can fill and stall it.
fn drain(child: &mut Child) -> JoinHandle<Vec<u8>> {
    let mut stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        // Keep the first STDERR_BYTES_MAX and read the rest away, so the child never blocks
        // on a full pipe and a flood costs no memory.
        let mut text = Vec::new();
        let _ = (&mut stderr).take(STDERR_BYTES_MAX).read_to_end(&mut text);
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        text
    })
}

/// Reads one dump from `input` and loads its records (a wait database's all at once, at the
/// end, once its sequences are rebuilt from its continuation records).
fn load(
    loader: &mut Loader<'_>,
    mut input: impl BufRead,
    tz: &dyn TimeZone,
    now: i64,
    progress: &mut Progress,
    report: &mut DbReport,
) -> Result<(), Failure> {
    let db = DbName::new(report.name.clone()).map_err(|reply| Failure::Usage(reply.message))?;
    let mut reader = DumpReader::new(report.format, tz, now);
    let mut waits = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut input)
            .take(LINE_BYTES_MAX + 1)
            .read_until(b'\n', &mut line)
            .map_err(|err| Failure::Other(format!("reading the dump of {}: {err}", report.name)))?;
        if line.len() as u64 > LINE_BYTES_MAX {
            return Err(Failure::Other(format!(
                "line {} of the dump of {} is over {LINE_BYTES_MAX} bytes: not an exim_dumpdb dump",
                report.lines + 1,
                report.name
            )));
        }
        let results = if read == 0 {
            reader.finish()
        } else {
            report.lines += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            reader.line(report.lines, text)
        };
        for result in results {
            match result {
                Ok(DumpItem::Record(entry)) if report.format == DumpFormat::Wait => waits.push(entry),
                Ok(DumpItem::Record(entry)) => {
                    count(report, &entry);
                    loader.put(&db, entry, progress, report)?;
                }
                Ok(DumpItem::NotCarried { .. }) => report.not_carried += 1,
                Ok(DumpItem::Message { line, text }) => {
                    report.messages.push(format!("line {line}: exim_dumpdb said: {}", escape(&text)));
                }
                Err(skipped) => report.skipped.push(skipped),
            }
        }
        if read == 0 {
            break;
        }
    }
    rebuild_wait_sequences(&mut waits);
    for entry in waits {
        loader.put(&db, entry, progress, report)?;
    }
    loader.flush(&db, progress, report)
}

/// Notes what a record's dump lost, for the summary.
fn count(report: &mut DbReport, entry: &DumpEntry) {
    match &entry.record {
        DumpRecord::Ratelimit(RatelimitData::Unique(_)) => report.unique += 1,
        DumpRecord::Callout(CalloutRecord::Address(address)) if address.result == CCACHE_UNKNOWN => {
            report.unknown_callouts += 1;
        }
        DumpRecord::Callout(CalloutRecord::Domain(domain)) if domain.result == CCACHE_UNKNOWN => {
            report.unknown_callouts += 1;
        }
        _ => {}
    }
}

/// Puts records into hintsd in pipelined batches (or only counts them, for `--dry-run`).
struct Loader<'c> {
    client: Option<&'c mut Client>,
    batch: Vec<Request>,
    /// Bytes of keys and values in `batch`.
    batch_bytes: usize,
}

impl Loader<'_> {
    fn put(
        &mut self,
        db: &DbName,
        entry: DumpEntry,
        progress: &mut Progress,
        report: &mut DbReport,
    ) -> Result<(), Failure> {
        let value = entry.record.encode();
        self.batch_bytes += entry.key.len() + value.len();
        self.batch.push(Request::Put { db: db.clone(), key: entry.key, value });
        if self.batch.len() >= BATCH || self.batch_bytes >= BATCH_BYTES_MAX {
            self.flush(db, progress, report)?;
        }
        Ok(())
    }

    fn flush(&mut self, db: &DbName, progress: &mut Progress, report: &mut DbReport) -> Result<(), Failure> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let sent = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let doing = || format!("importing {db} ({} records imported before this batch)", report.imported);
        if let Some(client) = self.client.as_deref_mut() {
            let responses = client.pipeline(&sent).map_err(|err| Failure::ClientDuring { doing: doing(), err })?;
            if responses.len() != sent.len() {
                let why = format!("{} replies to {} puts", responses.len(), sent.len());
                return Err(Failure::ClientDuring { doing: doing(), err: Error::Protocol(why) });
            }
            for response in responses {
                match response {
                    Response::Stored(_) => {}
                    Response::Error(reply) => {
                        return Err(Failure::ClientDuring { doing: doing(), err: Error::from(reply) });
                    }
                    other => {
                        let why = format!("a {} reply to a put", other.kind());
                        return Err(Failure::ClientDuring { doing: doing(), err: Error::Protocol(why) });
                    }
                }
            }
        }
        let count = u64::try_from(sent.len()).unwrap_or(u64::MAX);
        report.imported += count;
        progress.advance(count);
        Ok(())
    }
}

/// Progress on stderr: a bar redrawn in place on a terminal, else a line every
/// [`PROGRESS_EVERY`] records.
struct Progress {
    db: String,
    /// "imported", or "read" for a dry run.
    verb: &'static str,
    terminal: bool,
    total: Option<u64>,
    done: u64,
    drawn: Option<Instant>,
}

impl Progress {
    fn new(db: &str, total: Option<u64>, dry_run: bool) -> Progress {
        let verb = if dry_run { "read" } else { "imported" };
        Progress { db: db.to_owned(), verb, terminal: io::stderr().is_terminal(), total, done: 0, drawn: None }
    }

    fn advance(&mut self, count: u64) {
        let before = self.done;
        self.done += count;
        if self.terminal {
            if self.drawn.is_none_or(|at| at.elapsed() >= REDRAW_EVERY) {
                self.draw();
            }
        } else if before / PROGRESS_EVERY != self.done / PROGRESS_EVERY {
            eprintln!("hintsctl: import-exim: {}: {} records {} so far", self.db, self.done, self.verb);
        }
    }

    fn draw(&mut self) {
        const WIDTH: u64 = 30;
        let line = match self.total {
            Some(total) if total > 0 => {
                let done = self.done.min(total);
                let filled = usize::try_from(done * WIDTH / total).unwrap_or(0);
                let empty = usize::try_from(WIDTH).unwrap_or(0) - filled;
                format!(
                    "{} [{}{}] {:3}% {done}/{total}",
                    self.db,
                    "#".repeat(filled),
                    "-".repeat(empty),
                    done * 100 / total
                )
            }
            _ => format!("{}: {} records {}", self.db, self.done, self.verb),
        };
        eprint!("\r{line}\x1b[K");
        self.drawn = Some(Instant::now());
    }

    fn finish(&mut self) {
        if self.terminal && self.drawn.is_some() {
            self.draw();
            eprintln!();
        }
    }
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// The summary: per database, what was imported, what was not carried, what was skipped and
/// why, and what the dump lost.
fn summary(out: &mut impl Write, args: &ImportArgs<'_>, reports: &[DbReport]) -> Result<(), Failure> {
    let source = match args.spool {
        Some(spool) => format!("exim_dumpdb -z {} (times in UTC)", spool.display()),
        None if args.utc => "a dump on stdin (times in UTC, as exim_dumpdb -z prints them)".to_owned(),
        None => "a dump on stdin (times in local time)".to_owned(),
    };
    let dry_run = if args.dry_run { " (--dry-run: nothing was loaded)" } else { "" };
    let verb = if args.dry_run { "read" } else { "imported" };
    writeln!(out, "import-exim from {source}{dry_run}:")?;
    for report in reports {
        if report.absent {
            let note = if report.named {
                "no such database file: nothing imported"
            } else {
                "no database file: nothing to import"
            };
            writeln!(out, "{}: {note}", report.name)?;
            continue;
        }
        write_report(out, report, verb)?;
    }
    if args.spool.is_none() && !args.utc {
        writeln!(
            out,
            "times were read in local time (TZ): one in the hour a DST change repeats is ambiguous; \
             a dump made with exim_dumpdb -z and read with --utc is not"
        )?;
    }
    Ok(())
}

/// One database's lines of the summary.
fn write_report(out: &mut impl Write, report: &DbReport, verb: &str) -> Result<(), Failure> {
    let mut line = format!("{}: {} {verb}", report.name, plural(report.imported, "record", "records"));
    if report.unique > 0 {
        line.push_str(&format!(" ({} of them unique)", report.unique));
    }
    if report.not_carried > 0 {
        line.push_str(&format!(", {} not carried by the dump", plural(report.not_carried, "record", "records")));
    }
    if !report.skipped.is_empty() {
        let skipped = u64::try_from(report.skipped.len()).unwrap_or(u64::MAX);
        line.push_str(&format!(", {} skipped", plural(skipped, "line", "lines")));
    }
    let lines = u64::try_from(report.lines).unwrap_or(u64::MAX);
    writeln!(out, "{line}; from {}", plural(lines, "line", "lines"))?;
    for skipped in &report.skipped.first {
        writeln!(out, "  skipped line {}: {}: \"{}\"", skipped.line, skipped.why, escape(&skipped.text))?;
    }
    if report.skipped.unlisted() > 0 {
        writeln!(out, "  and {} more skipped lines", report.skipped.unlisted())?;
    }
    for message in &report.messages.first {
        writeln!(out, "  {message}")?;
    }
    if report.messages.unlisted() > 0 {
        writeln!(out, "  and {} more messages from exim_dumpdb", report.messages.unlisted())?;
    }
    for loss in report.losses() {
        writeln!(out, "  lost: {loss}")?;
    }
    Ok(())
}

/// A `--db` value: a database `exim_dumpdb` has a readable format for, and a name hintsd takes.
pub fn parse_import_db(text: &str) -> Result<String, String> {
    DumpFormat::for_db(text)?;
    DbName::new(text).map_err(|reply| reply.message)?;
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_dbs_must_have_a_readable_format_and_a_hintsd_name() {
        for good in ["retry", "misc", "callout", "ratelimit", "seen", "wait-remote_smtp"] {
            assert_eq!(parse_import_db(good).as_deref(), Ok(good));
        }
        assert!(parse_import_db("tls").unwrap_err().contains("raw session bytes"));
        assert!(parse_import_db("greylist").is_err());
        assert!(parse_import_db("wait-Remote").is_err());
    }

    #[test]
    fn losses_are_said_for_what_the_records_had() {
        let mut report = DbReport::new("ratelimit", DumpFormat::Ratelimit, false);
        assert!(report.losses().is_empty());
        report.imported = 3;
        assert_eq!(report.losses().len(), 1);
        assert!(report.losses()[0].contains("3 decimals"));
        report.unique = 1;
        assert!(report.losses().iter().any(|loss| loss.contains("Bloom filter bits")));
        let mut report = DbReport::new("callout", DumpFormat::Callout, false);
        report.imported = 1;
        assert!(report.losses().iter().all(|loss| !loss.contains("mfnull")));
        report.unknown_callouts = 1;
        assert!(report.losses().iter().any(|loss| loss.contains("mfnull")));
        let mut report = DbReport::new("seen", DumpFormat::Seen, false);
        report.imported = 1;
        assert!(report.losses().is_empty());
    }

    #[test]
    fn a_dump_of_many_bad_lines_keeps_a_few_texts_and_counts_the_rest() {
        let mut report = DbReport::new("retry", DumpFormat::Retry, true);
        for line in 1..=100_000 {
            report.skipped.push(SkippedLine { line, text: vec![b'x'; 100], why: "not a record".into() });
            report.messages.push(format!("message {line}"));
        }
        assert_eq!(report.skipped.first.len(), PROBLEMS_LISTED_MAX);
        assert_eq!(report.problems(), 200_000);
        let mut summary = Vec::new();
        write_report(&mut summary, &report, "imported").unwrap();
        let summary = String::from_utf8(summary).unwrap();
        assert!(summary.contains("100000 lines skipped"), "{summary}");
        assert!(summary.contains(&format!("and {} more skipped lines", 100_000 - PROBLEMS_LISTED_MAX)), "{summary}");
        assert!(summary.contains(&format!("and {} more messages", 100_000 - PROBLEMS_LISTED_MAX)), "{summary}");
        assert_eq!(summary.matches("skipped line ").count(), PROBLEMS_LISTED_MAX);
    }
}
