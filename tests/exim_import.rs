//! Migration from Exim's hints files, against Debian's real exim4 (4.96): Exim writes real hints
//! databases in a throwaway spool (ACLs with `ratelimit` and `seen` run by `exim4 -bhc`, which
//! also makes callouts to a stub SMTP server; deliveries with `-odi` to a closed port and to the
//! stub), `exim_dumpdb` dumps them, `hintsctl import-exim` loads them into a real daemon, and
//! `hintsctl dump --format exim` prints what `exim_dumpdb` printed. `.ci/run` installs
//! exim4-daemon-light.
//!
//! Nothing here waits on a clock: the stub server tells the test when a delivery is in
//! progress, and both sides of every comparison print the same stored times.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Daemon, hintsctl_bin, stderr, stdout};

/// The Exim binary Debian installs, and its dump utility.
const EXIM: &str = "exim4";
const EXIM_DUMPDB: &str = "exim_dumpdb";
/// A local time zone that is not UTC (India's, +05:30, no DST), written as a POSIX TZ rule so
/// that it needs no tzdata: local times are really local on both sides.
const TZ: &str = "IST-5:30";
/// The databases whose records the dump carries.
const CARRIED: [&str; 5] = ["retry", "callout", "seen", "ratelimit", "wait-smtp_refused"];
/// How long a stub connection may stay silent before the stub gives up on it.
const STUB_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A stub SMTP server on 127.0.0.1 that advertises PIPECONNECT (so Exim caches its EHLO in
/// misc), accepts bob, carol and postmaster and rejects every other recipient (so callouts find
/// an accept, a reject and a random-address reject). With `hold`, it tells the test when a
/// message's data has arrived and answers only when the test lets it.
struct Stub {
    port: u16,
    arrived: Receiver<()>,
    release: Sender<()>,
}

impl Stub {
    fn start(hold: bool) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub");
        let port = listener.local_addr().unwrap().port();
        let (arrived_tx, arrived) = channel();
        let (release, release_rx) = channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (arrived_tx, release_rx) = (arrived_tx.clone(), Arc::clone(&release_rx));
                std::thread::spawn(move || {
                    let _ = serve(stream, hold.then_some((arrived_tx, release_rx)));
                });
            }
        });
        Stub { port, arrived, release }
    }
}

type Hold = (Sender<()>, Arc<Mutex<Receiver<()>>>);

fn serve(stream: TcpStream, hold: Option<Hold>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(STUB_READ_TIMEOUT))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    out.write_all(b"220 stub.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-stub.test\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 HELP\r\n"
        } else if command.starts_with("HELO") || command.starts_with("MAIL") || command.starts_with("RSET") {
            b"250 OK\r\n"
        } else if command.starts_with("RCPT") {
            let known = ["<BOB@", "<CAROL@", "<POSTMASTER@"].iter().any(|who| command.contains(who));
            if known { b"250 Accepted\r\n" } else { b"550 No such user\r\n" }
        } else if command.starts_with("DATA") {
            out.write_all(b"354 Go ahead\r\n")?;
            loop {
                line.clear();
                if lines.read_line(&mut line)? == 0 || line.trim_end() == "." {
                    break;
                }
            }
            if let Some((arrived, release)) = &hold {
                let _ = arrived.send(());
                let _ = release.lock().unwrap().recv();
            }
            b"250 OK queued\r\n"
        } else if command.starts_with("QUIT") {
            out.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else {
            b"500 Unknown command\r\n"
        };
        out.write_all(reply)?;
    }
}

/// A port on 127.0.0.1 that nothing listens on (it was free a moment ago).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A throwaway Exim configuration and its spool, which Exim's user (Exim drops to it when run
/// with -C) can write.
struct Exim {
    _dir: tempfile::TempDir,
    spool: PathBuf,
    conf: PathBuf,
}

