//! Exim's `ratelimit` and `seen` condition syntax: the one parser for the condition text a
//! client sends (the binary protocol carries it as text, and so will a `${readsocket}` line).
//!
//! The rules are those of `acl_ratelimit()` and `acl_seen()` in Exim's `acl.c`
//! (`shared/reference/exim-hints.md` §4.1, §4.2, §4.6):
//!
//! - The text is an Exim list with separator `/`: a doubled `//` is a literal `/` inside an
//!   element (what `${listquote{/}{...}}` produces), and white space around each element is
//!   trimmed. The separator cannot be changed with a leading `<`.
//! - `ratelimit = <m> / <p> / <options...> / <key>`: see [`parse_ratelimit`].
//! - `seen = [-]<interval> [/ key=<k>] [/ readonly] [/ write] [/ refresh=<interval>]`: see
//!   [`parse_seen`].
//!
//! hintsd has no ACL context: it does not see the connection, the message or the recipient.
//! So where Exim would fill in a value from the SMTP session, the condition must spell it out:
//! - a key is required (Exim defaults to `$sender_host_address`); an empty one counts as missing;
//! - `per_byte` requires `count=<bytes>` (Exim counts `$message_size`);
//! - `per_addr` requires `unique=<recipient>` (Exim uses `$local_part@$domain`);
//! - Exim's "badacl" rule (an update forced read-only in an ACL where the mode makes no sense)
//!   is the client's business: a condition evaluated there should say `readonly`.
//!
//! The text may be at most [`CONDITION_BYTES_MAX`] bytes, checked first, and a ratelimit's
//! database key at most [`KEY_BYTES_MAX`] bytes with Exim's NUL.
//!
//! Numbers are read as C's `strtod` reads decimal text, so odd inputs give Exim's answers (an
//! empty `count=` is 0, a limit of `k` is 0), except that hexadecimal and non-finite numbers
//! (`0x10`, `inf`, `nan`, `1e999`) are refused.

use std::borrow::Cow;
use std::fmt;
use std::mem::MaybeUninit;

use crate::duration::parse_duration_secs;
use crate::limits::{CONDITION_BYTES_MAX, KEY_BYTES_MAX};

/// `seen`'s refresh interval when the condition sets none: 10 days, as in Exim.
pub const SEEN_REFRESH_DEFAULT_SECS: u64 = 10 * 86_400;

/// Why a condition text was refused. The `Display` text is meant for the client's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConditionError {
    /// The text is longer than [`CONDITION_BYTES_MAX`].
    TooLong { len: usize },
    /// The ratelimit database key (plus Exim's NUL) would be longer than [`KEY_BYTES_MAX`]:
    /// the key adds `/per_mail/` or `unique/` to the text, so the longest texts can overflow.
    DbKeyTooLong { len: usize },
    /// The text holds a NUL byte (Exim's strings cannot; its keys end at the first NUL).
    NulByte,
    /// A ratelimit condition with no elements at all.
    NoLimit,
    /// The limit is not a non-negative decimal number with an optional `k`, `m` or `g`.
    BadLimit { text: String },
    /// A ratelimit condition with a limit but no period.
    NoPeriod,
    /// The period is not an Exim time.
    BadPeriod { text: String, why: &'static str },
    /// The period is zero (Exim divides by it).
    NonPositivePeriod { text: String },
    /// A `count=` element whose value is not a non-negative decimal number.
    BadCount { text: String },
    /// More than one `per_*` option (even the same one twice), as Exim refuses.
    ConflictingPerOptions,
    /// More than one of `leaky`, `strict` and `readonly`.
    ConflictingUpdateModes,
    /// `per_byte` without `count=`: hintsd does not see the message.
    PerByteWithoutCount,
    /// `per_addr` without `unique=`: hintsd does not see the recipient.
    PerAddrWithoutUnique,
    /// A ratelimit condition with no key, or an empty one.
    NoRatelimitKey,
    /// A seen condition with no elements at all.
    NoInterval,
    /// The seen interval (after an optional `-`) is not an Exim time.
    BadInterval { text: String, why: &'static str },
    /// A `refresh=` value that is not an Exim time.
    BadRefresh { text: String, why: &'static str },
    /// A seen option other than `key=`, `readonly`, `write` and `refresh=`.
    UnknownSeenOption { text: String },
    /// A seen condition with no `key=`, or an empty one.
    NoSeenKey,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionError::TooLong { len } => {
                write!(f, "condition of {len} bytes; the most accepted is {CONDITION_BYTES_MAX}")
            }
            ConditionError::DbKeyTooLong { len } => write!(
                f,
                "ratelimit key of {len} bytes (with its NUL); the most accepted is {KEY_BYTES_MAX}: shorten the key"
            ),
            ConditionError::NulByte => f.write_str("condition contains a NUL byte"),
            ConditionError::NoLimit => f.write_str("sender rate limit not set"),
            ConditionError::BadLimit { text } | ConditionError::BadCount { text } => {
                write!(f, "\"{text}\" is not a positive number")
            }
            ConditionError::NoPeriod => f.write_str("sender rate period not set"),
            ConditionError::BadPeriod { text, why } => write!(f, "\"{text}\" is not a time value ({why})"),
            ConditionError::NonPositivePeriod { text } => {
                write!(f, "\"{text}\" is not a time value: non-positive period")
            }
            ConditionError::ConflictingPerOptions => f.write_str("conflicting per_* options"),
            ConditionError::ConflictingUpdateModes => f.write_str("conflicting update modes"),
            ConditionError::PerByteWithoutCount => f.write_str(
                "per_byte needs an explicit count=<bytes>: hintsd does not see the message \
                 (Exim would count $message_size)",
            ),
            ConditionError::PerAddrWithoutUnique => f.write_str(
                "per_addr needs an explicit unique=<recipient>: hintsd does not see the recipient \
                 (Exim would use $local_part@$domain)",
            ),
            ConditionError::NoRatelimitKey => f.write_str(
                "no key given (Exim would use $sender_host_address, which hintsd cannot see): \
                 end the condition with /<key>",
            ),
            ConditionError::NoInterval => f.write_str("seen condition has no interval"),
            ConditionError::BadInterval { text, why } => {
                write!(f, "bad time value \"{text}\" in seen condition ({why})")
            }
            ConditionError::BadRefresh { text, why } => {
                write!(f, "bad refresh time \"{text}\" in seen condition ({why})")
            }
            ConditionError::UnknownSeenOption { text } => write!(
                f,
                "unknown seen option \"{text}\"; the options are key=<key>, readonly, write, refresh=<interval>"
            ),
            ConditionError::NoSeenKey => f.write_str(
                "no key given (Exim would use $sender_host_address, which hintsd cannot see): add /key=<key>",
            ),
        }
    }
}

