//! The client's one error type: what went wrong with a call, in the caller's terms.

use std::fmt;
use std::path::PathBuf;

use hints_proto::ErrorReply;

/// Why a call to hintsd produced no answer.
///
/// An MTA usually cares about one question: is the hint missing because the daemon is not
/// there ([`Error::Unavailable`], carry on without it), or because something is wrong that
/// an operator must fix (the others)?
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// No daemon could be reached, or the connection failed mid-call: the socket is missing,
    /// the connect was refused, the call passed its timeout, or the daemon went away. The
    /// next call connects anew.
    Unavailable {
        /// The socket the client tried.
        socket: PathBuf,
        /// What happened, for people (`No such file or directory`, `no answer within 1s`).
        reason: String,
    },
    /// The daemon refused this client as a whole: its credentials, its protocol version, or
    /// the daemon's connection limit (a code for which [`hints_proto::ErrorCode::is_refusal`]
    /// holds, or any refusal of the hello).
    Refused(ErrorReply),
    /// The request itself was wrong, so sending it again cannot help: a bad database name, an
    /// empty or overlong key, an oversized value, an argument out of range
    /// ([`hints_proto::ErrorCode::is_bad_request`]). The client checks these limits before it
    /// sends, so most of these never leave the process.
    BadRequest(ErrorReply),
    /// The daemon answered [`hints_proto::ErrorCode::NOT_FOUND`] (used where a missing key is
    /// an error rather than an answer; `get` answers `None` instead).
    NotFound(ErrorReply),
    /// Any other error the daemon answered: busy, shutting down, a database that failed and
    /// was restarted, an internal error, or a code newer than this client.
    Daemon(ErrorReply),
    /// The daemon sent something this client cannot use: a frame that did not decode, a reply
    /// to another request, or a response of the wrong kind. The connection is dropped.
    Protocol(String),
}

impl Error {
    /// True for [`Error::Unavailable`]: the daemon is not there, as opposed to answering no.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// The daemon's error reply, for the variants that carry one.
    pub fn reply(&self) -> Option<&ErrorReply> {
        match self {
            Error::Refused(reply) | Error::BadRequest(reply) | Error::NotFound(reply) | Error::Daemon(reply) => {
                Some(reply)
            }
            Error::Unavailable { .. } | Error::Protocol(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable { socket, reason } => {
                write!(f, "cannot reach hintsd at {}: {reason}", socket.display())
            }
            Error::Refused(reply) => write!(f, "hintsd refused this client: {reply}"),
            Error::BadRequest(reply) => write!(f, "bad request: {reply}"),
            Error::NotFound(reply) => write!(f, "{reply}"),
            Error::Daemon(reply) => write!(f, "hintsd could not answer: {reply}"),
            Error::Protocol(what) => write!(f, "hintsd sent something this client cannot use: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// Maps an error reply to its variant, by code (see [`Error`]); the same rule the clients
/// apply, for callers of `pipeline` who hold raw [`hints_proto::Response::Error`] replies.
impl From<ErrorReply> for Error {
    fn from(reply: ErrorReply) -> Error {
        crate::ops::error_from_reply(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_daemon_is_reported_with_the_socket_it_tried() {
        let err = Error::Unavailable {
            socket: PathBuf::from("/tmp/hintsd-0/hintsd.sock"),
            reason: "No such file or directory".into(),
        };
        assert_eq!(err.to_string(), "cannot reach hintsd at /tmp/hintsd-0/hintsd.sock: No such file or directory");
        assert!(err.is_unavailable());
        assert_eq!(err.reply(), None);
    }
}