impl Exim {
    fn new(stub: u16, refused: u16, slow: u16) -> Exim {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let spool = dir.path().join("spool");
        std::fs::create_dir(&spool).unwrap();
        std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
        let conf = dir.path().join("exim.conf");
        std::fs::write(
            &conf,
            format!(
                "primary_hostname = relay.test\n\
                 spool_directory = {spool}\n\
                 log_file_path = {spool}/%slog\n\
                 keep_environment =\n\
                 acl_smtp_connect = acl_connect\n\
                 acl_smtp_rcpt = acl_rcpt\n\
                 acl_smtp_data = acl_data\n\
                 begin acl\n\
                 acl_connect:\n  \
                   warn seen = 1d / key=conn-$sender_host_address\n  \
                   warn ratelimit = 100 / 1h / per_conn\n  \
                   accept\n\
                 acl_rcpt:\n  \
                   warn ratelimit = 100 / 1h / per_rcpt\n  \
                   warn ratelimit = 100 / 1d / per_addr\n  \
                   warn ratelimit = 20 / 10m / per_cmd / unique=$local_part@$domain\n  \
                   warn ratelimit = 100 / 1m / per_mail / $sender_address\n  \
                   warn seen = -5m / key=rcpt-$local_part@$domain\n  \
                   deny domains = stub.example\n       \
                        !verify = recipient/callout=5s,random,postmaster\n  \
                   accept\n\
                 acl_data:\n  \
                   warn ratelimit = 1M / 1h / per_byte\n  \
                   accept\n\
                 begin routers\n\
                 stub:\n  driver = manualroute\n  domains = stub.example\n  route_list = * 127.0.0.1\n  \
                   self = send\n  transport = smtp_stub\n\
                 refused:\n  driver = manualroute\n  domains = refused.example\n  route_list = * 127.0.0.1\n  \
                   self = send\n  transport = smtp_refused\n\
                 slow:\n  driver = manualroute\n  domains = slow.example\n  route_list = * 127.0.0.1\n  \
                   self = send\n  transport = smtp_slow\n\
                 begin transports\n\
                 smtp_stub:\n  driver = smtp\n  port = {stub}\n  allow_localhost\n  hosts_pipe_connect = *\n\
                 smtp_refused:\n  driver = smtp\n  port = {refused}\n  allow_localhost\n\
                 smtp_slow:\n  driver = smtp\n  port = {slow}\n  allow_localhost\n  max_parallel = 2\n  \
                   serialize_hosts = *\n\
                 begin retry\n\
                 * * F,2h,15m\n",
                spool = spool.display(),
            ),
        )
        .unwrap();
        Exim { _dir: dir, spool, conf }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(EXIM);
        command.arg("-C").arg(&self.conf).args(args);
        command
    }

    /// Runs exim4 with `stdin`, and returns its output.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let child = spawn_with_input(self.command(args), stdin.as_bytes());
        child.wait_with_output().unwrap()
    }

    /// Submits a message to `rcpt` and delivers it at once (`-odi`), in the background.
    fn deliver(&self, rcpt: &str) -> Child {
        let message = format!("From: alice@sender.example\nTo: {rcpt}\nSubject: hints\n\nhello\n");
        spawn_with_input(self.command(&["-odi", "-f", "alice@sender.example", rcpt]), message.as_bytes())
    }

    /// `exim_dumpdb [flags] <spool> <db>`'s output, in [`TZ`].
    fn dump(&self, flags: &[&str], db: &str) -> String {
        let output = Command::new(EXIM_DUMPDB).args(flags).arg(&self.spool).arg(db).env("TZ", TZ).output().unwrap();
        assert!(output.status.success(), "{EXIM_DUMPDB} {db}: {}{}", stdout(&output), stderr(&output));
        stdout(&output)
    }
}

fn spawn_with_input(mut command: Command, stdin: &[u8]) -> Child {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {command:?} ({err}); .ci/run installs exim4-daemon-light"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child
}

fn wait_ok(child: Child, what: &str) {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{what}: {}{}", stdout(&output), stderr(&output));
}

/// Runs `hintsctl --socket <daemon> args...` in [`TZ`], with `stdin`.
fn hintsctl(daemon: &Daemon, args: &[&str], stdin: &[u8]) -> Output {
    let mut command = Command::new(hintsctl_bin());
    command.arg("--socket").arg(&daemon.socket).args(args).env("TZ", TZ);
    spawn_with_input(command, stdin).wait_with_output().unwrap()
}