impl std::error::Error for ConditionError {}

/// Room for a ratelimit's database key, on the stack (see [`RatelimitCondition::db_key_in`]).
/// Left uninitialised: zeroing its kilobyte cost as much as the `malloc` it replaces.
#[derive(Debug)]
pub struct DbKeyBuffer([MaybeUninit<u8>; KEY_BYTES_MAX]);

impl Default for DbKeyBuffer {
    fn default() -> DbKeyBuffer {
        DbKeyBuffer([MaybeUninit::uninit(); KEY_BYTES_MAX])
    }
}

/// What a ratelimit counts: the `per_*` option as written (default `per_mail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RatelimitMode {
    PerMail,
    /// Counts bytes; stored under `per_mail`, as Exim does.
    PerByte,
    PerRcpt,
    /// Counts distinct recipients; stored under `per_rcpt/unique/`, as Exim does.
    PerAddr,
    PerConn,
    PerCmd,
}

impl RatelimitMode {
    /// The option as written in a condition.
    pub fn option_name(self) -> &'static str {
        match self {
            RatelimitMode::PerMail => "per_mail",
            RatelimitMode::PerByte => "per_byte",
            RatelimitMode::PerRcpt => "per_rcpt",
            RatelimitMode::PerAddr => "per_addr",
            RatelimitMode::PerConn => "per_conn",
            RatelimitMode::PerCmd => "per_cmd",
        }
    }

    /// The mode as Exim writes it in the database key (`per_byte` is `per_mail`, `per_addr`
    /// is `per_rcpt`).
    pub fn key_text(self) -> &'static str {
        match self {
            RatelimitMode::PerMail | RatelimitMode::PerByte => "per_mail",
            RatelimitMode::PerRcpt | RatelimitMode::PerAddr => "per_rcpt",
            RatelimitMode::PerConn => "per_conn",
            RatelimitMode::PerCmd => "per_cmd",
        }
    }

    /// Every mode, in the order Exim's documentation lists its options.
    pub const ALL: [RatelimitMode; 6] = [
        RatelimitMode::PerMail,
        RatelimitMode::PerByte,
        RatelimitMode::PerRcpt,
        RatelimitMode::PerAddr,
        RatelimitMode::PerConn,
        RatelimitMode::PerCmd,
    ];

    fn from_option(option: &str) -> Option<RatelimitMode> {
        RatelimitMode::ALL.into_iter().find(|mode| option.eq_ignore_ascii_case(mode.option_name()))
    }
}

/// When a ratelimit writes its new state back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RatelimitUpdate {
    /// Write only when the result is "under the limit" (the default).
    Leaky,
    /// Always write.
    Strict,
    /// Never write; the event counts 0 (`readonly`, or `noupdate`).
    Readonly,
}

/// A parsed `ratelimit` condition, borrowing its texts from the condition where it can (it is
/// parsed on every request).
#[derive(Clone, Debug, PartialEq)]
pub struct RatelimitCondition<'a> {
    /// `m`: the most events per period; the condition is true at `rate >= limit`.
    pub limit: f64,
    /// `p` exactly as written (after trimming): it is part of the database key.
    pub period_text: Cow<'a, str>,
    /// `p` in seconds, greater than 0.
    pub period_secs: f64,
    pub mode: RatelimitMode,
    pub update: RatelimitUpdate,
    /// What this event counts: 1 by default, `count=` if given, 0 when read-only.
    pub count: f64,
    /// The event's identity when only distinct events count (`unique=`, or `per_addr`).
    pub unique: Option<Cow<'a, str>>,
    /// The key elements, joined by `/`; never empty.
    pub key: Cow<'a, str>,
}

impl RatelimitCondition<'_> {
    /// The same condition, owning its texts.
    pub fn into_owned(self) -> RatelimitCondition<'static> {
        RatelimitCondition {
            period_text: Cow::Owned(self.period_text.into_owned()),
            unique: self.unique.map(|unique| Cow::Owned(unique.into_owned())),
            key: Cow::Owned(self.key.into_owned()),
            ..self
        }
    }

    /// The key Exim stores the rate under: `<period text>/<mode>/[unique/]<key>` (without the
    /// NUL Exim appends).
    pub fn db_key(&self) -> String {
        self.db_key_pieces().concat()
    }

    /// [`RatelimitCondition::db_key`], written into `buffer`: the daemon makes it on every
    /// ratelimit request, to look the record up and to answer with, and a `String` cost a
    /// `malloc` and a `free` each time.
    ///
    /// # Panics
    /// When the key does not fit, which [`parse_ratelimit`] never lets happen: it refuses a
    /// condition whose key, with Exim's NUL, is longer than [`KEY_BYTES_MAX`].
    pub fn db_key_in<'b>(&self, buffer: &'b mut DbKeyBuffer) -> &'b str {
        let mut len = 0;
        for piece in self.db_key_pieces() {
            for (room, &byte) in buffer.0[len..len + piece.len()].iter_mut().zip(piece.as_bytes()) {
                room.write(byte);
            }
            len += piece.len();
        }
        let written = &buffer.0[..len];
        // SAFETY: the first `len` bytes were all written just now (`MaybeUninit<u8>` is laid
        // out as `u8`), and they are whole `&str`s one after another, so they are UTF-8.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(written.as_ptr().cast::<u8>(), len)) }
    }

    /// The length of [`RatelimitCondition::db_key`], without making it.
    pub fn db_key_len(&self) -> usize {
        self.db_key_pieces().iter().map(|piece| piece.len()).sum()
    }

    fn db_key_pieces(&self) -> [&str; 6] {
        let unique = if self.unique.is_some() { "unique/" } else { "" };
        [&self.period_text, "/", self.mode.key_text(), "/", unique, &self.key]
    }
}

