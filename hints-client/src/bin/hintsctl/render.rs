//! How hintsctl prints what hintsd answers: record lines, JSON lines, the stats table, and
//! the one-line answers of the typed operations (ratelimit, seen, greylist, serialize,
//! snapshot).

use hints_client::{DbStats, GreylistOutcome, OpCount, RateOutcome, Record, SeenOutcome, SlotOutcome, Stamp};
use serde::Serialize;
use serde::ser::Serializer;

use crate::bytes::{escape, to_hex};
use crate::time::{epoch_micros, rfc3339_micros};

/// How keys and values are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Printable-escaped (see [`escape`]).
    Escaped,
    /// Lower-case hex.
    Hex,
}

impl Shown {
    /// `bytes` as this says.
    pub fn text(self, bytes: &[u8]) -> String {
        match self {
            Shown::Escaped => escape(bytes),
            Shown::Hex => to_hex(bytes),
        }
    }
}

/// `rfc3339<TAB>epoch`, as `put` prints a stamp.
pub fn stamp_line(stamp: Stamp) -> String {
    format!("{}\t{}", rfc3339_micros(stamp), epoch_micros(stamp))
}

/// `key<TAB>value`, as `scan` prints a record.
pub fn scan_line(record: &Record, shown: Shown) -> String {
    format!("{}\t{}", shown.text(&record.key), shown.text(&record.value))
}

/// `key<TAB>rfc3339<TAB>epoch<TAB>value`, as `dump` prints a record.
pub fn dump_line(record: &Record, shown: Shown) -> String {
    format!("{}\t{}\t{}", shown.text(&record.key), stamp_line(record.stamp), shown.text(&record.value))
}

/// One record as `dump --json` prints it, fields in this order.
#[derive(Serialize)]
struct DumpJson {
    key: String,
    key_hex: String,
    stamp: String,
    epoch: u64,
    micros: u32,
    value: String,
    value_hex: String,
}

/// One JSON object, as `dump --json` prints a record.
///
/// # Errors
/// None in practice: every field is a string or an integer.
pub fn dump_json(record: &Record) -> serde_json::Result<String> {
    let line = DumpJson {
        key: escape(&record.key),
        key_hex: to_hex(&record.key),
        stamp: rfc3339_micros(record.stamp),
        epoch: record.stamp.secs,
        micros: record.stamp.micros,
        value: escape(&record.value),
        value_hex: to_hex(&record.value),
    };
    serde_json::to_string(&line)
}

/// One database's counters as `stats --json` prints them.
#[derive(Serialize)]
struct StatsJson<'a> {
    db: &'a str,
    records: u64,
    bytes: u64,
    records_max: u64,
    expired: u64,
    evicted: u64,
    slots_held: u64,
    #[serde(serialize_with = "ops_as_object")]
    ops: &'a [OpCount],
}

/// `{"get": 3, "put": 1}`, in the daemon's order.
fn ops_as_object<S: Serializer>(ops: &&[OpCount], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(ops.iter().map(|op| (op.kind.as_str(), op.count)))
}

/// One JSON object, as `stats --json` prints a database.
///
/// # Errors
/// None in practice: every field is a string or an integer.
pub fn stats_json(stats: &DbStats) -> serde_json::Result<String> {
    serde_json::to_string(&StatsJson {
        db: stats.db.as_str(),
        records: stats.records,
        bytes: stats.bytes,
        records_max: stats.records_max,
        expired: stats.expired,
        evicted: stats.evicted,
        slots_held: stats.slots_held,
        ops: &stats.ops,
    })
}

