//! The hint operations through the real daemon: Exim's ratelimit and seen, greylisting,
//! serialize slots held by connections, counters, exclusive sessions, expiry, and snapshots
//! across restarts and crashes.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DAEMON_WAIT_MAX, Daemon, HINTS_BENCH, db, stderr, stdout};
use hints_proto::Stamp;

fn at(secs: u64, micros: u32) -> Option<Stamp> {
    Some(Stamp { secs, micros })
}

/// Polls `check` until it holds, failing past the daemon wait (for effects of process death).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DAEMON_WAIT_MAX;
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not happen within {DAEMON_WAIT_MAX:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ratelimit_follows_exims_formula_and_limit_rule() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    // Limit 10 per hour, one event a second from 1 000 000 000: the 11th is the first over.
    let mut results = Vec::new();
    for n in 0..12u64 {
        let outcome = client.ratelimit("10 / 1h / per_rcpt / 192.0.2.1", at(1_000_000_000 + n, 0)).unwrap();
        assert_eq!(outcome.key, "1h/per_rcpt/192.0.2.1", "the reply names the record's key");
        results.push((outcome.over, outcome.rate));
    }
    assert!(results[..10].iter().all(|(over, _)| !over), "{results:?}");
    assert!(results[10].0 && results[11].0, "{results:?}");
    assert!((results[9].1 - 9.986).abs() < 0.001 && (results[10].1 - 10.983).abs() < 0.001, "{results:?}");
    let record = client.get(&db("ratelimit"), b"1h/per_rcpt/192.0.2.1").unwrap().expect("Exim's key layout");
    assert_eq!(record.value.len(), 24, "stored as Exim's dbdata_ratelimit");

    // Read-only never changes what is stored.
    let before = client.get(&db("ratelimit"), b"1h/per_rcpt/192.0.2.1").unwrap();
    let outcome = client.ratelimit("10 / 1h / per_rcpt / readonly / 192.0.2.1", at(1_000_000_100, 0)).unwrap();
    assert!(!outcome.written);
    assert_eq!(client.get(&db("ratelimit"), b"1h/per_rcpt/192.0.2.1").unwrap(), before);
}

#[test]
fn a_damaged_record_under_a_rate_or_seen_key_is_dropped_and_started_afresh() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    // Bytes that are no Exim record, under the keys the conditions use.
    client.put(&db("ratelimit"), b"1h/per_rcpt/192.0.2.7", b"not a rate").unwrap();
    client.put(&db("seen"), b"sender@example.net", b"?").unwrap();

    let outcome = client.ratelimit("10 / 1h / per_rcpt / 192.0.2.7", at(1_000_000_000, 0)).unwrap();
    assert!(outcome.written && !outcome.over, "{outcome:?}");
    let record = client.get(&db("ratelimit"), b"1h/per_rcpt/192.0.2.7").unwrap().expect("written afresh");
    assert_eq!(record.value.len(), 24, "a real dbdata_ratelimit now");
    let again = client.ratelimit("10 / 1h / per_rcpt / 192.0.2.7", at(1_000_000_001, 0)).unwrap();
    assert!(again.rate > outcome.rate, "the fresh record counts on: {outcome:?} then {again:?}");

    let seen = client.seen("-5m / key=sender@example.net / write", at(1_000_000_000, 0)).unwrap();
    assert!(seen.written, "{seen:?}");
    let record = client.get(&db("seen"), b"sender@example.net").unwrap().expect("written afresh");
    assert_eq!(record.value.len(), 8, "a real dbdata_seen now");
    assert!(daemon.log_text().matches("dropping a damaged record").count() >= 2, "{}", daemon.log_text());
}

#[test]
fn ratelimit_conditions_exim_would_refuse_are_refused_in_its_words() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    for (condition, words) in [
        ("10 / 1h / per_rcpt / per_mail / k", "conflicting per_* options"),
        ("10 / 1h / strict / leaky / k", "conflicting update modes"),
        ("10 / 0s / k", "period"),
        ("10 / 1h / count=-1 / k", "count"),
    ] {
        let err = client.ratelimit(condition, None).unwrap_err();
        assert!(err.to_string().contains(words), "{condition}: {err}");
    }
    client.ping().unwrap();
}