/// Parses `<m> / <p> / <options...> / <key>` as Exim's `acl_ratelimit` does.
///
/// - `m`: a decimal number ≥ 0 with an optional `k`, `m` or `g` suffix (×1024, ×1024², ×1024³).
/// - `p`: an Exim time (`1h`, `1d12h`), greater than 0, kept as written for the key.
/// - options, case-insensitive: `leaky`, `strict`, `noupdate` (= `readonly`), `readonly`,
///   `per_cmd`, `per_conn`, `per_mail`, `per_rcpt`, `per_byte`, `per_addr`; by prefix
///   `count=<number ≥ 0>` and `unique=<text>` (the last of each wins).
/// - every other element is part of the key; several are joined by `/`.
///
/// # Errors
/// See [`ConditionError`]; checks run in Exim's order (length, limit, period, each option in
/// turn, then the per_* clash, then the update modes), followed by hintsd's own
/// (`per_byte` without `count=`, `per_addr` without `unique=`, no key).
pub fn parse_ratelimit(text: &str) -> Result<RatelimitCondition<'_>, ConditionError> {
    let mut items = list_items(checked_text(text)?);
    // `let else`, not `ok_or`: an error made up front is dropped on every success, a match on
    // its variant each time.
    let Some(limit_text) = items.next() else { return Err(ConditionError::NoLimit) };
    let limit = parse_limit(&limit_text).ok_or_else(|| ConditionError::BadLimit { text: limit_text.to_string() })?;
    let Some(period_text) = items.next() else { return Err(ConditionError::NoPeriod) };
    let period_secs = match parse_duration_secs(&period_text) {
        Err(err) => return Err(ConditionError::BadPeriod { text: period_text.into_owned(), why: err.why }),
        Ok(0) => return Err(ConditionError::NonPositivePeriod { text: period_text.into_owned() }),
        Ok(secs) => secs as f64,
    };

    let (mut leaky, mut strict, mut readonly, mut noupdate) = (false, false, false, false);
    let mut mode: Option<RatelimitMode> = None;
    let mut per_clash = false;
    let mut count: Option<f64> = None;
    let mut unique: Option<Cow<'_, str>> = None;
    let mut key: Option<Cow<'_, str>> = None;
    for item in items {
        if let Some(option_mode) = RatelimitMode::from_option(&item) {
            per_clash |= mode.replace(option_mode).is_some();
        } else if item.eq_ignore_ascii_case("leaky") {
            leaky = true;
        } else if item.eq_ignore_ascii_case("strict") {
            strict = true;
        } else if item.eq_ignore_ascii_case("readonly") {
            readonly = true;
        } else if item.eq_ignore_ascii_case("noupdate") {
            noupdate = true;
        } else if let Some(value) = strip_prefix_ignore_case(&item, "count=") {
            match parse_decimal(value) {
                (value, "") if value >= 0.0 && value.is_finite() => count = Some(value),
                _ => return Err(ConditionError::BadCount { text: item.into_owned() }),
            }
        } else if strip_prefix_ignore_case(&item, "unique=").is_some() {
            unique = Some(cow_after(item, "unique=".len()));
        } else {
            key = Some(match key {
                None => item,
                Some(key) => Cow::Owned(format!("{key}/{item}")),
            });
        }
    }

    if per_clash {
        return Err(ConditionError::ConflictingPerOptions);
    }
    if u8::from(leaky) + u8::from(strict) + u8::from(readonly) > 1 {
        return Err(ConditionError::ConflictingUpdateModes);
    }
    let mode = mode.unwrap_or(RatelimitMode::PerMail);
    if mode == RatelimitMode::PerByte && count.is_none() {
        return Err(ConditionError::PerByteWithoutCount);
    }
    if mode == RatelimitMode::PerAddr && unique.is_none() {
        return Err(ConditionError::PerAddrWithoutUnique);
    }
    let Some(key) = key.filter(|key| !key.is_empty()) else { return Err(ConditionError::NoRatelimitKey) };
    let update = if readonly || noupdate {
        RatelimitUpdate::Readonly
    } else if strict {
        RatelimitUpdate::Strict
    } else {
        RatelimitUpdate::Leaky
    };
    let count = if update == RatelimitUpdate::Readonly { 0.0 } else { count.unwrap_or(1.0) };
    let cond = RatelimitCondition { limit, period_text, period_secs, mode, update, count, unique, key };
    let db_key_len = cond.db_key_len() + 1;
    if db_key_len > KEY_BYTES_MAX {
        return Err(ConditionError::DbKeyTooLong { len: db_key_len });
    }
    Ok(cond)
}

/// Whether and when a `seen` condition writes (the last of `readonly` and `write` wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeenMode {
    /// A "since" test writes; a "before" test writes only a refresh.
    Default,
    /// Never write.
    Readonly,
    /// Always write.
    Write,
}

/// A parsed `seen` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenCondition<'a> {
    /// A leading `-`: true when the key was last seen at least `interval_secs` ago; otherwise
    /// true when it was seen less than `interval_secs` ago.
    pub before: bool,
    pub interval_secs: u64,
    /// The database key, verbatim; never empty.
    pub key: Cow<'a, str>,
    pub mode: SeenMode,
    /// A "before" test that does not write rewrites a record at least this old.
    pub refresh_secs: u64,
}