/// A dump's records, sorted (exim_dumpdb's order is Berkeley DB's hash order, hintsctl's is key
/// order): one line each, two for retry (a record starts with two spaces).
fn records(db: &str, dump: &str) -> Vec<String> {
    let mut records: Vec<String> = Vec::new();
    for line in dump.lines() {
        match records.last_mut() {
            Some(record) if db == "retry" && !line.starts_with("  ") => {
                record.push('\n');
                record.push_str(line);
            }
            _ => records.push(line.to_owned()),
        }
    }
    records.sort();
    records
}

fn rcpt_replies(session: &Output) -> Vec<String> {
    stdout(session)
        .lines()
        .filter(|line| line.starts_with("250 Accepted") || line.starts_with("550 "))
        .map(str::to_owned)
        .collect()
}

/// Makes Exim write every hints database the dump can carry, and misc; returns the spool and
/// misc's dump taken while a serialized delivery was in progress.
fn exim_writes_hints(stub: &Stub, slow: &Stub, refused: u16) -> (Exim, String) {
    let exim = Exim::new(stub.port, refused, slow.port);
    // ACLs: seen and ratelimit (plain, unique, per_byte) records; -bhc makes real callouts.
    let session = exim.run(
        &["-bhc", "192.0.2.10"],
        "EHLO client.test\r\nMAIL FROM:<alice@sender.example>\r\nRCPT TO:<bob@stub.example>\r\n\
         RCPT TO:<alice@stub.example>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\nSubject: hints\r\n\r\nhello\r\n.\r\n\
         QUIT\r\n",
    );
    assert!(session.status.success(), "{}{}", stdout(&session), stderr(&session));
    assert_eq!(
        rcpt_replies(&session),
        ["250 Accepted", "550 550 No such user", "250 Accepted"],
        "{}",
        stdout(&session)
    );
    // A closed port: retry, and wait-smtp_refused with both messages waiting for the host.
    wait_ok(exim.deliver("bob@refused.example"), "delivery to a closed port");
    wait_ok(exim.deliver("carol@refused.example"), "second delivery to a closed port");
    // The stub advertises PIPECONNECT: the EHLO cache in misc.
    wait_ok(exim.deliver("bob@stub.example"), "delivery to the stub");
    // Serialize records live in misc only while their delivery is in progress: dump it then.
    let delivery = exim.deliver("bob@slow.example");
    slow.arrived.recv_timeout(Duration::from_secs(60)).expect("the delivery to the slow stub starts");
    let misc_in_flight = exim.dump(&[], "misc");
    slow.release.send(()).unwrap();
    wait_ok(delivery, "delivery to the slow stub");
    (exim, misc_in_flight)
}

