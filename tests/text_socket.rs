//! The text socket for Exim's `${readsocket}` through a raw Unix socket, as Exim uses it:
//! the request, a half-close (or a newline), one reply line, then the daemon closes.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use common::Daemon;
use hints_proto::text::TEXT_REQUEST_BYTES_MAX;

fn text_socket(daemon: &Daemon) -> PathBuf {
    daemon.socket.with_file_name("hintsd-text.sock")
}

/// Sends `request` as Exim does (then half-closes) and reads the reply to the end.
fn ask(daemon: &Daemon, request: &str) -> String {
    let mut stream = UnixStream::connect(text_socket(daemon)).unwrap();
    stream.set_read_timeout(Some(common::DAEMON_WAIT_MAX)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn every_command_answers_one_line_an_acl_can_test() {
    let daemon = Daemon::start(&[]);
    assert_eq!(ask(&daemon, "ping"), "pong");
    assert_eq!(ask(&daemon, "ratelimit 2 / 1h / per_rcpt / 192.0.2.1"), "under 1");
    assert!(ask(&daemon, "ratelimit 2 / 1h / per_rcpt / 192.0.2.1").starts_with("under 1.99"));
    assert!(ask(&daemon, "ratelimit 2 / 1h / per_rcpt / 192.0.2.1").starts_with("over 2.99"));
    assert_eq!(ask(&daemon, "seen -5m / key=conn-192.0.2.1"), "false");
    assert_eq!(ask(&daemon, "greylist 192.0.2.1_a@b.example_c@d.example 5m"), "defer 300");
    assert_eq!(ask(&daemon, "put misc note two words"), "ok");
    assert_eq!(ask(&daemon, "get misc note"), "found two words");
    assert_eq!(ask(&daemon, "del misc note"), "deleted");
    assert_eq!(ask(&daemon, "get misc note"), "notfound");
    assert_eq!(ask(&daemon, "counter misc rcpts 5"), "5");
    // The binary protocol sees what the text one wrote, and the other way round.
    daemon.client().put(&common::db("misc"), b"from-rust", b"line\none").unwrap();
    assert_eq!(ask(&daemon, "get misc from-rust"), "found line\\none", "a value is escaped onto one line");
}

#[test]
fn a_newline_ends_the_request_without_a_half_close() {
    let daemon = Daemon::start(&[]);
    let mut stream = UnixStream::connect(text_socket(&daemon)).unwrap();
    stream.set_read_timeout(Some(common::DAEMON_WAIT_MAX)).unwrap();
    stream.write_all(b"ping\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "pong", "the daemon replied and closed");
}

#[test]
fn bad_requests_get_an_error_line_and_others_are_served() {
    let daemon = Daemon::start(&[]);
    for (request, words) in [
        ("frobnicate", "unknown command"),
        ("", "empty request"),
        ("ratelimit 10 / 1h / strict / leaky / k", "conflicting update modes"),
        ("ratelimit 10 / 1h / per_rcpt / per_mail / k", "conflicting per_* options"),
        ("seen -5m", "key"),
        ("get Bad k", "database name"),
        ("greylist k soon", "duration"),
    ] {
        let reply = ask(&daemon, request);
        assert!(reply.starts_with("error ") && reply.contains(words), "{request:?} gave {reply:?}");
        assert!(!reply.contains('\n'), "one line, no newline: {reply:?}");
    }
    let long = format!("get misc {}", "k".repeat(TEXT_REQUEST_BYTES_MAX));
    assert!(ask(&daemon, &long).starts_with("error request over"));
    assert_eq!(ask(&daemon, "ping"), "pong");
}

#[test]
fn a_client_that_sends_nothing_gets_an_error_in_bounded_time() {
    let daemon = Daemon::start(&[]);
    let mut silent = UnixStream::connect(text_socket(&daemon)).unwrap();
    silent.set_read_timeout(Some(common::DAEMON_WAIT_MAX)).unwrap();
    // Meanwhile others are answered.
    assert_eq!(ask(&daemon, "ping"), "pong");
    let mut reply = String::new();
    silent.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("error no request within"), "{reply:?}");
}

#[test]
fn the_text_socket_has_the_main_sockets_mode() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start(&[]);
    let mode = std::fs::metadata(text_socket(&daemon)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
}

#[test]
fn a_request_stuck_behind_a_session_is_answered_busy_and_never_applied() {
    let daemon = Daemon::start(&[]);
    let mut holder = daemon.client();
    holder.lock(&common::db("misc"), std::time::Duration::from_secs(30)).unwrap();
    let reply = ask(&daemon, "put misc late value");
    assert!(reply.starts_with("error busy"), "{reply:?}");
    assert!(holder.unlock(&common::db("misc")).unwrap());
    assert_eq!(holder.get(&common::db("misc"), b"late").unwrap(), None, "the withdrawn put was not applied");
}