impl SeenCondition<'_> {
    /// The same condition, owning its key.
    pub fn into_owned(self) -> SeenCondition<'static> {
        SeenCondition { key: Cow::Owned(self.key.into_owned()), ..self }
    }
}

/// Parses `[-]<interval> [/ key=<k>] [/ readonly] [/ write] [/ refresh=<interval>]`.
///
/// Options are taken in order and later ones override earlier ones. They are matched exactly
/// (lower case), and any other option is an error rather than ignored, so a typo never turns
/// into a silent write.
///
/// # Errors
/// See [`ConditionError`]: the length, a NUL, a missing or malformed interval, a malformed
/// refresh, an unknown option, or no (or an empty) key.
pub fn parse_seen(text: &str) -> Result<SeenCondition<'_>, ConditionError> {
    let mut items = list_items(checked_text(text)?);
    let Some(first) = items.next() else { return Err(ConditionError::NoInterval) };
    let (before, interval_text) = match first.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, first.as_ref()),
    };
    let interval_secs = parse_duration_secs(interval_text)
        .map_err(|err| ConditionError::BadInterval { text: first.to_string(), why: err.why })?;

    let mut key: Option<Cow<'_, str>> = None;
    let mut mode = SeenMode::Default;
    let mut refresh_secs = SEEN_REFRESH_DEFAULT_SECS;
    for item in items {
        if item.starts_with("key=") {
            key = Some(cow_after(item, "key=".len()));
        } else if item == "readonly" {
            mode = SeenMode::Readonly;
        } else if item == "write" {
            mode = SeenMode::Write;
        } else if let Some(value) = item.strip_prefix("refresh=") {
            refresh_secs = parse_duration_secs(value)
                .map_err(|err| ConditionError::BadRefresh { text: value.to_owned(), why: err.why })?;
        } else {
            return Err(ConditionError::UnknownSeenOption { text: item.into_owned() });
        }
    }
    let Some(key) = key.filter(|key| !key.is_empty()) else { return Err(ConditionError::NoSeenKey) };
    Ok(SeenCondition { before, interval_secs, key, mode, refresh_secs })
}

/// The checks every condition text passes first: its length, then no NUL.
fn checked_text(text: &str) -> Result<&str, ConditionError> {
    if text.len() > CONDITION_BYTES_MAX {
        return Err(ConditionError::TooLong { len: text.len() });
    }
    if text.contains('\0') {
        return Err(ConditionError::NulByte);
    }
    Ok(text)
}

/// The elements of an Exim list with separator `/`, as `string_nextinlist` yields them: white
/// space skipped before and trimmed after each element, `//` a literal `/`, an empty element
/// between two separators kept, nothing after a trailing separator. An element without `//`
/// is borrowed from `text`, and the list is read as it is walked: conditions are parsed on
/// every request.
fn list_items(text: &str) -> ListItems<'_> {
    ListItems { text, at: 0 }
}

/// The walk of [`list_items`]: `at` is where the next element's search starts.
struct ListItems<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for ListItems<'a> {
    type Item = Cow<'a, str>;

    // Inlined into the parsers' loops: as a call, each element cost about 45 instructions
    // more (callgrind, a five-element ratelimit condition 1 800 -> 1 575 with its key).
    #[inline(always)]
    fn next(&mut self) -> Option<Cow<'a, str>> {
        let bytes = self.text.as_bytes();
        let mut at = self.at;
        while bytes.get(at).is_some_and(|&b| is_c_space(b)) {
            at += 1;
        }
        if at == bytes.len() {
            self.at = at;
            return None;
        }
        let start = at;
        let mut escaped = false;
        // The element ends at the first `/` that is not doubled, or at the end.
        loop {
            match bytes[at..].iter().position(|&b| b == b'/') {
                None => at = bytes.len(),
                Some(offset) if bytes.get(at + offset + 1) == Some(&b'/') => {
                    escaped = true;
                    at += offset + 2;
                    continue;
                }
                Some(offset) => at += offset,
            }
            break;
        }
        self.at = (at + 1).min(bytes.len());
        // Trailing white space holds no `/`, so trimming before unescaping gives the same.
        let mut end = at;
        while end > start && is_c_space(bytes[end - 1]) {
            end -= 1;
        }
        // Split only before ASCII bytes (or at the end), so on character boundaries.
        let trimmed = &self.text[start..end];
        Some(if escaped { Cow::Owned(trimmed.replace("//", "/")) } else { Cow::Borrowed(trimmed) })
    }
}

