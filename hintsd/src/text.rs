//! The text socket for Exim's `${readsocket}`: one request per connection, read until the
//! client half-closes or sends a newline (whichever comes first), one reply line, then close.
//!
//! The lines are `hints_proto::text`'s; requests go to the databases' actors exactly as the
//! binary protocol's do. A client that sends nothing, or too much, gets an `error` reply
//! within [`TEXT_READ_WAIT_MAX`], never a hang (Exim's own default wait is 5 s).

use std::time::Duration;

use hints_proto::text::{TEXT_REQUEST_BYTES_MAX, error_line, format_reply, parse_request};
use interprocess::os::unix::uds_local_socket::tokio::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

use crate::connection::{ConnectionContext, Peer, answer};
use crate::db::{ConnId, ConnectionClosed};

/// How long a client has to send its request: under Exim's default readsocket wait of 5 s, so
/// the reply (an error) arrives before Exim gives up.
pub const TEXT_READ_WAIT_MAX: Duration = Duration::from_secs(3);
/// How long the reply may take to write, and the client to close after it.
pub const TEXT_WRITE_WAIT_MAX: Duration = Duration::from_secs(2);
/// How long a request may wait for its answer (behind another client's exclusive session,
/// say) before it is withdrawn, never to be applied, and answered `error busy`: under Exim's
/// default readsocket wait of 5 s.
pub const TEXT_ANSWER_WAIT_MAX: Duration = Duration::from_secs(4);

/// Serves one text connection: read a request, answer it, close.
pub async fn serve(
    mut stream: Stream,
    peer: Peer,
    conn: ConnId,
    _permit: OwnedSemaphorePermit,
    ctx: ConnectionContext,
) {
    let stop_watch = ctx.stop.watch();
    let request = tokio::select! {
        biased;
        () = stop_watch.stopped() => Err("hintsd is stopping".to_owned()),
        read = tokio::time::timeout(TEXT_READ_WAIT_MAX, read_request(&mut stream)) => match read {
            Ok(read) => read,
            Err(_) => Err(format!("no request within {} s", TEXT_READ_WAIT_MAX.as_secs())),
        },
    };
    let reply = match request.and_then(|line| parse_request(&line)) {
        Ok(request) => {
            let kind = request.kind();
            let database = request.target_db().and_then(|db| ctx.registry.lookup(&db)).map(|handle| handle.addr);
            tokio::select! {
                response = answer(&ctx.registry, request, conn) => {
                    tracing::debug!(pid = ?peer.pid, op = kind, "text request answered");
                    format_reply(&response)
                }
                () = tokio::time::sleep(TEXT_ANSWER_WAIT_MAX) => {
                    // Withdraw it where it waits, so it is never applied for a client that
                    // has been told it failed.
                    if let Some(addr) = database {
                        addr.do_send(ConnectionClosed(conn));
                    }
                    tracing::info!(pid = ?peer.pid, op = kind, "text request withdrawn: no answer in time");
                    error_line(&format!("busy: no answer within {} s", TEXT_ANSWER_WAIT_MAX.as_secs()))
                }
            }
        }
        Err(reason) => {
            tracing::info!(pid = ?peer.pid, uid = ?peer.uid, reason = %reason, "text request refused");
            error_line(&reason)
        }
    };
    let _ = tokio::time::timeout(TEXT_WRITE_WAIT_MAX, async {
        // No newline: the close ends the reply, and Exim keeps a newline, which would spoil
        // `${if eq{...}{pass}}` in an ACL.
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client may still send until it closes, so that closing with unread
        // bytes does not reset the connection under the reply.
        let mut sink = [0u8; 512];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

/// Reads up to the first newline or the client's half-close, refusing a request over
/// [`TEXT_REQUEST_BYTES_MAX`] bytes without reading further.
async fn read_request(stream: &mut Stream) -> Result<Vec<u8>, String> {
    let mut request = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|err| format!("reading the request: {err}"))?;
        if n == 0 {
            return Ok(request);
        }
        let chunk = &chunk[..n];
        if let Some(end) = chunk.iter().position(|&byte| byte == b'\n') {
            request.extend_from_slice(&chunk[..end]);
            return check_length(request);
        }
        request.extend_from_slice(chunk);
        check_length_so_far(&request)?;
    }
}

fn check_length(request: Vec<u8>) -> Result<Vec<u8>, String> {
    check_length_so_far(&request)?;
    Ok(request)
}

fn check_length_so_far(request: &[u8]) -> Result<(), String> {
    if request.len() > TEXT_REQUEST_BYTES_MAX {
        return Err(format!("request over {TEXT_REQUEST_BYTES_MAX} bytes"));
    }
    Ok(())
}
