//! The `hintsctl` binary's typed subcommands (ratelimit, seen, greylist, serialize, counter,
//! snapshot) against a scripted stand-in for hintsd: the request each sends, the line it
//! prints, and its exit status. (The root package's tests run them against the real daemon.)

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hints_proto::frame::{decode_body, read_frame, write_frame};
use hints_proto::{
    DbName, ErrorCode, ErrorReply, HelloReply, PROTOCOL_VERSION, Request, RequestEnvelope, Response, ResponseEnvelope,
    Stamp,
};

/// One connection's worth of daemon: accepts the hello, then answers each request with
/// `answer` until the client closes, or until `answer` returns `None` (the daemon goes away).
/// Returns the requests it saw.
struct Fake {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    thread: JoinHandle<Vec<Request>>,
}

impl Fake {
    fn start(answer: impl Fn(&Request) -> Option<Response> + Send + 'static) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("hintsd.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let thread = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            serve(&mut stream, answer)
        });
        Fake { _dir: dir, socket, thread }
    }

    fn socket(&self) -> &Path {
        &self.socket
    }

    fn requests(self) -> Vec<Request> {
        self.thread.join().expect("the fake daemon panicked")
    }
}

fn serve(stream: &mut UnixStream, answer: impl Fn(&Request) -> Option<Response>) -> Vec<Request> {
    let (mut body, mut scratch) = (Vec::new(), Vec::new());
    read_frame(stream, &mut body).unwrap();
    let hello = HelloReply::Accepted { protocol_version: PROTOCOL_VERSION, daemon_version: "fake".into() };
    write_frame(stream, &hello, &mut scratch).unwrap();
    let mut seen = Vec::new();
    while read_frame(stream, &mut body).is_ok() {
        let RequestEnvelope { id, request } = decode_body(&body).unwrap();
        let response = answer(&request);
        seen.push(request);
        let Some(response) = response else {
            break;
        };
        write_frame(stream, &ResponseEnvelope { id, response }, &mut scratch).unwrap();
    }
    seen
}

fn hintsctl(socket: &Path, args: &[&str]) -> Output {
    // The fake daemon speaks only the socket, whatever the environment asks of clients.
    Command::new(env!("CARGO_BIN_EXE_hintsctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env(hints_client::config::RING_ENV, "0")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn db(name: &str) -> DbName {
    DbName::new(name).unwrap()
}

fn rate_answer(request: &Request) -> Option<Response> {
    Some(match request {
        Request::Ratelimit { .. } => {
            Response::Rate { rate: 0.1 + 0.2, over: true, key: "1h/per_mail/192.0.2.1".into(), written: true }
        }
        other => panic!("unexpected {other:?}"),
    })
}

#[test]
fn ratelimit_prints_over_or_under_and_the_exact_rate() {
    let fake = Fake::start(rate_answer);
    let output = hintsctl(fake.socket(), &["ratelimit", "2 / 1h / strict / 192.0.2.1", "--at", "1767323045.5"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "over 0.30000000000000004\n");
    let at = Some(Stamp { secs: 1_767_323_045, micros: 500_000 });
    assert_eq!(fake.requests(), vec![Request::Ratelimit { condition: "2 / 1h / strict / 192.0.2.1".into(), at }]);

    let fake = Fake::start(rate_answer);
    let output = hintsctl(fake.socket(), &["ratelimit", "2 / 1h / 192.0.2.1", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "{\"over\":true,\"rate\":0.30000000000000004,\"key\":\"1h/per_mail/192.0.2.1\",\"written\":true}\n"
    );
    assert!(matches!(&fake.requests()[..], [Request::Ratelimit { at: None, .. }]));
}

#[test]
fn a_condition_the_daemon_calls_malformed_is_a_usage_error() {
    let fake = Fake::start(|_| Some(Response::Error(ErrorReply::new(ErrorCode::BAD_ARGUMENT, "no key"))));
    let output = hintsctl(fake.socket(), &["ratelimit", "2 / 1h"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no key"), "{}", stderr(&output));
    fake.requests();
}

#[test]
fn seen_prints_true_or_false() {
    for (result, want) in [(true, "true\n"), (false, "false\n")] {
        let fake = Fake::start(move |_| Some(Response::Seen { result, written: !result }));
        let output = hintsctl(fake.socket(), &["seen", "-5m / key=192.0.2.1"]);
        assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), want), "{}", stderr(&output));
        assert_eq!(fake.requests(), vec![Request::Seen { condition: "-5m / key=192.0.2.1".into(), at: None }]);
    }
    let fake = Fake::start(|_| Some(Response::Seen { result: true, written: false }));
    let output = hintsctl(fake.socket(), &["seen", "5m / key=k", "--json"]);
    assert_eq!(stdout(&output), "{\"result\":true,\"written\":false}\n");
    fake.requests();
}

#[test]
fn greylist_prints_pass_or_defer_and_exits_0_either_way() {
    let fake = Fake::start(|_| Some(Response::Greylist { pass: false, retry_after_secs: 297 }));
    let output = hintsctl(fake.socket(), &["--hex", "greylist", "6b01", "--delay", "5m", "--expiry", "7d"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), "defer 297\n"), "{}", stderr(&output));
    let want = Request::Greylist {
        db: db("greylist"),
        key: b"k\x01".to_vec(),
        delay_secs: 300,
        expiry_secs: 7 * 86_400,
        at: None,
    };
    assert_eq!(fake.requests(), vec![want]);

    let fake = Fake::start(|_| Some(Response::Greylist { pass: true, retry_after_secs: 0 }));
    let args = ["greylist", "t", "--delay", "1m", "--expiry", "1d", "--db", "grey", "--at", "5", "--json"];
    let output = hintsctl(fake.socket(), &args);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), "{\"pass\":true,\"retry_after_secs\":0}\n"));
    assert!(matches!(&fake.requests()[..], [Request::Greylist { db, at: Some(Stamp { secs: 5, micros: 0 }), .. }]
        if db.as_str() == "grey"));
}

