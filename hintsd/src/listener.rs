//! The Unix socket: its directory and modes, stale-socket handling, the accept loop, the
//! peer-credential check and the connection limit.

use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hints_proto::frame::encode_frame;
use hints_proto::{ErrorCode, ErrorReply, HelloReply};
use interprocess::local_socket::traits::StreamCommon;
use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use interprocess::os::unix::uds_local_socket::tokio::{Listener, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::config::AccessPolicy;
use crate::connection::{ConnectionContext, Peer, serve_new};
use crate::db::ConnId;

/// Mode of a socket directory that the daemon creates.
pub const SOCKET_DIR_MODE: u32 = 0o750;
/// Mode of the socket itself.
pub const SOCKET_MODE: u32 = 0o660;
/// How long a refused client has to read the refusal and close.
const REFUSAL_WAIT_MAX: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of file descriptors, say) before trying again.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Why the socket could not be set up.
#[derive(Debug)]
pub struct BindError {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot listen on {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for BindError {}

/// Creates the socket's directory (mode 0750, given group) if missing, clears a stale socket
/// left by a daemon that died, and binds the socket with mode 0660 and the given group.
///
/// # Errors
/// Another daemon is listening on the path, the path is not a socket, or a system call failed.
pub fn bind(path: &Path, group: Option<u32>) -> Result<Listener, BindError> {
    let fail = |reason: String| BindError { path: path.to_owned(), reason };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        if dir.exists() {
            check_socket_dir(dir).map_err(fail)?;
        } else {
            std::fs::create_dir_all(dir).map_err(|err| fail(format!("creating {}: {err}", dir.display())))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(SOCKET_DIR_MODE))
                .map_err(|err| fail(format!("setting the mode of {}: {err}", dir.display())))?;
            if group.is_some() {
                chown(dir, None, group)
                    .map_err(|err| fail(format!("setting the group of {}: {err}", dir.display())))?;
            }
        }
    }
    clear_stale_socket(path).map_err(fail)?;
    let name = path.to_fs_name::<GenericFilePath>().map_err(|err| fail(err.to_string()))?;
    let listener = ListenerOptions::new()
        .name(name)
        .mode(SOCKET_MODE)
        .create_tokio_as::<Listener>()
        .map_err(|err| fail(err.to_string()))?;
    // The umask applies to the mode given at bind; set it outright.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|err| fail(format!("setting the socket's mode: {err}")))?;
    if group.is_some() {
        chown(path, None, group).map_err(|err| fail(format!("setting the socket's group: {err}")))?;
    }
    Ok(listener)
}

/// An existing socket directory must be ours or root's, and writable by others only if sticky
/// (as /tmp is): otherwise another user could swap the socket for one of their own, and
/// clients would talk to them.
fn check_socket_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory (a symbolic link is not accepted)", dir.display()));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(format!("{} belongs to uid {}, not to this daemon's user or root", dir.display(), meta.uid()));
    }
    const OTHERS_WRITE: u32 = 0o022;
    const STICKY: u32 = 0o1000;
    if meta.mode() & OTHERS_WRITE != 0 && meta.mode() & STICKY == 0 {
        return Err(format!("{} is writable by others and not sticky", dir.display()));
    }
    Ok(())
}

fn clear_stale_socket(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err.to_string()),
    };
    if !meta.file_type().is_socket() {
        return Err("the path exists and is not a socket".to_owned());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err("another hintsd is already listening there".to_owned());
    }
    tracing::info!(socket = %path.display(), "removing stale socket left by a daemon that stopped");
    std::fs::remove_file(path).map_err(|err| format!("removing the stale socket: {err}"))
}

/// Which protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Length-prefixed postcard frames (`hints-proto`), for the clients.
    Binary,
    /// One text line in, one out, for Exim's `${readsocket}` (`hints_proto::text`).
    Text,
}

/// Refusals being written at once, at most; past it a refused connection is closed unanswered,
/// so a connect loop cannot tie up file descriptors in refusals.
pub const REFUSALS_MAX: usize = 64;

/// What every listener shares: who may connect, and the daemon-wide connection limit.
#[derive(Clone, Debug)]
pub struct Admission {
    pub access: AccessPolicy,
    pub connections_max: usize,
    pub slots: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
}

