//! Database names: Exim's (`retry`, `wait-<transport>`, `callout`, `ratelimit`, `seen`, `misc`,
//! `tls`) and any other name of 1 to 64 characters in `[a-z0-9_-]`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, ErrorReply};
use crate::limits::DB_NAME_BYTES_MAX;

/// Exim's hints databases, by the names its utilities accept (`wait-` takes a transport name).
pub const EXIM_DATABASES: [&str; 6] = ["retry", "callout", "ratelimit", "seen", "misc", "tls"];

/// A database name that has passed [`DbName::new`]. On the wire it is a plain string, and the
/// daemon validates what it decodes with [`DbName::check`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DbName(pub(crate) String);

impl DbName {
    /// Checks `name` and wraps it.
    ///
    /// # Errors
    /// [`ErrorCode::BAD_DB_NAME`] when it is empty, longer than [`DB_NAME_BYTES_MAX`] or has a
    /// character outside `[a-z0-9_-]`.
    pub fn new(name: impl Into<String>) -> Result<DbName, ErrorReply> {
        let name = DbName(name.into());
        name.check()?;
        Ok(name)
    }

    /// Checks a name that came off the wire.
    ///
    /// # Errors
    /// As [`DbName::new`].
    pub fn check(&self) -> Result<(), ErrorReply> {
        let bytes = self.0.as_bytes();
        if bytes.is_empty() {
            return Err(ErrorReply::new(ErrorCode::BAD_DB_NAME, "database name is empty"));
        }
        if bytes.len() > DB_NAME_BYTES_MAX {
            return Err(ErrorReply::new(
                ErrorCode::BAD_DB_NAME,
                format!("database name is {} bytes, the limit is {DB_NAME_BYTES_MAX}", bytes.len()),
            ));
        }
        let allowed = |c: &char| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-';
        if let Some(bad) = self.0.chars().find(|c| !allowed(c)) {
            return Err(ErrorReply::new(
                ErrorCode::BAD_DB_NAME,
                format!("database name {:?} has {bad:?}; names are 1-64 characters of a-z, 0-9, '_' and '-'", self.0),
            ));
        }
        Ok(())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exim_names_and_wait_transport_names_are_accepted() {
        for name in EXIM_DATABASES.iter().copied().chain(["wait-remote_smtp", "greylist", "a", "x-1_2"]) {
            assert!(DbName::new(name).is_ok(), "{name}");
        }
        assert!(DbName::new("a".repeat(64)).is_ok());
    }

    #[test]
    fn malformed_names_are_refused_with_bad_db_name() {
        for name in ["", "Retry", "a b", "../etc", "x.y", "é", &"a".repeat(65)] {
            let err = DbName::new(name).unwrap_err();
            assert_eq!(err.code, ErrorCode::BAD_DB_NAME, "{name:?}");
        }
    }
}
