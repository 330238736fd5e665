//! `hintsctl` against the real daemon: every subcommand, its output and its exit status.

mod common;

use std::process::Command;

use common::{Daemon, stderr, stdout};

fn ok(daemon: &Daemon, args: &[&str]) -> String {
    let output = daemon.hintsctl(args);
    assert_eq!(output.status.code(), Some(0), "hintsctl {args:?}: {}", stderr(&output));
    stdout(&output)
}

#[test]
fn put_get_del_work_and_a_missing_key_exits_1() {
    let daemon = Daemon::start(&[]);
    let stamp = ok(&daemon, &["put", "retry", "T:mx.example.net:192.0.2.7", "first failure"]);
    assert!(stamp.contains('T') && stamp.contains('Z'), "put prints an RFC 3339 stamp: {stamp}");
    assert_eq!(ok(&daemon, &["get", "retry", "T:mx.example.net:192.0.2.7"]), "first failure\n");
    ok(&daemon, &["del", "retry", "T:mx.example.net:192.0.2.7"]);
    for args in [["get", "retry", "T:mx.example.net:192.0.2.7"], ["del", "retry", "T:mx.example.net:192.0.2.7"]] {
        let output = daemon.hintsctl(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(!stderr(&output).is_empty(), "the reason is on stderr");
    }
}

#[test]
fn binary_keys_and_values_go_in_and_out_as_hex_or_escaped() {
    let daemon = Daemon::start(&[]);
    ok(&daemon, &["--hex", "put", "seen", "636f6e6e2d3139322e302e322e313000", "00ff0a"]);
    assert_eq!(ok(&daemon, &["--hex", "get", "seen", "636f6e6e2d3139322e302e322e313000"]), "00ff0a\n");
    assert_eq!(ok(&daemon, &["scan", "seen"]), "conn-192.0.2.10\\x00\t\\x00\\xff\\n\n");
}

#[test]
fn scan_and_dump_list_records_in_key_order() {
    let daemon = Daemon::start(&[]);
    for key in ["b", "a2", "a1", "c"] {
        ok(&daemon, &["put", "misc", key, &format!("value-{key}")]);
    }
    assert_eq!(ok(&daemon, &["scan", "misc", "--prefix", "a"]), "a1\tvalue-a1\na2\tvalue-a2\n");
    assert_eq!(ok(&daemon, &["scan", "misc", "--limit", "2"]).lines().count(), 2);

    let dump = ok(&daemon, &["dump", "misc"]);
    let lines: Vec<Vec<&str>> = dump.lines().map(|line| line.split('\t').collect()).collect();
    assert_eq!(lines.iter().map(|fields| fields[0]).collect::<Vec<_>>(), ["a1", "a2", "b", "c"]);
    for fields in &lines {
        assert_eq!(fields.len(), 4, "key, RFC 3339 stamp, epoch, value: {fields:?}");
        assert!(fields[1].ends_with('Z'));
        let (secs, micros) = fields[2].split_once('.').expect("epoch.micros");
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000 && micros.len() == 6);
        assert_eq!(fields[3], format!("value-{}", fields[0]));
    }

    let json = ok(&daemon, &["dump", "misc", "--json"]);
    let objects: Vec<serde_json::Value> = json.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(objects.len(), 4);
    assert_eq!(objects[0]["key"], "a1");
    assert_eq!(objects[0]["value"], "value-a1");
    assert!(objects[0]["epoch"].as_u64().is_some());
}

#[test]
fn tidy_and_stats_report_counts() {
    let daemon = Daemon::start(&[]);
    ok(&daemon, &["put", "callout", "example.net", "1"]);
    assert_eq!(ok(&daemon, &["tidy", "callout", "--older-than", "30d"]).trim(), "0");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(ok(&daemon, &["tidy", "callout", "--older-than", "1s"]).trim(), "1");

    ok(&daemon, &["put", "callout", "example.org", "1"]);
    let table = ok(&daemon, &["stats"]);
    assert!(table.lines().any(|line| line.starts_with("callout")), "{table}");
    let json = ok(&daemon, &["stats", "--json"]);
    let callout = json
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|stats| stats["db"] == "callout")
        .expect("callout in stats");
    assert_eq!(callout["records"], 1);
    assert_eq!(callout["ops"]["put"], 2);
    assert_eq!(callout["ops"]["tidy"], 2);
}

#[test]
fn usage_errors_exit_2() {
    let daemon = Daemon::start(&[]);
    for args in [
        &["get", "Bad Name", "k"][..],
        &["tidy", "misc", "--older-than", "soon"],
        &["--hex", "get", "misc", "zz"],
        &["frobnicate"],
        &["scan", "misc", "--limit", "0"],
    ] {
        let output = daemon.hintsctl(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
    }
}

#[test]
fn without_a_daemon_hintsctl_exits_3_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nothing-here.sock");
    let output = Command::new(common::hintsctl_bin()).arg("--socket").arg(&socket).arg("ping").output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains(socket.to_str().unwrap()), "{}", stderr(&output));

    // The same rule as the daemon: $HINTSD_SOCKET when --socket is not given.
    let output = Command::new(common::hintsctl_bin()).env("HINTSD_SOCKET", &socket).arg("ping").output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains(socket.to_str().unwrap()), "{}", stderr(&output));
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["ping", "get", "put", "del", "scan", "dump", "tidy", "stats"] {
        let output = Command::new(common::hintsctl_bin()).args([sub, "--help"]).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{sub}");
        assert!(stdout(&output).contains("Usage"), "{sub}");
    }
}
