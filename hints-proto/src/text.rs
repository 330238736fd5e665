//! The text protocol of the `${readsocket}` socket: one request line in, one reply line out,
//! shaped so that an Exim ACL can test the reply directly (`${if match{$value}{^over}}`,
//! `${if eq{$value}{pass}}`).
//!
//! Requests (words separated by spaces; conditions in Exim's own syntax, parsed later by
//! [`crate::condition`], the parser the binary protocol uses too):
//!
//! | request | reply |
//! |---|---|
//! | `ratelimit <condition>` | `over <rate>` or `under <rate>` |
//! | `seen <condition>` | `true` or `false` |
//! | `greylist <key> <delay> [<expiry>]` | `pass` or `defer <seconds left>` |
//! | `get <db> <key>` | `found <value>` or `notfound` |
//! | `put <db> <key> <value...>` | `ok` |
//! | `del <db> <key>` | `deleted` or `notfound` |
//! | `counter <db> <key> [<delta>]` | the new value |
//! | `ping` | `pong` |
//!
//! Anything wrong is `error <reason>`, never silence (Exim would wait out its timeout and
//! defer the message). Values in replies are escaped as [`escape`] does, so a reply is one line,
//! and it has no trailing newline: the daemon's close ends it, and a newline (which Exim keeps)
//! would spoil `${if eq{$value}{pass}}`.

use std::fmt::Write as _;

use crate::db_name::DbName;
use crate::duration::parse_duration_secs;
use crate::message::{Request, Response};

/// The longest request accepted, in bytes (a line past this is refused unread).
pub const TEXT_REQUEST_BYTES_MAX: usize = 4096;
/// The database `greylist` requests use.
pub const GREYLIST_DB: &str = "greylist";
/// How long a greylist triplet is remembered when the request gives no expiry.
pub const GREYLIST_EXPIRY_DEFAULT_SECS: u64 = 30 * 86_400;

/// Parses one request line (a trailing `\n` or `\r\n` is dropped).
///
/// # Errors
/// A reason for the `error` reply: an unknown command, a missing or extra argument, a bad
/// database name, duration or number, or a line that is not UTF-8.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > TEXT_REQUEST_BYTES_MAX {
        return Err(format!("request over {TEXT_REQUEST_BYTES_MAX} bytes"));
    }
    let line = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_owned())?;
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
    let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim_start();
    let words = || rest.split_whitespace();
    let request = match command {
        "ping" => {
            no_more(words(), 0)?;
            Request::Ping
        }
        "ratelimit" => Request::Ratelimit { condition: required(rest, "a ratelimit condition")?, at: None },
        "seen" => Request::Seen { condition: required(rest, "a seen condition")?, at: None },
        "greylist" => {
            let mut it = words();
            let key = next_word(&mut it, "a key")?;
            let delay_secs = duration(next_word(&mut it, "a delay")?)?;
            let expiry_secs = it.next().map(duration).transpose()?.unwrap_or(GREYLIST_EXPIRY_DEFAULT_SECS);
            no_more(it, 3)?;
            let db = DbName::new(GREYLIST_DB).expect("a valid name");
            Request::Greylist { db, key: key.as_bytes().to_vec(), delay_secs, expiry_secs, at: None }
        }
        "get" | "del" => {
            let mut it = words();
            let db = db_name(next_word(&mut it, "a database")?)?;
            let key = next_word(&mut it, "a key")?.as_bytes().to_vec();
            no_more(it, 2)?;
            if command == "get" { Request::Get { db, key } } else { Request::Delete { db, key } }
        }
        "put" => {
            // The database and the key are words as for get; the value is the rest of the line.
            let missing = "put needs a database, a key and a value";
            let (db, rest) = rest.split_once(char::is_whitespace).ok_or(missing)?;
            let (key, value) = rest.trim_start().split_once(char::is_whitespace).ok_or(missing)?;
            Request::Put {
                db: db_name(db)?,
                key: key.as_bytes().to_vec(),
                value: value.trim_start().as_bytes().to_vec(),
            }
        }
        "counter" => {
            let mut it = words();
            let db = db_name(next_word(&mut it, "a database")?)?;
            let key = next_word(&mut it, "a key")?.as_bytes().to_vec();
            let delta = match it.next() {
                Some(text) => text.parse::<i64>().map_err(|_| format!("{text:?} is not a whole number"))?,
                None => 1,
            };
            no_more(it, 3)?;
            Request::Counter { db, key, delta, expiry_secs: None, at: None }
        }
        "" => return Err("empty request".to_owned()),
        other => {
            return Err(format!("unknown command {other:?} (ratelimit, seen, greylist, get, put, del, counter, ping)"));
        }
    };
    request.validate().map_err(|reply| reply.message)?;
    Ok(request)
}

/// The reply line (without its newline) to `request`'s answer.
pub fn format_reply(response: &Response) -> String {
    match response {
        Response::Pong => "pong".to_owned(),
        Response::Rate { rate, over, .. } => format!("{} {rate}", if *over { "over" } else { "under" }),
        Response::Seen { result, .. } => result.to_string(),
        Response::Greylist { pass: true, .. } => "pass".to_owned(),
        Response::Greylist { pass: false, retry_after_secs } => format!("defer {retry_after_secs}"),
        Response::Value(Some(record)) => format!("found {}", escape(&record.value)),
        Response::Value(None) | Response::Deleted { existed: false } => "notfound".to_owned(),
        Response::Deleted { existed: true } => "deleted".to_owned(),
        Response::Stored(_) => "ok".to_owned(),
        Response::Counter(value) => value.to_string(),
        Response::Error(reply) => error_line(&reply.message),
        other => error_line(&format!("unexpected answer {}", other.kind())),
    }
}