/// The `stats` table: `db`, `records`, `bytes`, `max`, `expired`, `evicted`, `slots`, then one
/// column per kind of operation (in the
/// order the kinds first appear), numbers right-aligned. Ends with a newline; empty when there
/// are no databases.
pub fn stats_table(all: &[DbStats]) -> String {
    if all.is_empty() {
        return String::new();
    }
    let mut kinds: Vec<&str> = Vec::new();
    for op in all.iter().flat_map(|stats| &stats.ops) {
        if !kinds.contains(&op.kind.as_str()) {
            kinds.push(&op.kind);
        }
    }
    let header: Vec<String> = ["db", "records", "bytes", "max", "expired", "evicted", "slots"]
        .into_iter()
        .chain(kinds.iter().copied())
        .map(String::from)
        .collect();
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|stats| {
            let count_of = |kind: &str| stats.ops.iter().filter(|op| op.kind == kind).map(|op| op.count).sum::<u64>();
            [
                stats.db.to_string(),
                stats.records.to_string(),
                stats.bytes.to_string(),
                stats.records_max.to_string(),
                stats.expired.to_string(),
                stats.evicted.to_string(),
                stats.slots_held.to_string(),
            ]
            .into_iter()
            .chain(kinds.iter().map(|kind| count_of(kind).to_string()))
            .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| std::iter::once(&header).chain(&rows).map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(
                |(column, (cell, &width))| {
                    if column == 0 { format!("{cell:<width$}") } else { format!("{cell:>width$}") }
                },
            )
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `over <rate>` or `under <rate>`, as `ratelimit` prints its answer: the rate in Rust's
/// shortest form that reads back as the same `f64` (never rounded to fewer digits).
pub fn rate_line(outcome: &RateOutcome) -> String {
    let verdict = if outcome.over { "over" } else { "under" };
    format!("{verdict} {}", outcome.rate)
}

/// `ratelimit --json`'s object, fields in this order.
#[derive(Serialize)]
struct RateJson<'a> {
    over: bool,
    rate: f64,
    key: &'a str,
    written: bool,
}

/// One JSON object, as `ratelimit --json` prints its answer: the rate as a JSON number in its
/// shortest round-trip form.
///
/// # Errors
/// None in practice: every field is a string, a boolean or a number (a non-finite rate, which
/// a daemon never sends, would be `null`).
pub fn rate_json(outcome: &RateOutcome) -> serde_json::Result<String> {
    serde_json::to_string(&RateJson {
        over: outcome.over,
        rate: outcome.rate,
        key: &outcome.key,
        written: outcome.written,
    })
}

/// `true` or `false`, as `seen` prints its answer.
pub fn seen_line(outcome: SeenOutcome) -> &'static str {
    if outcome.result { "true" } else { "false" }
}

/// `seen --json`'s object.
#[derive(Serialize)]
struct SeenJson {
    result: bool,
    written: bool,
}

/// One JSON object, as `seen --json` prints its answer.
///
/// # Errors
/// None in practice: both fields are booleans.
pub fn seen_json(outcome: SeenOutcome) -> serde_json::Result<String> {
    serde_json::to_string(&SeenJson { result: outcome.result, written: outcome.written })
}

/// `pass` or `defer <seconds left>`, as `greylist` prints its answer.
pub fn greylist_line(outcome: GreylistOutcome) -> String {
    if outcome.pass { "pass".to_owned() } else { format!("defer {}", outcome.retry_after_secs) }
}

/// `greylist --json`'s object.
#[derive(Serialize)]
struct GreylistJson {
    pass: bool,
    retry_after_secs: u64,
}

/// One JSON object, as `greylist --json` prints its answer.
///
/// # Errors
/// None in practice: a boolean and an integer.
pub fn greylist_json(outcome: GreylistOutcome) -> serde_json::Result<String> {
    serde_json::to_string(&GreylistJson { pass: outcome.pass, retry_after_secs: outcome.retry_after_secs })
}

/// `taken <holders>` or `busy <holders>`, as `serialize` prints a take.
pub fn slot_line(outcome: SlotOutcome) -> String {
    let verdict = if outcome.held { "taken" } else { "busy" };
    format!("{verdict} {}", outcome.holders)
}

/// `wrote <n> databases, <m> records`, as `snapshot` prints its answer.
pub fn snapshot_line(databases: u32, records: u64) -> String {
    format!("wrote {databases} databases, {records} records")
}

#[cfg(test)]
mod tests {
    use hints_client::DbName;

    use super::*;

    fn record() -> Record {
        Record { key: b"k\t1".to_vec(), value: b"v\\\xff".to_vec(), stamp: Stamp { secs: 1_767_323_045, micros: 6 } }
    }

    #[test]
    fn record_lines_are_tab_separated_and_escaped() {
        assert_eq!(scan_line(&record(), Shown::Escaped), "k\\t1\tv\\\\\\xff");
        assert_eq!(scan_line(&record(), Shown::Hex), "6b0931\t765cff");
        assert_eq!(
            dump_line(&record(), Shown::Escaped),
            "k\\t1\t2026-01-02T03:04:05.000006Z\t1767323045.000006\tv\\\\\\xff"
        );
    }