#[test]
fn hintsctl_prints_the_rate_in_full_precision_and_json() {
    let daemon = Daemon::start(&[]);
    let out = daemon.hintsctl(&["ratelimit", "100 / 1h / strict / per_rcpt / 192.0.2.1", "--at", "1000000000.000001"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "under 1\n");
    let out = daemon.hintsctl(&[
        "ratelimit",
        "100 / 1h / strict / per_rcpt / 192.0.2.1",
        "--at",
        "1000003600.000001",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["over"], false);
    let rate = json["rate"].as_f64().unwrap();
    // prev 1.0 after exactly one period: (1 - e^-1) * 1 / 1 + e^-1 * 1 = 1.0, floored at count.
    assert_eq!(rate, 1.0);
    let out = daemon.hintsctl(&["ratelimit", "1 / 1h / k", "--at", "1.5e3"]);
    assert_eq!(out.status.code(), Some(2), "--at is integers, never a float: {}", stderr(&out));
}

#[test]
fn seen_answers_before_and_since_as_exim_does() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    // No record: false, and one is created.
    assert!(!client.seen("-5m / key=conn-192.0.2.10", at(1_000_000, 0)).unwrap().result);
    // Four minutes later it was seen less than five minutes ago: a "before" test is false...
    assert!(!client.seen("-5m / key=conn-192.0.2.10 / readonly", at(1_000_240, 0)).unwrap().result);
    // ...and a "since" test is true.
    assert!(client.seen("5m / key=conn-192.0.2.10 / readonly", at(1_000_240, 0)).unwrap().result);
    // Ten minutes after the first sighting, "before 5m" is true.
    assert!(client.seen("-5m / key=conn-192.0.2.10", at(1_000_600, 0)).unwrap().result);
    let out = daemon.hintsctl(&["seen", "-5m / key=conn-192.0.2.10 / readonly"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(["true\n", "false\n"].contains(&stdout(&out).as_str()), "{}", stdout(&out));
    let record = client.get(&db("seen"), b"conn-192.0.2.10").unwrap().unwrap();
    assert_eq!(record.value.len(), 8, "stored as Exim's dbdata_seen");
}

#[test]
fn a_greylisted_triplet_passes_after_the_delay() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    let greylist = db("greylist");
    let key = b"192.0.2.1 <a@example.net> <b@example.org>";
    let (delay, expiry) = (Duration::from_secs(300), Duration::from_secs(86_400 * 30));
    let first = client.greylist(&greylist, key, delay, expiry, at(2_000_000, 0)).unwrap();
    assert!(!first.pass && first.retry_after_secs == 300, "{first:?}");
    let early = client.greylist(&greylist, key, delay, expiry, at(2_000_100, 0)).unwrap();
    assert!(!early.pass && early.retry_after_secs == 200, "{early:?}");
    assert!(client.greylist(&greylist, key, delay, expiry, at(2_000_300, 0)).unwrap().pass);
    assert!(client.greylist(&greylist, key, delay, expiry, at(2_000_301, 0)).unwrap().pass, "remembered");
    let out = daemon.hintsctl(&["greylist", "another triplet", "--delay", "5m", "--expiry", "30d"]);
    assert_eq!(stdout(&out), "defer 300\n", "{}", stderr(&out));
}

#[test]
fn eight_processes_of_counter_adds_lose_none() {
    let daemon = Daemon::start(&[]);
    daemon.run_workers(8, &["counter-add", "--db", "misc", "--key", "hits", "--count", "10000"], &[]);
    assert_eq!(daemon.client().counter(&db("misc"), b"hits", 0, None, None).unwrap(), 80_000);
}

#[test]
fn serialize_slots_never_exceed_their_limit_under_competition() {
    let daemon = Daemon::start(&[]);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            Command::new(HINTS_BENCH)
                .args(["serialize-worker", "--rounds", "500", "--limit", "3", "--socket"])
                .arg(&daemon.socket)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut taken_total = 0u32;
    for worker in workers {
        let output = worker.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let taken: u32 = stdout(&output).split_whitespace().next().unwrap().parse().unwrap();
        taken_total += taken;
    }
    assert!(taken_total > 0, "somebody got a slot");
    let stats = daemon.client().stats(Some(&db("misc"))).unwrap();
    assert_eq!(stats[0].slots_held, 0, "every slot was given back");
}

#[test]
fn a_holder_killed_with_sigkill_frees_its_slot() {
    let daemon = Daemon::start(&[]);
    let mut holder = Command::new(common::hintsctl_bin())
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["serialize", "misc", "etrn-example.net", "--limit", "1", "--hold", "10m"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = daemon.client();
    eventually("the holder taking its slot", || client.stats(Some(&db("misc"))).unwrap()[0].slots_held == 1);
    assert!(!client.serialize_take(&db("misc"), b"etrn-example.net", 1).unwrap().held, "the one slot is taken");
    holder.kill().unwrap();
    holder.wait().unwrap();
    eventually("the dead holder's slot coming free", || {
        client.serialize_take(&db("misc"), b"etrn-example.net", 1).unwrap().held
    });
}

#[test]
fn an_exclusive_session_makes_other_writers_wait_in_order() {
    let daemon = Daemon::start(&[]);
    let misc = db("misc");
    let mut holder = daemon.client();
    holder.lock(&misc, Duration::from_secs(30)).unwrap();
    let config = daemon.client_config();
    let waiter = std::thread::spawn(move || {
        let mut other = hints_client::Client::new(config);
        other.put(&db("misc"), b"legacy", b"from the waiter").unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    holder.put(&misc, b"legacy", b"from the holder").unwrap();
    assert_eq!(holder.get(&misc, b"legacy").unwrap().unwrap().value, b"from the holder", "the waiter waited");
    assert!(holder.unlock(&misc).unwrap());
    waiter.join().unwrap();
    assert_eq!(holder.get(&misc, b"legacy").unwrap().unwrap().value, b"from the waiter");

    // A lease that runs out, and a holder that disconnects, both let the others in.
    holder.lock(&misc, Duration::from_millis(300)).unwrap();
    daemon.client().put(&misc, b"after-lease", b"1").unwrap();
    holder.lock(&misc, Duration::from_secs(30)).unwrap();
    drop(holder);
    daemon.client().put(&misc, b"after-disconnect", b"1").unwrap();
}

#[test]
fn data_survives_a_restart_and_a_crash_after_a_periodic_snapshot() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("hintsd.toml");
    std::fs::write(&config, "snapshot_interval = \"1s\"\n").unwrap();
    let mut daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    let mut client = daemon.client();
    client.put(&db("retry"), b"T:mx.example.net:192.0.2.7", b"refused").unwrap();
    client.put(&db("greylist"), b"triplet", b"x").unwrap();
    assert!(daemon.stop().success());
    daemon.launch();
    let mut client = daemon.client();
    assert_eq!(client.get(&db("retry"), b"T:mx.example.net:192.0.2.7").unwrap().unwrap().value, b"refused");
    assert_eq!(client.get(&db("greylist"), b"triplet").unwrap().unwrap().value, b"x", "a database made by use");

    client.put(&db("retry"), b"R:example.org", b"later").unwrap();
    eventually("a periodic snapshot holding the new record", || {
        let image = std::fs::read(daemon.snapshot_dir().join("retry.snapshot")).unwrap_or_default();
        image.windows(13).any(|w| w == b"R:example.org")
    });
    daemon.kill();
    daemon.launch();
    assert_eq!(daemon.client().get(&db("retry"), b"R:example.org").unwrap().unwrap().value, b"later");
}

#[test]
fn a_truncated_snapshot_is_set_aside_and_the_daemon_starts() {
    let mut daemon = Daemon::start(&[]);
    for n in 0..100u32 {
        daemon.client().put(&db("callout"), format!("example{n}.net").as_bytes(), b"x").unwrap();
    }
    assert!(daemon.stop().success());
    let file = daemon.snapshot_dir().join("callout.snapshot");
    let image = std::fs::read(&file).unwrap();
    std::fs::write(&file, &image[..image.len() / 2]).unwrap();
    daemon.launch();
    let mut client = daemon.client();
    assert_eq!(client.get(&db("callout"), b"example1.net").unwrap(), None, "a damaged snapshot is not trusted");
    client.put(&db("callout"), b"new", b"y").unwrap();
    let set_aside: Vec<_> = std::fs::read_dir(daemon.snapshot_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("callout.snapshot.bad-"))
        .collect();
    assert_eq!(set_aside.len(), 1, "the damaged file is kept aside");
    assert!(daemon.log_text().contains("set aside"), "{}", daemon.log_text());
}

#[test]
fn hintsctl_snapshot_and_no_snapshot() {
    let daemon = Daemon::start(&[]);
    daemon.client().put(&db("misc"), b"k", b"v").unwrap();
    let out = daemon.hintsctl(&["snapshot", "misc"]);
    assert_eq!(stdout(&out), "wrote 1 databases, 1 records\n", "{}", stderr(&out));
    assert!(daemon.snapshot_dir().join("misc.snapshot").exists());

    let mut cache = Daemon::start(&["--no-snapshot"]);
    cache.client().put(&db("misc"), b"k", b"v").unwrap();
    assert!(cache.stop().success());
    cache.launch();
    assert_eq!(cache.client().get(&db("misc"), b"k").unwrap(), None, "a pure cache forgets");
}

#[test]
fn counters_with_an_expiry_start_again_after_it() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    let misc = db("misc");
    let hour = Some(Duration::from_secs(3600));
    assert_eq!(client.counter(&misc, b"per-hour", 5, hour, at(10_000, 0)).unwrap(), 5);
    assert_eq!(client.counter(&misc, b"per-hour", 1, hour, at(11_000, 0)).unwrap(), 6);
    assert_eq!(client.counter(&misc, b"per-hour", 1, hour, at(13_601, 0)).unwrap(), 1, "a new window");
    let out = daemon.hintsctl(&["counter", "misc", "plain", "--add=-3"]);
    assert_eq!(stdout(&out), "-3\n", "{}", stderr(&out));
}

#[test]
fn records_past_the_limit_evict_the_oldest_and_stats_say_so() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("hintsd.toml");
    std::fs::write(&config, "[db.misc]\nrecords_max = 100\n").unwrap();
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    let mut client = daemon.client();
    for n in 0..150u32 {
        client.put(&db("misc"), format!("k{n:03}").as_bytes(), b"v").unwrap();
    }
    let stats = &client.stats(Some(&db("misc"))).unwrap()[0];
    assert!(stats.records <= 100, "{stats:?}");
    assert_eq!(stats.records_max, 100);
    assert_eq!(stats.records + stats.evicted, 150);
    assert_eq!(client.get(&db("misc"), b"k000").unwrap(), None, "the oldest went first");
    assert!(client.get(&db("misc"), b"k149").unwrap().is_some(), "the newest stayed");
}

#[test]
fn requests_pipelined_behind_a_lock_run_inside_that_session() {
    let daemon = Daemon::start(&[]);
    let misc = db("misc");
    let mut first = daemon.client();
    first.lock(&misc, Duration::from_secs(30)).unwrap();
    let config = daemon.client_config();
    let second = std::thread::spawn(move || {
        let mut second = hints_client::Client::new(config);
        let lock = hints_proto::Request::Lock { db: db("misc"), lease_ms: hints_proto::limits::LEASE_MS_MAX };
        let put = hints_proto::Request::Put { db: db("misc"), key: b"k".to_vec(), value: b"second".to_vec() };
        let answers = second.pipeline(&[lock, put]).unwrap();
        let unlocked = second.unlock(&db("misc")).unwrap();
        (answers, unlocked)
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(first.unlock(&misc).unwrap());
    let (answers, unlocked) = second.join().unwrap();
    assert!(matches!(answers[0], hints_proto::Response::Locked { .. }), "{answers:?}");
    // Answered inside the new session, not when its (long) lease ran out.
    assert!(matches!(answers[1], hints_proto::Response::Stored(_)), "{answers:?}");
    assert!(unlocked, "the session was still the second client's");
}

#[test]
fn a_request_whose_client_left_while_it_waited_is_never_applied() {
    let daemon = Daemon::start(&[]);
    let misc = db("misc");
    let mut holder = daemon.client();
    holder.lock(&misc, Duration::from_secs(30)).unwrap();
    let mut impatient = hints_client::Client::new(daemon.client_config().with_timeout(Duration::from_millis(300)));
    assert!(matches!(impatient.put(&misc, b"late", b"x"), Err(hints_client::Error::Unavailable { .. })));
    drop(impatient);
    std::thread::sleep(Duration::from_millis(200));
    assert!(holder.unlock(&misc).unwrap());
    assert_eq!(holder.get(&misc, b"late").unwrap(), None, "the withdrawn put was not applied");
}

#[test]
fn many_snapshot_requests_at_once_share_writes() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    client.put(&db("misc"), b"k", b"v").unwrap();
    let requests: Vec<_> = (0..64).map(|_| hints_proto::Request::Snapshot { db: Some(db("misc")) }).collect();
    let answers = client.pipeline(&requests).unwrap();
    assert!(answers.iter().all(|a| matches!(a, hints_proto::Response::Snapshotted { records: 1, .. })), "{answers:?}");
    // How many writes the 64 share depends on how the daemon's reads split the pipeline and
    // on when each write ends, which a loaded machine changes (4 were seen under CI); one write
    // per request is what must never happen.
    let writes = daemon.log_text().lines().filter(|l| l.contains("snapshot written") && l.contains("db=misc")).count();
    assert!(
        (1..=requests.len() / 4).contains(&writes),
        "{writes} writes for {} requests: requests that arrive during a write share the next one",
        requests.len()
    );
}
