//! Where the daemon's socket is: one rule, used by `hintsd` to listen and by every client to
//! connect, so they always agree.
//!
//! In order: an explicit path (`--socket`), else `$HINTSD_SOCKET`, else
//! `$XDG_RUNTIME_DIR/hintsd/hintsd.sock`, else `/run/hintsd/hintsd.sock` for root and
//! `/tmp/hintsd-<uid>/hintsd.sock` for anyone else. Empty variables count as unset.

use std::ffi::OsString;
use std::path::PathBuf;

/// The environment variable that names the socket.
pub const SOCKET_ENV: &str = "HINTSD_SOCKET";
/// The socket's file name inside its directory.
pub const SOCKET_FILE_NAME: &str = "hintsd.sock";

/// Applies the rule to given inputs (pure, for tests).
pub fn resolve(
    explicit: Option<PathBuf>,
    env_socket: Option<OsString>,
    xdg_runtime_dir: Option<OsString>,
    euid: u32,
) -> PathBuf {
    let non_empty = |v: Option<OsString>| v.filter(|v| !v.is_empty());
    if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return path;
    }
    if let Some(path) = non_empty(env_socket) {
        return PathBuf::from(path);
    }
    if let Some(dir) = non_empty(xdg_runtime_dir) {
        return PathBuf::from(dir).join("hintsd").join(SOCKET_FILE_NAME);
    }
    if euid == 0 {
        return PathBuf::from("/run/hintsd").join(SOCKET_FILE_NAME);
    }
    PathBuf::from(format!("/tmp/hintsd-{euid}")).join(SOCKET_FILE_NAME)
}

/// Applies the rule to this process's environment.
pub fn from_environment(explicit: Option<PathBuf>, euid: u32) -> PathBuf {
    resolve(explicit, std::env::var_os(SOCKET_ENV), std::env::var_os("XDG_RUNTIME_DIR"), euid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_takes_the_first_source_that_is_set() {
        let p = |s: &str| Some(PathBuf::from(s));
        let o = |s: &str| Some(OsString::from(s));
        assert_eq!(resolve(p("/a.sock"), o("/b.sock"), o("/xdg"), 0), PathBuf::from("/a.sock"));
        assert_eq!(resolve(None, o("/b.sock"), o("/xdg"), 0), PathBuf::from("/b.sock"));
        assert_eq!(resolve(None, o(""), o("/xdg"), 0), PathBuf::from("/xdg/hintsd/hintsd.sock"));
        assert_eq!(resolve(None, None, None, 0), PathBuf::from("/run/hintsd/hintsd.sock"));
        assert_eq!(resolve(None, None, o(""), 1000), PathBuf::from("/tmp/hintsd-1000/hintsd.sock"));
    }
}
