//! The benchmark harness runs every contender for a moment and its numbers add up, so it
//! cannot rot between benchmark runs. No timing is asserted.

mod common;

use std::process::Command;

use common::{HINTS_BENCH, stderr, stdout};

#[test]
fn every_contender_runs_and_reports_operations_without_errors() {
    common::hintsd_bin(); // hints-bench starts the hintsd that sits beside it
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("cells.json");
    let output = Command::new(HINTS_BENCH)
        .args(["run", "--clients", "1,2", "--ops", "get,put,mix", "--seconds", "0.2", "--keys", "50", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    let cells: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    // hintsd and hintsd-pool run three operations at two client counts; echo runs one.
    assert_eq!(cells.len(), 2 * 3 * 2 + 2);
    for cell in &cells {
        assert!(cell["ops_per_sec"].as_f64().unwrap() > 0.0, "{cell}");
        assert_eq!(cell["errors"], 0, "{cell}");
        assert!(cell["p50_us"].as_f64().unwrap() <= cell["p99_us"].as_f64().unwrap(), "{cell}");
    }
    assert!(stdout(&output).contains("| hintsd | get | 1 |"), "{}", stdout(&output));
}