impl Admission {
    /// The allow list and a limit of `connections_max` connections over all listeners.
    pub fn new(access: AccessPolicy, connections_max: usize) -> Admission {
        Admission {
            access,
            connections_max,
            slots: Arc::new(Semaphore::new(connections_max)),
            refusals: Arc::new(Semaphore::new(REFUSALS_MAX)),
        }
    }

    /// Answers a refused connection with `reply` if fewer than [`REFUSALS_MAX`] refusals are
    /// under way; otherwise closes it at once.
    fn refuse(&self, stream: Stream, protocol: Protocol, reply: ErrorReply, ctx: &ConnectionContext) {
        if let Ok(permit) = Arc::clone(&self.refusals).try_acquire_owned() {
            ctx.tracker.spawn(async move {
                refuse(stream, protocol, reply).await;
                drop(permit);
            });
        }
    }
}

/// Accepts connections until shutdown, then drops the listener (which removes the socket).
pub async fn accept_loop(listener: Listener, protocol: Protocol, admission: Admission, ctx: ConnectionContext) {
    let stop_watch = ctx.stop.watch();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop_watch.stopped() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
                continue;
            }
        };
        let creds = stream.peer_creds();
        let peer = Peer {
            pid: creds.as_ref().ok().and_then(|c| c.pid()),
            uid: creds.as_ref().ok().and_then(|c| c.euid()),
            client_name: String::new(),
        };
        let gid = creds.as_ref().ok().and_then(|c| c.egid());
        if !admission.access.allows(peer.uid, gid) {
            tracing::warn!(pid = ?peer.pid, uid = ?peer.uid, gid = ?gid, ?protocol, "refusing peer not on the allow list");
            let reply = ErrorReply::new(
                ErrorCode::NOT_ALLOWED,
                format!("uid {:?} gid {:?} is not allowed by this hintsd (see allow_uids, allow_gids)", peer.uid, gid),
            );
            admission.refuse(stream, protocol, reply, &ctx);
            continue;
        }
        let Ok(permit) = Arc::clone(&admission.slots).try_acquire_owned() else {
            let connections_max = admission.connections_max;
            tracing::warn!(pid = ?peer.pid, uid = ?peer.uid, connections_max, "refusing connection: at the connection limit");
            let reply = ErrorReply::new(
                ErrorCode::TOO_MANY_CONNECTIONS,
                format!("hintsd is at its limit of {connections_max} connections (connections_max)"),
            );
            admission.refuse(stream, protocol, reply, &ctx);
            continue;
        };
        let conn = next_conn_id();
        tracing::debug!(pid = ?peer.pid, uid = ?peer.uid, conn, ?protocol, "connection accepted");
        match protocol {
            Protocol::Binary => ctx.tracker.spawn(serve_new(stream, peer, conn, permit, ctx.clone())),
            Protocol::Text => ctx.tracker.spawn(crate::text::serve(stream, peer, conn, permit, ctx.clone())),
        };
    }
    drop(listener);
    tracing::info!(?protocol, "no longer accepting connections");
}

/// A new connection id; ids start above [`crate::db::DAEMON_CONN`], which names the
/// daemon's own requests.
fn next_conn_id() -> ConnId {
    static NEXT: AtomicU64 = AtomicU64::new(crate::db::DAEMON_CONN + 1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Answers the client's first words (a hello, or a text request) with a refusal, and closes
/// once the client has read it (closing with its request unread would reset the connection on
/// Linux and the client could lose the reason).
async fn refuse(mut stream: Stream, protocol: Protocol, reply: ErrorReply) {
    let mut frame = Vec::new();
    match protocol {
        Protocol::Binary => encode_frame(&HelloReply::Refused(reply), &mut frame).expect("a refusal fits a frame"),
        Protocol::Text => {
            frame.extend_from_slice(hints_proto::text::error_line(&reply.message).as_bytes());
        }
    }
    let _ = tokio::time::timeout(REFUSAL_WAIT_MAX, async {
        stream.write_all(&frame).await?;
        let mut sink = [0u8; 256];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}
