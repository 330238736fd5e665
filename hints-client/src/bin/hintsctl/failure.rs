//! Why hintsctl stopped, and the exit status each reason gets.

use std::fmt;
use std::io;

use hints_client::Error;

/// Success.
pub const EXIT_OK: u8 = 0;
/// `get` or `del` of a key with no record (or a daemon's `NOT_FOUND`), or `serialize` finding
/// every slot taken; also an `import-exim` or `dump --format exim` that had to leave something
/// out.
pub const EXIT_NOT_FOUND: u8 = 1;
/// A usage error: clap's own, a bad database name, duration, time or hex string, or a request
/// the daemon called malformed (a condition it cannot parse, say).
pub const EXIT_USAGE: u8 = 2;
/// The daemon could not be reached, or refused this client.
pub const EXIT_UNAVAILABLE: u8 = 3;
/// Any other error: the daemon's (busy, shutting down, a failed database), an answer that
/// could not be read, or output that could not be written.
pub const EXIT_OTHER: u8 = 4;

/// The exit statuses, for `--help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success
  1  not found: get or del of a key that has no record; serialize found every slot
     taken (it printed busy); or incomplete: import-exim skipped lines it could not
     read (the rest was imported), dump --format exim skipped records it could not print
  2  usage error: a bad option or argument, database name, duration, --at time or
     hex string, or a request hintsd rejected as malformed (a ratelimit or seen
     condition it cannot parse, say)
  3  hintsd is unavailable (no socket, connection refused, timed out, connection lost)
     or refused this client (credentials, protocol version, too many connections)
  4  any other error from hintsd (busy, shutting down, a database that failed), an
     answer hintsctl could not read, or output that could not be written";

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The command line was wrong in a way clap could not check (hex that is not hex).
    Usage(String),
    /// The record asked for does not exist.
    NotFound(String),
    /// `serialize` found every slot taken; its output line already said so.
    Busy,
    /// The call to hintsd failed.
    Client(Error),
    /// A call failed at a step worth naming (`releasing the slot after --hold`).
    ClientDuring {
        /// What hintsctl was doing.
        doing: String,
        err: Error,
    },
    /// Writing to stdout failed.
    Output(io::Error),
    /// The command did what it could but left something out, each thing reported already
    /// (lines `import-exim` could not read, records `dump --format exim` could not print).
    Incomplete(String),
    /// Anything else that went wrong here (a child process or an input that failed).
    Other(String),
}

impl Failure {
    /// The process's exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::NotFound(_) | Failure::Busy | Failure::Incomplete(_) => EXIT_NOT_FOUND,
            Failure::Other(_) => EXIT_OTHER,
            Failure::Client(err) | Failure::ClientDuring { err, .. } => match err {
                Error::NotFound(_) => EXIT_NOT_FOUND,
                Error::BadRequest(_) => EXIT_USAGE,
                Error::Unavailable { .. } | Error::Refused(_) => EXIT_UNAVAILABLE,
                Error::Daemon(_) | Error::Protocol(_) => EXIT_OTHER,
            },
            // A reader that stopped early (`hintsctl dump misc | head`) is not a failure.
            Failure::Output(err) if err.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
            Failure::Output(_) => EXIT_OTHER,
        }
    }

    /// Whether to say anything on stderr.
    pub fn is_silent(&self) -> bool {
        match self {
            Failure::Busy => true,
            Failure::Output(err) => err.kind() == io::ErrorKind::BrokenPipe,
            _ => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(what) | Failure::NotFound(what) | Failure::Incomplete(what) | Failure::Other(what) => {
                f.write_str(what)
            }
            Failure::Busy => f.write_str("every slot is taken"),
            Failure::Client(err) => write!(f, "{err}"),
            Failure::ClientDuring { doing, err } => write!(f, "{doing}: {err}"),
            Failure::Output(err) => write!(f, "cannot write the output: {err}"),
        }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::Client(err)
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        Failure::Output(err)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use hints_client::{ErrorCode, ErrorReply};

    use super::*;

    fn reply(code: ErrorCode) -> ErrorReply {
        ErrorReply::new(code, "why")
    }

    #[test]
    fn each_failure_gets_its_documented_exit_status() {
        let unavailable = Error::Unavailable { socket: PathBuf::from("/s"), reason: "gone".into() };
        let cases = [
            (Failure::NotFound("no record".into()), 1),
            (Failure::Client(Error::NotFound(reply(ErrorCode::NOT_FOUND))), 1),
            (Failure::Usage("bad hex".into()), 2),
            (Failure::Client(Error::BadRequest(reply(ErrorCode::BAD_KEY))), 2),
            (Failure::Client(unavailable), 3),
            (Failure::Client(Error::Refused(reply(ErrorCode::NOT_ALLOWED))), 3),
            (Failure::Client(Error::Daemon(reply(ErrorCode::BUSY))), 4),
            (Failure::Client(Error::Protocol("garbage".into())), 4),
            (Failure::Output(io::Error::from(io::ErrorKind::StorageFull)), 4),
            (Failure::Output(io::Error::from(io::ErrorKind::BrokenPipe)), 0),
            (Failure::ClientDuring { doing: "releasing".into(), err: Error::Daemon(reply(ErrorCode::BUSY)) }, 4),
            (Failure::Incomplete("2 lines skipped".into()), 1),
            (Failure::Other("cannot run exim_dumpdb".into()), 4),
        ];
        for (failure, code) in cases {
            assert_eq!(failure.exit_code(), code, "{failure:?}");
            assert_eq!(failure.is_silent(), code == 0, "{failure:?}");
        }
        assert_eq!(Failure::Busy.exit_code(), 1);
        assert!(Failure::Busy.is_silent(), "the output line said busy");
    }

    #[test]
    fn the_help_text_lists_every_status() {
        for code in [EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_OTHER] {
            assert!(EXIT_STATUS_HELP.contains(&format!("\n  {code}  ")), "{code}");
        }
    }

    #[test]
    fn an_unavailable_daemon_is_reported_with_its_socket() {
        let err = Error::Unavailable {
            socket: PathBuf::from("/tmp/hintsd-0/hintsd.sock"),
            reason: "No such file or directory".into(),
        };
        assert_eq!(
            Failure::Client(err.clone()).to_string(),
            "cannot reach hintsd at /tmp/hintsd-0/hintsd.sock: No such file or directory"
        );
        let during = Failure::ClientDuring { doing: "releasing the slot".into(), err };
        assert_eq!(during.exit_code(), 3);
        assert_eq!(
            during.to_string(),
            "releasing the slot: cannot reach hintsd at /tmp/hintsd-0/hintsd.sock: No such file or directory"
        );
    }
}