#[test]
fn dumps_of_hints_exim_wrote_import_and_print_back_as_exim_dumpdb_printed_them() {
    let (stub, slow, refused) = (Stub::start(false), Stub::start(true), closed_port());
    let (exim, misc_in_flight) = exim_writes_hints(&stub, &slow, refused);

    // Exim wrote what the test is about.
    let dumps: Vec<(&str, String)> = CARRIED.iter().map(|db| (*db, exim.dump(&[], db))).collect();
    let dump_of = |db: &str| &dumps.iter().find(|(name, _)| *name == db).unwrap().1;
    assert!(dump_of("retry").starts_with(&format!("  T:127.0.0.1:127.0.0.1:{refused} 111 ")), "{}", dump_of("retry"));
    assert_eq!(records("wait-smtp_refused", dump_of("wait-smtp_refused"))[0].split(' ').count(), 4);
    let callout = dump_of("callout");
    for want in
        ["stub.example callout=accept postmaster=accept (", " random=reject (", "alice@stub.example callout=reject"]
    {
        assert!(callout.contains(want), "{want:?} in\n{callout}");
    }
    let ratelimit = dump_of("ratelimit");
    for want in
        [" key: 1d/per_rcpt/unique/192.0.2.10", " key: 10m/per_cmd/unique/192.0.2.10", " key: 1h/per_mail/192.0.2.10"]
    {
        assert!(ratelimit.contains(want), "{want:?} in\n{ratelimit}");
    }
    assert!(ratelimit.contains(" epoch: ") && ratelimit.contains(" size: 40 "), "{ratelimit}");
    assert!(dump_of("seen").contains("conn-192.0.2.10\t") && dump_of("seen").contains("rcpt-bob@stub.example\t"));
    let misc = exim.dump(&[], "misc");
    assert!(misc.contains(&format!(" 127.0.0.1:{}.EHLO\n", stub.port)), "{misc}");
    for want in [" host-serialize-127.0.0.1\n", " tpt-serialize-smtp_slow\n"] {
        assert!(misc_in_flight.contains(want), "{want:?} in\n{misc_in_flight}");
    }

    // The import from the spool (exim_dumpdb -z inside).
    let daemon = Daemon::start(&[]);
    let spool = exim.spool.to_str().unwrap();
    let import = hintsctl(&daemon, &["import-exim", "--spool", spool], b"");
    let summary = stdout(&import);
    assert!(import.status.success(), "{summary}{}", stderr(&import));
    for want in [
        "retry: 1 record imported; from 2 lines\n",
        "wait-smtp_refused: 1 record imported; from 1 line\n",
        "misc: 0 records imported, 1 record not carried by the dump; from 1 line\n",
        "lost: a unique record's Bloom filter bits are not printed",
        "lost: sequence (how many <host>:<n> continuation records there are) is not printed",
    ] {
        assert!(summary.contains(want), "{want:?} in\n{summary}");
    }
    assert!(!summary.contains("skipped"), "{summary}");

    // What the dump carries prints back as exim_dumpdb printed it, in local time and in UTC.
    for (db, dump) in &dumps {
        let ours = hintsctl(&daemon, &["dump", "--format", "exim", db], b"");
        assert!(ours.status.success(), "{db}: {}", stderr(&ours));
        assert_eq!(records(db, &stdout(&ours)), records(db, dump), "{db}");
        let ours_utc = hintsctl(&daemon, &["dump", "--format", "exim", "-z", db], b"");
        assert_eq!(records(db, &stdout(&ours_utc)), records(db, &exim.dump(&["-z"], db)), "{db} in UTC");
    }
    // Keys are stored as exim_dumpdb prints them, without Exim's NUL, in Exim's layouts.
    let seen = daemon.client().get(&common::db("seen"), b"conn-192.0.2.10").unwrap().expect("imported");
    assert_eq!(seen.value.len(), 8);
    let unique = daemon.client().get(&common::db("ratelimit"), b"10m/per_cmd/unique/192.0.2.10").unwrap().unwrap();
    assert_eq!(unique.value.len(), 80);
    assert!(unique.value[36..76].iter().all(|&b| b == 0), "the Bloom filter is not in the dump");
    // misc is counted, not imported.
    assert_eq!(stdout(&hintsctl(&daemon, &["dump", "--format", "exim", "misc"], b"")), "");

    // The same dumps on stdin, in local time, into another daemon, print back the same too.
    let other = Daemon::start(&[]);
    for (db, dump) in &dumps {
        let import = hintsctl(&other, &["import-exim", "--stdin", "--db", db], dump.as_bytes());
        assert!(import.status.success(), "{db}: {}{}", stdout(&import), stderr(&import));
        assert!(stdout(&import).contains("times were read in local time"), "{}", stdout(&import));
        let ours = hintsctl(&other, &["dump", "--format", "exim", db], b"");
        assert_eq!(records(db, &stdout(&ours)), records(db, dump), "{db} from stdin");
    }
    // misc dumped mid-delivery: its serialize records are read, counted, and not carried.
    let import = hintsctl(&other, &["import-exim", "--stdin", "--db", "misc"], misc_in_flight.as_bytes());
    assert!(import.status.success(), "{}{}", stdout(&import), stderr(&import));
    let lines = misc_in_flight.lines().count();
    assert!(
        stdout(&import).contains(&format!("misc: 0 records imported, {lines} records not carried by the dump")),
        "{}",
        stdout(&import)
    );
}

