//! Bad input through a raw socket: each case gets an error reply where one can be sent, the
//! connection is closed, and the daemon goes on serving everyone else with their data intact.

mod common;

use std::io::Write;

use common::{Daemon, closed_by_daemon, db, hello, receive, send};
use hints_proto::limits::{FRAME_BYTES_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX};
use hints_proto::message::CONNECTION_ERROR_ID;
use hints_proto::{ErrorCode, Hello, HelloReply, PROTOCOL_MAGIC, Request, RequestEnvelope, Response, ResponseEnvelope};

/// A daemon holding one record that every case checks is still there afterwards.
fn daemon_with_a_record() -> Daemon {
    let daemon = Daemon::start(&[]);
    daemon.client().put(&db("retry"), b"T:mx.example.net:192.0.2.7", b"keep me").unwrap();
    daemon
}

fn assert_record_intact(daemon: &Daemon) {
    let record = daemon.client().get(&db("retry"), b"T:mx.example.net:192.0.2.7").unwrap().expect("record kept");
    assert_eq!(record.value, b"keep me");
}

/// Sends `body` as one frame after a good hello, and returns the error reply.
fn error_for_frame(daemon: &Daemon, body: &[u8]) -> ResponseEnvelope {
    let mut stream = daemon.raw();
    hello(&mut stream);
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame).unwrap();
    let reply: ResponseEnvelope = receive(&mut stream);
    assert!(closed_by_daemon(&mut stream), "connection left open after {reply:?}");
    reply
}