/// An `error <reason>` line, the reason made one line.
pub fn error_line(reason: &str) -> String {
    format!("error {}", reason.replace(['\n', '\r'], " "))
}

/// Bytes as text that survives a terminal, a TAB-separated line and a reply line:
/// `0x20..=0x7e` except the backslash as themselves, `\\`, `\n`, `\t`, `\r`, and `\xNN`
/// (lower-case hex) for the rest.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out
}

fn required(rest: &str, what: &str) -> Result<String, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(format!("needs {what}"));
    }
    Ok(rest.to_owned())
}

fn next_word<'a>(it: &mut impl Iterator<Item = &'a str>, what: &str) -> Result<&'a str, String> {
    it.next().ok_or_else(|| format!("needs {what}"))
}

fn no_more<'a>(mut it: impl Iterator<Item = &'a str>, taken: usize) -> Result<(), String> {
    match it.next() {
        None => Ok(()),
        Some(extra) => Err(format!("unexpected {extra:?} after {taken} arguments")),
    }
}

fn db_name(text: &str) -> Result<DbName, String> {
    DbName::new(text).map_err(|reply| reply.message)
}

fn duration(text: &str) -> Result<u64, String> {
    parse_duration_secs(text).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Record, Stamp};
    use crate::{ErrorCode, ErrorReply};

    fn db(name: &str) -> DbName {
        DbName::new(name).unwrap()
    }

    #[test]
    fn each_command_parses_to_its_request() {
        let cases = [
            ("ping", Request::Ping),
            (
                "ratelimit 100 / 1h / per_rcpt / 192.0.2.1\n",
                Request::Ratelimit { condition: "100 / 1h / per_rcpt / 192.0.2.1".into(), at: None },
            ),
            ("seen -5m / key=k\r\n", Request::Seen { condition: "-5m / key=k".into(), at: None }),
            (
                "greylist 192.0.2.1_a@b_c@d 5m",
                Request::Greylist {
                    db: db("greylist"),
                    key: b"192.0.2.1_a@b_c@d".to_vec(),
                    delay_secs: 300,
                    expiry_secs: GREYLIST_EXPIRY_DEFAULT_SECS,
                    at: None,
                },
            ),
            (
                "greylist k 5m 7d",
                Request::Greylist {
                    db: db("greylist"),
                    key: b"k".to_vec(),
                    delay_secs: 300,
                    expiry_secs: 604_800,
                    at: None,
                },
            ),
            ("get misc k", Request::Get { db: db("misc"), key: b"k".to_vec() }),
            ("get\tmisc\tk", Request::Get { db: db("misc"), key: b"k".to_vec() }),
            ("put\tmisc\tk\tv", Request::Put { db: db("misc"), key: b"k".to_vec(), value: b"v".to_vec() }),
            ("del misc k", Request::Delete { db: db("misc"), key: b"k".to_vec() }),
            (
                "put misc k a value with spaces",
                Request::Put { db: db("misc"), key: b"k".to_vec(), value: b"a value with spaces".to_vec() },
            ),
            (
                "counter misc hits",
                Request::Counter { db: db("misc"), key: b"hits".to_vec(), delta: 1, expiry_secs: None, at: None },
            ),
            (
                "counter misc hits -4",
                Request::Counter { db: db("misc"), key: b"hits".to_vec(), delta: -4, expiry_secs: None, at: None },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_request(line.as_bytes()), Ok(want), "{line:?}");
        }
    }

    #[test]
    fn bad_requests_give_a_reason() {
        for line in [
            "",
            "frobnicate",
            "ratelimit",
            "seen   ",
            "greylist",
            "greylist k",
            "greylist k soon",
            "greylist k 5m 7d extra",
            "get misc",
            "get Misc k",
            "get misc k extra",
            "put misc k",
            "counter misc k 1.5",
            "ping pong",
        ] {
            assert!(parse_request(line.as_bytes()).is_err(), "{line:?}");
        }
        assert!(parse_request(&[0xff, 0xfe]).is_err());
        assert!(parse_request(&vec![b'a'; TEXT_REQUEST_BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn replies_are_one_line_an_acl_can_test() {
        let record = Record { key: b"k".to_vec(), value: b"two\nlines\\".to_vec(), stamp: Stamp::default() };
        let cases = [
            (Response::Rate { rate: 10.5, over: true, key: String::new(), written: false }, "over 10.5"),
            (Response::Rate { rate: 1.0, over: false, key: String::new(), written: true }, "under 1"),
            (Response::Seen { result: true, written: false }, "true"),
            (Response::Greylist { pass: false, retry_after_secs: 42 }, "defer 42"),
            (Response::Greylist { pass: true, retry_after_secs: 0 }, "pass"),
            (Response::Value(Some(record)), "found two\\nlines\\\\"),
            (Response::Value(None), "notfound"),
            (Response::Deleted { existed: true }, "deleted"),
            (Response::Stored(Stamp::default()), "ok"),
            (Response::Counter(-3), "-3"),
            (
                Response::Error(ErrorReply::new(ErrorCode::BAD_ARGUMENT, "conflicting\nupdate modes")),
                "error conflicting update modes",
            ),
        ];
        for (response, want) in cases {
            assert_eq!(format_reply(&response), want);
        }
    }
}