#[test]
fn lines_that_do_not_parse_are_skipped_with_their_number_and_the_rest_is_imported() {
    let daemon = Daemon::start(&[]);
    let dump = "conn-192.0.2.1\t29-Nov-2026 13:32:42\n\
                conn-192.0.2.2 29-Nov-2026 13:32:42\n\
                conn-192.0.2.3\t31-Nov-2026 13:32:42\n\
                conn-192.0.2.4\t29-Nov-2026 13:32:43\n";
    let import = hintsctl(&daemon, &["import-exim", "--stdin", "--utc", "--db", "seen"], dump.as_bytes());
    assert_eq!(import.status.code(), Some(1), "{}{}", stdout(&import), stderr(&import));
    let summary = stdout(&import);
    assert!(summary.contains("seen: 2 records imported, 2 lines skipped; from 4 lines"), "{summary}");
    assert!(summary.contains("skipped line 2: "), "{summary}");
    assert!(summary.contains("skipped line 3: \"31-Nov-2026 13:32:42\" is not a time"), "{summary}");
    assert!(stderr(&import).contains("see the summary"), "{}", stderr(&import));
    let ours = hintsctl(&daemon, &["dump", "--format", "exim", "--utc", "seen"], b"");
    assert_eq!(stdout(&ours), "conn-192.0.2.1\t29-Nov-2026 13:32:42\nconn-192.0.2.4\t29-Nov-2026 13:32:43\n");

    // A record that is not in Exim's layout is named on stderr and skipped when printing.
    let put = daemon.hintsctl(&["put", "seen", "not-exim", "hello"]);
    assert!(put.status.success());
    let ours = hintsctl(&daemon, &["dump", "--format", "exim", "--utc", "seen"], b"");
    assert_eq!(ours.status.code(), Some(1));
    assert_eq!(stdout(&ours).lines().count(), 2);
    assert!(
        stderr(&ours).contains("skipped the record under not-exim in seen: seen record of 5 bytes"),
        "{}",
        stderr(&ours)
    );

    // Usage errors: stdin needs one --db, tls cannot be read, the spool must be one.
    for args in [
        &["import-exim", "--stdin"][..],
        &["import-exim", "--stdin", "--db", "seen", "--db", "retry"],
        &["import-exim", "--stdin", "--db", "tls"],
        &["import-exim", "--spool", "/nonexistent"],
        &["dump", "--format", "exim", "greylist"],
        &["dump", "--utc", "seen"],
    ] {
        assert_eq!(hintsctl(&daemon, args, b"").status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn a_large_import_reports_progress_and_loads_in_batches() {
    let daemon = Daemon::start(&[]);
    let mut dump = String::new();
    for n in 0..10_001 {
        dump.push_str(&format!("rcpt-{n}@example.net\t29-Nov-2026 13:32:42\n"));
    }
    let import = hintsctl(&daemon, &["import-exim", "--stdin", "--utc", "--db", "seen"], dump.as_bytes());
    assert!(import.status.success(), "{}{}", stdout(&import), stderr(&import));
    assert!(stdout(&import).contains("seen: 10001 records imported; from 10001 lines"), "{}", stdout(&import));
    // stderr is not a terminal here: a line every 10 000 records.
    let progress: Vec<_> =
        stderr(&import).lines().filter(|line| line.contains("records imported so far")).map(str::to_owned).collect();
    assert_eq!(progress.len(), 1, "{}", stderr(&import));
    let stats = daemon.client().stats(Some(&common::db("seen"))).unwrap();
    assert_eq!(stats[0].records, 10_001);
    // A dry run reads and reports, and loads nothing.
    let other = Daemon::start(&[]);
    let dry = hintsctl(&other, &["import-exim", "--stdin", "--utc", "--db", "seen", "--dry-run"], dump.as_bytes());
    assert!(dry.status.success() && stdout(&dry).contains("seen: 10001 records read"), "{}", stdout(&dry));
    assert_eq!(other.client().stats(Some(&common::db("seen"))).unwrap().first().map_or(0, |stats| stats.records), 0);
}

#[test]
fn a_dump_line_far_longer_than_exim_writes_is_refused_not_held() {
    let daemon = Daemon::start(&[]);
    let mut input = vec![b'x'; 200 * 1024];
    input.push(b'\n');
    let mut child = Command::new(common::hintsctl_bin())
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["import-exim", "--stdin", "--db", "seen", "--utc"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // hintsctl stops reading at the limit, so the rest may meet a closed pipe.
    let _ = child.stdin.take().unwrap().write_all(&input);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(stderr(&output).contains("not an exim_dumpdb dump"), "{}", stderr(&output));
    daemon.client().ping().unwrap();
}
