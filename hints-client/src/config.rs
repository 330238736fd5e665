//! What a client needs to know before it connects: the socket, the per-call timeout and the
//! name it gives the daemon.

use std::path::PathBuf;
use std::time::Duration;

use hints_proto::socket_path;

/// The per-call timeout unless one is set: well under Exim's 5 s `readsocket` default, so a
/// missing daemon costs a delivery one second, not a stall.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether a client asks for a shared-memory ring unless told otherwise: yes, since a daemon
/// that offers none keeps the connection on its socket.
pub const RING_DEFAULT: bool = true;
/// The environment variable that chooses the ring for every client a process makes (the C
/// library's too): `1`, `yes`, `on` or `true` ask for it, `0`, `no`, `off` or `false` keep to
/// the socket; unset (or anything else) leaves [`RING_DEFAULT`].
pub const RING_ENV: &str = "HINTSD_RING";

/// The shortest timeout a client uses; a shorter (or zero) one is raised to this.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Where and how a client reaches hintsd. Building one does not connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The daemon's Unix socket.
    pub socket: PathBuf,
    /// How long one call may take in all (connecting, handshake, request and reply).
    pub timeout: Duration,
    /// Who is calling, for the daemon's logs (`exim`, `hintsctl`); cut to 64 bytes.
    pub client_name: String,
    /// Ask the daemon, after the hello, to move the connection to a shared-memory ring
    /// (requests and replies through memory, no system call while both ends are busy). A
    /// daemon that offers none answers so and the connection stays on the socket.
    pub ring: bool,
}

impl ClientConfig {
    /// A config for the socket at `socket`, with the default timeout, this program's name, and
    /// the ring as `$HINTSD_RING` says ([`RING_ENV`]).
    pub fn new(socket: impl Into<PathBuf>) -> ClientConfig {
        ClientConfig {
            socket: socket.into(),
            timeout: DEFAULT_TIMEOUT,
            client_name: program_name(),
            ring: ring_from_environment(std::env::var_os(RING_ENV).as_deref()),
        }
    }

    /// A config for the socket the daemon listens on by default, found exactly as the daemon
    /// finds it: `$HINTSD_SOCKET`, else `$XDG_RUNTIME_DIR/hintsd/hintsd.sock`, else
    /// `/run/hintsd/hintsd.sock` for root and `/tmp/hintsd-<euid>/hintsd.sock` for others.
    pub fn from_environment() -> ClientConfig {
        ClientConfig::new(resolve_socket(None))
    }

    /// Sets the socket.
    #[must_use]
    pub fn with_socket(mut self, socket: impl Into<PathBuf>) -> ClientConfig {
        self.socket = socket.into();
        self
    }

    /// Sets the per-call timeout (raised to [`MIN_TIMEOUT`] if shorter).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.timeout = timeout;
        self
    }

    /// Asks for a shared-memory ring (`true`) or keeps to the socket (`false`).
    #[must_use]
    pub fn with_ring(mut self, ring: bool) -> ClientConfig {
        self.ring = ring;
        self
    }

    /// Sets the name sent in the hello.
    #[must_use]
    pub fn with_client_name(mut self, client_name: impl Into<String>) -> ClientConfig {
        self.client_name = client_name.into();
        self
    }

    /// The timeout a call actually gets: [`ClientConfig::timeout`], at least [`MIN_TIMEOUT`].
    pub(crate) fn call_timeout(&self) -> Duration {
        self.timeout.max(MIN_TIMEOUT)
    }
}

/// The socket path by hints-proto's rule: `explicit` when given and not empty, else the
/// environment's choice for this process's effective uid (the rule the daemon listens by).
pub fn resolve_socket(explicit: Option<PathBuf>) -> PathBuf {
    // SAFETY: geteuid(2) takes no arguments, cannot fail and touches no memory of ours.
    let euid = unsafe { libc::geteuid() };
    socket_path::from_environment(explicit, euid)
}

/// The ring choice `$HINTSD_RING` makes (see [`RING_ENV`]).
fn ring_from_environment(value: Option<&std::ffi::OsStr>) -> bool {
    match value.and_then(std::ffi::OsStr::to_str).map(str::to_ascii_lowercase).as_deref() {
        Some("1" | "yes" | "on" | "true") => true,
        Some("0" | "no" | "off" | "false") => false,
        _ => RING_DEFAULT,
    }
}

/// The base name of argv\[0\], or `hints-client` when there is none.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "hints-client".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_replace_one_field_each_and_short_timeouts_are_raised() {
        let config =
            ClientConfig::new("/a.sock").with_timeout(Duration::ZERO).with_client_name("exim").with_socket("/b.sock");
        assert_eq!(config.socket, PathBuf::from("/b.sock"));
        assert_eq!(config.client_name, "exim");
        assert_eq!(config.timeout, Duration::ZERO);
        assert_eq!(config.call_timeout(), MIN_TIMEOUT);
        assert_eq!(ClientConfig::new("/a.sock").call_timeout(), DEFAULT_TIMEOUT);
    }

    #[test]
    fn hintsd_ring_chooses_the_ring_and_anything_unclear_leaves_the_default() {
        let read = |value: &str| ring_from_environment(Some(std::ffi::OsStr::new(value)));
        assert!(read("1") && read("YES") && read("on") && read("true"));
        assert!(!read("0") && !read("no") && !read("Off") && !read("false"));
        assert_eq!(read("maybe"), RING_DEFAULT);
        assert_eq!(ring_from_environment(None), RING_DEFAULT);
    }

    #[test]
    fn an_explicit_socket_wins_over_the_environment() {
        assert_eq!(resolve_socket(Some(PathBuf::from("/x.sock"))), PathBuf::from("/x.sock"));
    }
}