fn error_code(reply: &ResponseEnvelope) -> ErrorCode {
    match &reply.response {
        Response::Error(err) => err.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn request_body(id: u64, request: Request) -> Vec<u8> {
    postcard::to_stdvec(&RequestEnvelope { id, request }).unwrap()
}

#[test]
fn a_frame_over_the_limit_is_refused_before_its_body_is_read() {
    let daemon = daemon_with_a_record();
    let mut stream = daemon.raw();
    hello(&mut stream);
    stream.write_all(&((FRAME_BYTES_MAX + 1) as u32).to_le_bytes()).unwrap();
    let reply: ResponseEnvelope = receive(&mut stream);
    assert_eq!((reply.id, error_code(&reply)), (CONNECTION_ERROR_ID, ErrorCode::FRAME_TOO_LARGE));
    assert!(closed_by_daemon(&mut stream));
    assert_record_intact(&daemon);
}

#[test]
fn bytes_that_do_not_decode_are_a_bad_frame() {
    let daemon = daemon_with_a_record();
    // Id 7, operation 2 (put), then a database name whose length runs past the frame.
    let reply = error_for_frame(&daemon, &[7, 2, 200, b'x']);
    assert_eq!((reply.id, error_code(&reply)), (7, ErrorCode::BAD_FRAME));
    // Not even an id.
    let reply = error_for_frame(&daemon, &[0xff]);
    assert_eq!((reply.id, error_code(&reply)), (CONNECTION_ERROR_ID, ErrorCode::BAD_FRAME));
    assert_record_intact(&daemon);
}

#[test]
fn a_frame_with_bytes_left_over_is_a_bad_frame() {
    let daemon = daemon_with_a_record();
    let mut body = request_body(3, Request::Ping);
    body.push(0);
    let reply = error_for_frame(&daemon, &body);
    assert_eq!((reply.id, error_code(&reply)), (3, ErrorCode::BAD_FRAME));
    assert_record_intact(&daemon);
}

#[test]
fn an_unknown_operation_is_named_in_the_error() {
    let daemon = daemon_with_a_record();
    let reply = error_for_frame(&daemon, &[9, 99]);
    assert_eq!((reply.id, error_code(&reply)), (9, ErrorCode::UNKNOWN_REQUEST));
    assert_record_intact(&daemon);
}

#[test]
fn a_request_before_the_hello_is_refused() {
    let daemon = daemon_with_a_record();
    let mut stream = daemon.raw();
    send(&mut stream, &RequestEnvelope { id: 1, request: Request::Ping });
    match receive::<HelloReply>(&mut stream) {
        HelloReply::Refused(err) => assert_eq!(err.code, ErrorCode::HELLO_EXPECTED),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(closed_by_daemon(&mut stream));
    assert_record_intact(&daemon);
}

#[test]
fn another_protocol_version_is_refused_in_words() {
    let daemon = daemon_with_a_record();
    let mut stream = daemon.raw();
    send(&mut stream, &Hello { magic: PROTOCOL_MAGIC, protocol_version: 999, client_name: "future".into() });
    match receive::<HelloReply>(&mut stream) {
        HelloReply::Refused(err) => {
            assert_eq!(err.code, ErrorCode::VERSION_MISMATCH);
            assert!(err.message.contains("999"), "{err}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(closed_by_daemon(&mut stream));
    assert_record_intact(&daemon);
}

#[test]
fn names_keys_and_values_over_their_limits_are_refused() {
    let daemon = daemon_with_a_record();
    let bad_name = hints_proto::DbName::new("ok").unwrap();
    let mut bad_name_body = request_body(4, Request::Get { db: bad_name, key: b"k".to_vec() });
    // Turn "ok" into "O!" on the wire: the daemon must check names it decodes.
    let at = bad_name_body.windows(2).position(|w| w == b"ok").unwrap();
    bad_name_body[at..at + 2].copy_from_slice(b"O!");
    let cases = [
        (4, bad_name_body, ErrorCode::BAD_DB_NAME),
        (5, request_body(5, Request::Get { db: db("misc"), key: vec![b'k'; KEY_BYTES_MAX + 1] }), ErrorCode::BAD_KEY),
        (6, request_body(6, Request::Get { db: db("misc"), key: Vec::new() }), ErrorCode::BAD_KEY),
        (
            7,
            request_body(7, Request::Put { db: db("misc"), key: b"k".to_vec(), value: vec![0; VALUE_BYTES_MAX + 1] }),
            ErrorCode::VALUE_TOO_LARGE,
        ),
    ];
    for (id, body, code) in cases {
        let reply = error_for_frame(&daemon, &body);
        assert_eq!((reply.id, error_code(&reply)), (id, code));
    }
    assert_record_intact(&daemon);
    assert_eq!(daemon.client().get(&db("misc"), b"k").unwrap(), None, "the refused put stored nothing");
}

#[test]
fn silent_and_half_sent_clients_hold_nobody_up() {
    let daemon = daemon_with_a_record();
    let _silent = daemon.raw();
    let mut half_hello = daemon.raw();
    half_hello.write_all(&[20, 0, 0, 0, b'H', b'N']).unwrap();
    let mut half_request = daemon.raw();
    hello(&mut half_request);
    half_request.write_all(&[50, 0, 0, 0, 1, 1]).unwrap();
    // While all three hang, others are served, over and over.
    let mut client = daemon.client();
    for n in 0..100u32 {
        client.put(&db("misc"), format!("k{n}").as_bytes(), b"v").unwrap();
    }
    assert_eq!(client.scan(&db("misc"), b"k", None, 1000).unwrap().records.len(), 100);
    assert_record_intact(&daemon);
}

#[test]
fn a_good_request_pipelined_before_a_bad_one_is_still_answered() {
    let daemon = daemon_with_a_record();
    let mut stream = daemon.raw();
    hello(&mut stream);
    let mut bytes = Vec::new();
    hints_proto::frame::encode_frame(
        &RequestEnvelope {
            id: 1,
            request: Request::Get { db: db("retry"), key: b"T:mx.example.net:192.0.2.7".to_vec() },
        },
        &mut bytes,
    )
    .unwrap();
    bytes.extend_from_slice(&[2, 0, 0, 0, 2, 99]);
    stream.write_all(&bytes).unwrap();
    let first: ResponseEnvelope = receive(&mut stream);
    assert_eq!(first.id, 1);
    assert!(matches!(first.response, Response::Value(Some(ref record)) if record.value == b"keep me"));
    let second: ResponseEnvelope = receive(&mut stream);
    assert_eq!((second.id, error_code(&second)), (2, ErrorCode::UNKNOWN_REQUEST));
    assert!(closed_by_daemon(&mut stream));
}

#[test]
fn an_oversized_hello_is_refused_before_it_is_read() {
    let daemon = daemon_with_a_record();
    let mut stream = daemon.raw();
    // A million-byte "hello": nothing that large is buffered for a client that has not said
    // who it is.
    stream.write_all(&1_000_000u32.to_le_bytes()).unwrap();
    match receive::<HelloReply>(&mut stream) {
        HelloReply::Refused(err) => assert_eq!(err.code, ErrorCode::FRAME_TOO_LARGE),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(closed_by_daemon(&mut stream));
    assert_record_intact(&daemon);
}