#[test]
fn serialize_prints_taken_or_busy_and_busy_exits_1_quietly() {
    let fake = Fake::start(|_| Some(Response::Slot { held: false, holders: 2 }));
    let output = hintsctl(fake.socket(), &["serialize", "misc", "mx.example.net", "--limit", "2"]);
    assert_eq!((output.status.code(), stdout(&output).as_str(), stderr(&output).as_str()), (Some(1), "busy 2\n", ""));
    let want = Request::SerializeTake { db: db("misc"), key: b"mx.example.net".to_vec(), limit: 2 };
    assert_eq!(fake.requests(), vec![want], "no release: nothing was held");

    let fake = Fake::start(|_| Some(Response::Slot { held: true, holders: 1 }));
    let output = hintsctl(fake.socket(), &["serialize", "misc", "k", "--limit", "1"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), "taken 1\n"));
    assert_eq!(fake.requests().len(), 1, "without --hold the slot goes with the connection");
}

#[test]
fn serialize_hold_keeps_the_slot_then_releases_it() {
    let fake = Fake::start(|request| {
        Some(match request {
            Request::SerializeTake { .. } => Response::Slot { held: true, holders: 1 },
            _ => Response::Slot { held: false, holders: 0 },
        })
    });
    let started = Instant::now();
    let output = hintsctl(fake.socket(), &["serialize", "misc", "k", "--limit", "1", "--hold", "1s"]);
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), "taken 1\n"), "{}", stderr(&output));
    let requests = fake.requests();
    assert!(matches!(&requests[..], [Request::SerializeTake { .. }, Request::SerializeRelease { .. }]), "{requests:?}");
}

#[test]
fn a_slot_lost_during_hold_is_reported_not_released_on_a_new_connection() {
    // The daemon goes away after granting the slot; a second connection must not come.
    let fake = Fake::start(|request| match request {
        Request::SerializeTake { .. } => Some(Response::Slot { held: true, holders: 1 }),
        _ => None,
    });
    let output = hintsctl(fake.socket(), &["serialize", "misc", "k", "--limit", "1", "--hold", "0s"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(stdout(&output), "taken 1\n");
    assert!(stderr(&output).contains("the slot went with the connection"), "{}", stderr(&output));
    // The failure is the held connection's end, not a failed attempt at a new one.
    assert!(stderr(&output).contains("the daemon closed the connection"), "{}", stderr(&output));
    assert_eq!(fake.requests().len(), 2, "the take, and the release the daemon never answered");
}

#[test]
fn counter_adds_one_by_default_or_any_signed_amount() {
    let fake = Fake::start(|request| match request {
        Request::Counter { delta, .. } => Some(Response::Counter(10 + delta)),
        other => panic!("unexpected {other:?}"),
    });
    let output = hintsctl(fake.socket(), &["counter", "misc", "c", "--add=-3", "--expiry", "1h", "--at", "7.000001"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), "7\n"), "{}", stderr(&output));
    let at = Some(Stamp { secs: 7, micros: 1 });
    let want = Request::Counter { db: db("misc"), key: b"c".to_vec(), delta: -3, expiry_secs: Some(3600), at };
    assert_eq!(fake.requests(), vec![want]);

    let fake = Fake::start(|_| Some(Response::Counter(1)));
    let output = hintsctl(fake.socket(), &["counter", "misc", "c"]);
    assert_eq!(stdout(&output), "1\n");
    assert!(matches!(&fake.requests()[..], [Request::Counter { delta: 1, expiry_secs: None, at: None, .. }]));
}

#[test]
fn snapshot_prints_what_was_written() {
    let fake = Fake::start(|_| Some(Response::Snapshotted { databases: 2, records: 9 }));
    let output = hintsctl(fake.socket(), &["snapshot"]);
    assert_eq!((output.status.code(), stdout(&output).as_str()), (Some(0), "wrote 2 databases, 9 records\n"));
    assert_eq!(fake.requests(), vec![Request::Snapshot { db: None }]);

    let fake = Fake::start(|_| Some(Response::Snapshotted { databases: 1, records: 0 }));
    let output = hintsctl(fake.socket(), &["snapshot", "misc"]);
    assert_eq!(stdout(&output), "wrote 1 databases, 0 records\n");
    assert_eq!(fake.requests(), vec![Request::Snapshot { db: Some(db("misc")) }]);
}

#[test]
fn a_bad_at_is_a_usage_error_before_anything_is_sent() {
    for at in ["-1", "1.", ".5", "1.1234567", "1e3", "18446744073709551616"] {
        let output = hintsctl(Path::new("/nonexistent/hintsd.sock"), &["seen", "5m / key=k", "--at", at]);
        assert_eq!(output.status.code(), Some(2), "{at}: {}", stderr(&output));
        assert!(!stderr(&output).contains("cannot reach"), "{at}: {}", stderr(&output));
    }
}
