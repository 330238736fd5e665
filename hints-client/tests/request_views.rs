//! Requests that borrow their bytes (`RequestView`) are checked on the client before anything
//! is sent (no daemon needed: the socket does not exist, so a request that got as far as
//! connecting fails `Unavailable`), and owned requests still go through `pipeline_each`.

use hints_client::{Client, ClientConfig, Error};
use hints_proto::{ErrorCode, Request, RequestView};

fn client() -> Client {
    Client::new(ClientConfig::new("/nonexistent/hintsd-review.sock"))
}

#[test]
fn a_bad_view_is_refused_before_connecting() {
    let long_key = vec![b'k'; hints_proto::limits::KEY_BYTES_MAX + 1];
    let big_value = vec![0u8; hints_proto::limits::VALUE_BYTES_MAX + 1];
    let cases: [(&[RequestView<'_>], ErrorCode); 5] = [
        (&[RequestView::Get { db: "Bad", key: b"k" }], ErrorCode::BAD_DB_NAME),
        (&[RequestView::Get { db: "", key: b"k" }], ErrorCode::BAD_DB_NAME),
        (&[RequestView::Get { db: "misc", key: &long_key }], ErrorCode::BAD_KEY),
        (&[RequestView::Put { db: "misc", key: b"k", value: &big_value }], ErrorCode::VALUE_TOO_LARGE),
        // The bad one last: nothing of the pipeline goes out.
        (
            &[RequestView::Other(Request::Ping), RequestView::Put { db: "misc", key: b"", value: b"v" }],
            ErrorCode::BAD_KEY,
        ),
    ];
    for (requests, code) in cases {
        match client().pipeline_each(requests, |_| panic!("no reply expected")) {
            Err(Error::BadRequest(reply)) => assert_eq!(reply.code, code, "{requests:?}: {reply:?}"),
            other => panic!("{requests:?}: {other:?}"),
        }
    }
}

#[test]
fn owned_requests_still_go_through_pipeline_each() {
    let requests: Vec<Request> = vec![Request::Ping];
    // `&Vec<Request>` coerces; an empty literal needs its type spelled out now.
    let err = client().pipeline_each(&requests, |_| {}).unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    client().pipeline_each(&[] as &[Request], |_| {}).unwrap();
}