    #[test]
    fn dump_json_carries_escaped_and_hex_forms_in_order() {
        assert_eq!(
            dump_json(&record()).unwrap(),
            r#"{"key":"k\\t1","key_hex":"6b0931","stamp":"2026-01-02T03:04:05.000006Z","epoch":1767323045,"micros":6,"value":"v\\\\\\xff","value_hex":"765cff"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&dump_json(&record()).unwrap()).unwrap();
        assert_eq!(parsed["key"], "k\\t1");
    }

    fn stats() -> Vec<DbStats> {
        let op = |kind: &str, count| OpCount { kind: kind.into(), count };
        vec![
            DbStats {
                db: DbName::new("misc").unwrap(),
                records: 12,
                bytes: 3456,
                ops: vec![op("get", 10), op("put", 2)],
                records_max: 100_000,
                expired: 0,
                evicted: 0,
                slots_held: 1,
            },
            DbStats {
                db: DbName::new("ratelimit").unwrap(),
                records: 0,
                bytes: 0,
                ops: vec![op("put", 7), op("scan", 1)],
                records_max: 100_000,
                expired: 3,
                evicted: 0,
                slots_held: 0,
            },
        ]
    }

    #[test]
    fn stats_json_is_one_object_per_database_with_ops_as_an_object() {
        assert_eq!(
            stats_json(&stats()[0]).unwrap(),
            r#"{"db":"misc","records":12,"bytes":3456,"records_max":100000,"expired":0,"evicted":0,"slots_held":1,"ops":{"get":10,"put":2}}"#
        );
    }

    #[test]
    fn the_stats_table_has_a_column_per_kind_and_aligned_numbers() {
        let want = "\
db         records  bytes     max  expired  evicted  slots  get  put  scan
misc            12   3456  100000        0        0      1   10    2     0
ratelimit        0      0  100000        3        0      0    0    7     1
";
        assert_eq!(stats_table(&stats()), want);
        assert_eq!(stats_table(&[]), "");
    }

    fn rate(rate: f64, over: bool) -> RateOutcome {
        RateOutcome { rate, over, key: "1h/per_rcpt/192.0.2.1".into(), written: !over }
    }

    #[test]
    fn a_rate_prints_over_or_under_with_every_digit_it_needs() {
        assert_eq!(rate_line(&rate(10.0, true)), "over 10");
        assert_eq!(rate_line(&rate(0.0, false)), "under 0");
        assert_eq!(rate_line(&rate(0.1 + 0.2, false)), "under 0.30000000000000004");
        assert_eq!(rate_line(&rate(10.983_404_197_730_52, true)), "over 10.98340419773052");
        assert_eq!(rate_line(&rate(1e-7, false)), "under 0.0000001");
        for value in [0.1 + 0.2, 10.983_404_197_730_52, 1.0 / 3.0, 123_456.789_012_345_67, f64::MIN_POSITIVE] {
            let line = rate_line(&rate(value, false));
            let printed: f64 = line.strip_prefix("under ").unwrap().parse().unwrap();
            assert_eq!(printed.to_bits(), value.to_bits(), "{line}");
        }
    }

    #[test]
    fn rate_json_has_its_fields_in_order_and_the_rate_as_a_number() {
        assert_eq!(
            rate_json(&rate(0.1 + 0.2, true)).unwrap(),
            r#"{"over":true,"rate":0.30000000000000004,"key":"1h/per_rcpt/192.0.2.1","written":false}"#
        );
        let odd_key = RateOutcome { rate: 2.0, over: false, key: "1h/per_mail/a\"b\n".into(), written: true };
        let parsed: serde_json::Value = serde_json::from_str(&rate_json(&odd_key).unwrap()).unwrap();
        assert_eq!(parsed["key"], "1h/per_mail/a\"b\n");
        assert_eq!(parsed["rate"], 2.0);
    }

    #[test]
    fn seen_greylist_serialize_and_snapshot_print_one_line() {
        assert_eq!(seen_line(SeenOutcome { result: true, written: false }), "true");
        assert_eq!(seen_line(SeenOutcome { result: false, written: true }), "false");
        assert_eq!(
            seen_json(SeenOutcome { result: false, written: true }).unwrap(),
            r#"{"result":false,"written":true}"#
        );
        assert_eq!(greylist_line(GreylistOutcome { pass: true, retry_after_secs: 0 }), "pass");
        assert_eq!(greylist_line(GreylistOutcome { pass: false, retry_after_secs: 297 }), "defer 297");
        assert_eq!(
            greylist_json(GreylistOutcome { pass: false, retry_after_secs: 297 }).unwrap(),
            r#"{"pass":false,"retry_after_secs":297}"#
        );
        assert_eq!(slot_line(SlotOutcome { held: true, holders: 1 }), "taken 1");
        assert_eq!(slot_line(SlotOutcome { held: false, holders: 2 }), "busy 2");
        assert_eq!(snapshot_line(3, 12_345), "wrote 3 databases, 12345 records");
    }
}