/// `item` without its first `prefix_len` bytes (an ASCII prefix), still borrowed if it was.
fn cow_after(item: Cow<'_, str>, prefix_len: usize) -> Cow<'_, str> {
    match item {
        Cow::Borrowed(text) => Cow::Borrowed(&text[prefix_len..]),
        Cow::Owned(mut text) => {
            text.drain(..prefix_len);
            Cow::Owned(text)
        }
    }
}

/// C's `isspace` in the C locale (Rust's `is_ascii_whitespace` leaves out vertical tab).
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `<number>[k|m|g]`, non-negative and finite.
fn parse_limit(text: &str) -> Option<f64> {
    let (mut limit, rest) = parse_decimal(text);
    let rest = match rest.as_bytes().first().map(u8::to_ascii_lowercase) {
        Some(b'k') => {
            limit *= 1024.0;
            &rest[1..]
        }
        Some(b'm') => {
            limit *= 1024.0 * 1024.0;
            &rest[1..]
        }
        Some(b'g') => {
            limit *= 1024.0 * 1024.0 * 1024.0;
            &rest[1..]
        }
        _ => rest,
    };
    (rest.is_empty() && limit >= 0.0 && limit.is_finite()).then_some(limit)
}

/// The most digits of a whole number [`parse_decimal`] reads itself: 10^15 < 2^53.
const DIGITS_EXACT_MAX: usize = 15;

/// Reads the longest decimal number at the start of `text` as C's `strtod` does (leading white
/// space, a sign, digits with an optional point, an optional exponent) and returns it with the
/// rest of the text. With no digits, returns 0 and all of `text`, as `strtod` does.
fn parse_decimal(text: &str) -> (f64, &str) {
    let bytes = text.as_bytes();
    // The usual case, a whole number of a few digits (`100`, `100k`), read without the float
    // parser (about 90 instructions a condition, callgrind): below 2^53 every whole number is
    // exactly a double, as `strtod` gives it.
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if (1..=DIGITS_EXACT_MAX).contains(&digits) && !matches!(bytes.get(digits), Some(b'.' | b'e' | b'E')) {
        let whole = bytes[..digits].iter().fold(0_u64, |whole, digit| whole * 10 + u64::from(digit - b'0'));
        return (whole as f64, &text[digits..]);
    }
    parse_decimal_in_full(text)
}

/// [`parse_decimal`] for any number, through Rust's float parser.
fn parse_decimal_in_full(text: &str) -> (f64, &str) {
    let bytes = text.as_bytes();
    let digits_from = |mut at: usize| {
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        at
    };
    let mut start = 0;
    while bytes.get(start).is_some_and(|&b| is_c_space(b)) {
        start += 1;
    }
    let mut at = start;
    if matches!(bytes.get(at), Some(b'+' | b'-')) {
        at += 1;
    }
    let int_end = digits_from(at);
    let mut end = int_end;
    let mut has_digits = int_end > at;
    if bytes.get(end) == Some(&b'.') {
        let frac_end = digits_from(end + 1);
        has_digits |= frac_end > end + 1;
        end = frac_end;
    }
    if !has_digits {
        return (0.0, text);
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut exp = end + 1;
        if matches!(bytes.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        let exp_end = digits_from(exp);
        if exp_end > exp {
            end = exp_end;
        }
    }
    let value = text[start..end].parse().expect("a decimal number Rust's float parser accepts");
    (value, &text[end..])
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratelimit(text: &str) -> RatelimitCondition<'static> {
        parse_ratelimit(text).map(RatelimitCondition::into_owned).unwrap_or_else(|err| panic!("{text:?}: {err}"))
    }

    fn ratelimit_error(text: &str) -> ConditionError {
        parse_ratelimit(text).expect_err(text)
    }

    fn seen(text: &str) -> SeenCondition<'static> {
        parse_seen(text).map(SeenCondition::into_owned).unwrap_or_else(|err| panic!("{text:?}: {err}"))
    }

    fn seen_error(text: &str) -> ConditionError {
        parse_seen(text).expect_err(text)
    }

    #[test]
    fn list_elements_split_unescape_and_trim_as_exims_string_nextinlist() {
        let cases: [(&str, &[&str]); 11] = [
            ("a//b", &["a/b"]),
            ("a///b", &["a/", "b"]),
            ("a////b", &["a//b"]),
            (" a / b /", &["a", "b"]),
            ("a/", &["a"]),
            ("a//", &["a/"]),
            ("//", &["/"]),
            ("a /  / b", &["a", "", "b"]),
            ("a //  b", &["a /  b"]),
            ("a/ //b", &["a", "/b"]),
            ("\u{b}x\u{b} //\u{b}/y", &["x\u{b} /", "y"]),
        ];
        for (text, expected) in cases {
            assert_eq!(list_items(text).collect::<Vec<_>>(), expected, "{text:?}");
        }
    }

    #[test]
    fn a_plain_condition_takes_exims_defaults() {
        let cond = ratelimit("100 / 1h / 192.0.2.10");
        assert_eq!(
            cond,
            RatelimitCondition {
                limit: 100.0,
                period_text: "1h".into(),
                period_secs: 3600.0,
                mode: RatelimitMode::PerMail,
                update: RatelimitUpdate::Leaky,
                count: 1.0,
                unique: None,
                key: "192.0.2.10".into(),
            }
        );
        assert_eq!(cond.db_key(), "1h/per_mail/192.0.2.10");
    }

    #[test]
    fn the_limit_takes_binary_suffixes_in_either_case() {
        for (text, limit) in [
            ("1k", 1024.0),
            ("1K", 1024.0),
            ("1M", 1_048_576.0),
            ("1m", 1_048_576.0),
            ("2g", 2.0 * 1_073_741_824.0),
            ("1.5k", 1536.0),
            ("0", 0.0),
            ("2.5", 2.5),
            ("1e2", 100.0),
            (".5", 0.5),
            // strtod reads no digits from these and yields 0, which Exim accepts.
            ("k", 0.0),
            ("", 0.0),
        ] {
            assert_eq!(ratelimit(&format!("{text}/1h/key")).limit, limit, "{text}");
        }
    }

    #[test]
    fn a_bad_limit_is_not_a_positive_number() {
        for text in ["-1", "10x", "1kk", "ten", "0x10", "inf", "nan", "1e999", "1 k", "-k"] {
            let err = ratelimit_error(&format!("{text}/1h/key"));
            assert_eq!(err, ConditionError::BadLimit { text: text.into() }, "{text}");
            assert_eq!(err.to_string(), format!("\"{text}\" is not a positive number"));
        }
    }

    #[test]
    fn the_period_is_kept_as_written_for_the_key() {
        let hour = ratelimit("10/1h/key");
        let minutes = ratelimit("10/ 60m /key");
        assert_eq!((hour.period_secs, minutes.period_secs), (3600.0, 3600.0));
        assert_eq!(hour.db_key(), "1h/per_mail/key");
        assert_eq!(minutes.db_key(), "60m/per_mail/key");
        assert_eq!(ratelimit("10/1d12h/key").period_secs, 129_600.0);
        assert_eq!(ratelimit("10/90/key").period_secs, 90.0);
    }

    #[test]
    fn a_missing_bad_or_zero_period_is_refused() {
        assert_eq!(ratelimit_error(""), ConditionError::NoLimit);
        assert_eq!(ratelimit_error("  "), ConditionError::NoLimit);
        assert_eq!(ConditionError::NoLimit.to_string(), "sender rate limit not set");
        assert_eq!(ratelimit_error("10"), ConditionError::NoPeriod);
        assert_eq!(ConditionError::NoPeriod.to_string(), "sender rate period not set");
        assert_eq!(ratelimit_error("10/"), ConditionError::NoPeriod);
        assert!(matches!(ratelimit_error("10/1x/key"), ConditionError::BadPeriod { text, .. } if text == "1x"));
        assert!(matches!(ratelimit_error("10/-1h/key"), ConditionError::BadPeriod { .. }));
        // A doubled slash is a slash inside an element: this limit is "10/1h".
        assert_eq!(ratelimit_error("10//1h/key"), ConditionError::BadLimit { text: "10/1h".into() });
        assert!(ratelimit_error("10/1x/key").to_string().starts_with("\"1x\" is not a time value"));
        let zero = ratelimit_error("10/0s/key");
        assert_eq!(zero, ConditionError::NonPositivePeriod { text: "0s".into() });
        assert!(zero.to_string().contains("non-positive period"));
    }

    #[test]
    fn each_per_option_sets_the_mode_and_the_key_text() {
        for (option, mode, key) in [
            ("per_mail", RatelimitMode::PerMail, "1h/per_mail/k"),
            ("PER_MAIL", RatelimitMode::PerMail, "1h/per_mail/k"),
            ("per_byte/count=2000", RatelimitMode::PerByte, "1h/per_mail/k"),
            ("per_rcpt", RatelimitMode::PerRcpt, "1h/per_rcpt/k"),
            ("per_addr/unique=a@b", RatelimitMode::PerAddr, "1h/per_rcpt/unique/k"),
            ("Per_Conn", RatelimitMode::PerConn, "1h/per_conn/k"),
            ("per_cmd", RatelimitMode::PerCmd, "1h/per_cmd/k"),
        ] {
            let cond = ratelimit(&format!("10/1h/{option}/k"));
            assert_eq!(cond.mode, mode, "{option}");
            assert_eq!(cond.db_key(), key, "{option}");
        }
    }

    #[test]
    fn per_byte_counts_the_given_bytes_in_either_order() {
        let after = ratelimit("1M/1h/per_byte/count=2048/192.0.2.10");
        let before = ratelimit("1M/1h/count=2048/per_byte/192.0.2.10");
        assert_eq!((after.count, before.count), (2048.0, 2048.0));
        assert_eq!(after.db_key(), "1h/per_mail/192.0.2.10");
    }

    #[test]
    fn per_byte_without_a_count_is_refused() {
        let err = ratelimit_error("1M/1h/per_byte/192.0.2.10");
        assert_eq!(err, ConditionError::PerByteWithoutCount);
        assert!(err.to_string().contains("count="));
    }

    #[test]
    fn per_addr_is_stored_as_per_rcpt_unique() {
        let cond = ratelimit("100/1d/per_addr/unique=bob@example.org/192.0.2.10");
        assert_eq!(cond.unique.as_deref(), Some("bob@example.org"));
        assert_eq!(cond.db_key(), "1d/per_rcpt/unique/192.0.2.10");
    }

    #[test]
    fn per_addr_without_a_unique_is_refused() {
        let err = ratelimit_error("100/1d/per_addr/192.0.2.10");
        assert_eq!(err, ConditionError::PerAddrWithoutUnique);
        assert!(err.to_string().contains("unique="));
    }

    #[test]
    fn a_second_per_option_clashes_even_when_it_repeats_the_first() {
        for options in
            ["per_mail/per_rcpt", "per_mail/per_mail", "per_byte/per_mail/count=1", "per_cmd/per_conn/per_cmd"]
        {
            let err = ratelimit_error(&format!("10/1h/{options}/k"));
            assert_eq!(err, ConditionError::ConflictingPerOptions, "{options}");
            assert_eq!(err.to_string(), "conflicting per_* options");
        }
    }

    #[test]
    fn update_modes_default_to_leaky() {
        assert_eq!(ratelimit("10/1h/k").update, RatelimitUpdate::Leaky);
        assert_eq!(ratelimit("10/1h/LEAKY/k").update, RatelimitUpdate::Leaky);
        assert_eq!(ratelimit("10/1h/leaky/leaky/k").update, RatelimitUpdate::Leaky);
        assert_eq!(ratelimit("10/1h/strict/k").update, RatelimitUpdate::Strict);
    }

    #[test]
    fn readonly_and_noupdate_force_a_count_of_zero() {
        for options in ["readonly", "noupdate", "noupdate/strict", "leaky/noupdate", "readonly/noupdate", "Readonly"] {
            let cond = ratelimit(&format!("10/1h/{options}/count=5/k"));
            assert_eq!((cond.update, cond.count), (RatelimitUpdate::Readonly, 0.0), "{options}");
        }
    }

    #[test]
    fn two_update_modes_conflict() {
        for options in ["leaky/strict", "strict/readonly", "readonly/leaky", "leaky/strict/readonly"] {
            let err = ratelimit_error(&format!("10/1h/{options}/k"));
            assert_eq!(err, ConditionError::ConflictingUpdateModes, "{options}");
            assert_eq!(err.to_string(), "conflicting update modes");
        }
    }

    #[test]
    fn the_per_clash_is_reported_before_the_update_clash() {
        assert_eq!(ratelimit_error("10/1h/leaky/strict/per_cmd/per_conn/k"), ConditionError::ConflictingPerOptions);
    }

    #[test]
    fn count_takes_a_non_negative_number_and_the_last_one_wins() {
        assert_eq!(ratelimit("10/1h/count=2.5/k").count, 2.5);
        assert_eq!(ratelimit("10/1h/COUNT=3/k").count, 3.0);
        assert_eq!(ratelimit("10/1h/count=3/count=4/k").count, 4.0);
        assert_eq!(ratelimit("10/1h/count=0/k").count, 0.0);
        // strtod skips white space before the number, and reads nothing from an empty value.
        assert_eq!(ratelimit("10/1h/count= 7/k").count, 7.0);
        assert_eq!(ratelimit("10/1h/count=/k").count, 0.0);
    }

    #[test]
    fn a_negative_or_malformed_count_is_refused() {
        for value in ["-1", "1x", "abc", "inf", "1e999", "1k"] {
            let err = ratelimit_error(&format!("10/1h/count={value}/k"));
            assert_eq!(err, ConditionError::BadCount { text: format!("count={value}") }, "{value}");
            assert_eq!(err.to_string(), format!("\"count={value}\" is not a positive number"));
        }
    }

    #[test]
    fn unique_keeps_its_case_and_the_last_one_wins() {
        let cond = ratelimit("10/1h/UNIQUE=Bob@Example.org/k");
        assert_eq!(cond.unique.as_deref(), Some("Bob@Example.org"));
        assert_eq!(cond.db_key(), "1h/per_mail/unique/k");
        assert_eq!(ratelimit("10/1h/unique=a/unique=b/k").unique.as_deref(), Some("b"));
        assert_eq!(ratelimit("10/1h/unique=/k").unique.as_deref(), Some(""));
    }

    #[test]
    fn other_elements_join_into_the_key() {
        let cond = ratelimit(" 10 / 1h / per_rcpt / alice@example.org / strict / 192.0.2.10 ");
        assert_eq!(cond.key, "alice@example.org/192.0.2.10");
        assert_eq!(cond.update, RatelimitUpdate::Strict);
        assert_eq!(cond.db_key(), "1h/per_rcpt/alice@example.org/192.0.2.10");
    }

    #[test]
    fn a_doubled_slash_is_a_slash_inside_the_key() {
        assert_eq!(ratelimit("10/1h/a//b").key, "a/b");
        assert_eq!(ratelimit("10/1h/a///b").key, "a//b");
        assert_eq!(ratelimit("10/1h/x/").key, "x");
    }

    #[test]
    fn a_missing_or_empty_key_is_refused() {
        for text in ["10/1h", "10/1h/", "10/1h/strict/per_conn", "10/1h/ /strict"] {
            assert_eq!(ratelimit_error(text), ConditionError::NoRatelimitKey, "{text}");
        }
        assert!(ratelimit_error("10/1h").to_string().contains("$sender_host_address"));
    }

    #[test]
    fn white_space_is_trimmed_as_exim_trims_it() {
        let cond = ratelimit("\t10k\x0b/\n1h\r/\x0cper_cmd / key with space ");
        assert_eq!((cond.limit, cond.period_text.as_ref()), (10_240.0, "1h"));
        assert_eq!((cond.mode, cond.key.as_ref()), (RatelimitMode::PerCmd, "key with space"));
    }

    #[test]
    fn the_length_is_checked_first() {
        let long = format!("x/{}", "k".repeat(CONDITION_BYTES_MAX));
        assert_eq!(ratelimit_error(&long), ConditionError::TooLong { len: CONDITION_BYTES_MAX + 2 });
        assert!(ratelimit_error(&long).to_string().contains(&CONDITION_BYTES_MAX.to_string()));
        assert_eq!(seen_error(&long), ConditionError::TooLong { len: CONDITION_BYTES_MAX + 2 });
        let longest = format!("1/1h/{}", "k".repeat(CONDITION_BYTES_MAX - 5));
        assert_eq!(longest.len(), CONDITION_BYTES_MAX);
        assert!(matches!(ratelimit_error(&longest), ConditionError::DbKeyTooLong { .. }));
        assert_eq!(
            seen(&format!("-5m/key={}", "k".repeat(CONDITION_BYTES_MAX - 8))).key.len(),
            CONDITION_BYTES_MAX - 8
        );
    }

    #[test]
    fn a_database_key_past_the_key_limit_is_refused() {
        // `1h/per_mail/` replaces `1/1h/`: 7 bytes more, and Exim's NUL.
        let fits = format!("1/1h/{}", "k".repeat(KEY_BYTES_MAX - 13));
        assert_eq!(ratelimit(&fits).db_key().len() + 1, KEY_BYTES_MAX);
        let over = format!("1/1h/{}", "k".repeat(KEY_BYTES_MAX - 12));
        let err = ratelimit_error(&over);
        assert_eq!(err, ConditionError::DbKeyTooLong { len: KEY_BYTES_MAX + 1 });
        assert!(err.to_string().contains("shorten the key"));
    }

    #[test]
    fn a_nul_byte_is_refused() {
        assert_eq!(ratelimit_error("10/1h/a\0b"), ConditionError::NulByte);
        assert!(ConditionError::NulByte.to_string().contains("NUL"));
        assert_eq!(seen_error("-5m/key=a\0b"), ConditionError::NulByte);
    }

    #[test]
    fn seen_parses_since_and_before() {
        assert_eq!(
            seen("5m / key=192.0.2.10"),
            SeenCondition {
                before: false,
                interval_secs: 300,
                key: "192.0.2.10".into(),
                mode: SeenMode::Default,
                refresh_secs: SEEN_REFRESH_DEFAULT_SECS,
            }
        );
        let before = seen("-1d12h/key=k");
        assert!(before.before);
        assert_eq!(before.interval_secs, 129_600);
        assert_eq!(seen("-0m/key=k").interval_secs, 0);
    }

    #[test]
    fn seen_options_apply_in_order() {
        assert_eq!(seen("-5m/key=k/readonly").mode, SeenMode::Readonly);
        assert_eq!(seen("-5m/key=k/write").mode, SeenMode::Write);
        assert_eq!(seen("-5m/key=k/readonly/write").mode, SeenMode::Write);
        assert_eq!(seen("-5m/key=k/write/readonly").mode, SeenMode::Readonly);
        assert_eq!(seen("-5m/key=a/key=b").key, "b");
        assert_eq!(seen("-5m/key=k/refresh=1d").refresh_secs, 86_400);
        assert_eq!(seen("-5m/key=k/refresh=1d/refresh=2h").refresh_secs, 7_200);
    }

    #[test]
    fn a_seen_key_may_hold_a_doubled_slash_and_an_equals_sign() {
        let cond = seen("-5m / key=192.0.2.10_a//b=c@example.org");
        assert_eq!(cond.key, "192.0.2.10_a/b=c@example.org");
    }

    #[test]
    fn seen_refuses_a_missing_or_bad_interval() {
        assert_eq!(seen_error(""), ConditionError::NoInterval);
        assert!(ConditionError::NoInterval.to_string().contains("interval"));
        for text in ["5x/key=k", "-/key=k", "--5m/key=k", "- 5m/key=k", "/key=k"] {
            assert!(matches!(seen_error(text), ConditionError::BadInterval { .. }), "{text}");
        }
        assert!(seen_error("5x/key=k").to_string().contains("\"5x\""));
    }

    #[test]
    fn seen_refuses_a_bad_refresh() {
        let err = seen_error("-5m/key=k/refresh=soon");
        assert!(matches!(&err, ConditionError::BadRefresh { text, .. } if text == "soon"));
        assert!(err.to_string().contains("refresh"));
    }

    #[test]
    fn seen_refuses_an_unknown_option() {
        for option in ["Readonly", "writes", "refresh", "key"] {
            let err = seen_error(&format!("-5m/key=k/{option}"));
            assert_eq!(err, ConditionError::UnknownSeenOption { text: option.into() }, "{option}");
        }
    }

    #[test]
    fn seen_requires_a_key() {
        for text in ["-5m", "5m/readonly", "-5m/key="] {
            assert_eq!(seen_error(text), ConditionError::NoSeenKey, "{text}");
        }
        assert!(seen_error("-5m").to_string().contains("key="));
    }

    #[test]
    fn long_whole_numbers_go_to_the_float_parser() {
        // 20 digits would overflow the digit-by-digit reading's u64.
        assert_eq!(parse_decimal("99999999999999999999k"), (1e20, "k"));
        assert_eq!(ratelimit("18446744073709551616 / 1h / k").limit, 18_446_744_073_709_551_616.0);
    }

    #[test]
    fn the_longest_key_the_parser_accepts_fits_the_buffer_and_any_key_has_a_string() {
        let key = "k".repeat(KEY_BYTES_MAX - "1h/per_mail/".len() - 1);
        let cond = ratelimit(&format!("1 / 1h / {key}"));
        assert_eq!(cond.db_key_in(&mut DbKeyBuffer::default()).len(), KEY_BYTES_MAX - 1);
        assert!(parse_ratelimit(&format!("1 / 1h / {key}k")).is_err(), "one byte more is refused");
        let built_by_hand = RatelimitCondition { key: "k".repeat(2 * KEY_BYTES_MAX).into(), ..cond };
        assert_eq!(built_by_hand.db_key().len(), "1h/per_mail/".len() + 2 * KEY_BYTES_MAX);
    }

    /// `string_nextinlist` read a character at a time: the oracle for [`list_items`].
    fn list_items_one_char_at_a_time(text: &str) -> Vec<String> {
        let is_space = |c: &char| c.is_ascii() && is_c_space(*c as u8);
        let mut items = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(is_space).is_some() {}
            if chars.peek().is_none() {
                return items;
            }
            let mut item = String::new();
            while let Some(c) = chars.next() {
                if c == '/' && chars.next_if_eq(&'/').is_none() {
                    break;
                }
                item.push(c);
            }
            while item.ends_with(|c: char| is_space(&c)) {
                item.pop();
            }
            items.push(item);
        }
    }

    proptest::proptest! {
        #[test]
        fn list_items_are_the_ones_read_a_character_at_a_time(text in "[a/ \t\u{b}\u{e9}]{0,30}") {
            let items: Vec<String> = list_items(&text).map(Cow::into_owned).collect();
            proptest::prop_assert_eq!(items, list_items_one_char_at_a_time(&text));
        }

        /// A whole number read digit by digit is the one the float parser reads.
        #[test]
        fn whole_numbers_read_as_the_float_parser_reads_them(text in "[0-9]{1,25}[kmg.eE0-9 +-]{0,4}") {
            proptest::prop_assert_eq!(parse_decimal(&text), parse_decimal_in_full(&text));
        }

        /// The key built piece by piece is the one `format!` made before (e0fcd01), and its
        /// length is the one the parser checks.
        #[test]
        fn the_db_key_is_the_formatted_one(
            period_text in "[0-9a-z/ .]{0,12}",
            key in "\\PC{0,40}",
            unique in proptest::option::of("\\PC{0,10}"),
            mode in 0..RatelimitMode::ALL.len(),
        ) {
            let mode = RatelimitMode::ALL[mode];
            let cond = RatelimitCondition {
                limit: 1.0,
                period_text: period_text.into(),
                period_secs: 1.0,
                mode,
                update: RatelimitUpdate::Leaky,
                count: 1.0,
                unique: unique.map(Into::into),
                key: key.into(),
            };
            let unique = if cond.unique.is_some() { "unique/" } else { "" };
            let old = format!("{}/{}/{}{}", cond.period_text, cond.mode.key_text(), unique, cond.key);
            proptest::prop_assert_eq!(cond.db_key_len(), old.len());
            let mut buffer = DbKeyBuffer::default();
            proptest::prop_assert_eq!(cond.db_key_in(&mut buffer), &old);
            proptest::prop_assert_eq!(cond.db_key(), old);
        }
    }
}
