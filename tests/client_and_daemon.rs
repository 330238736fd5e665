//! The real daemon driven by the real client, across processes: every operation, concurrent
//! compare-and-set from eight processes, fork safety, reconnecting after a restart, a clean
//! stop, a panicking database, and the peer-credential check.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use common::{Daemon, HINTS_BENCH, db, exists, stderr, stdout, wait_with_deadline};
use hints_client::{CasOutcome, Client, Error};
use hints_proto::{ErrorCode, Request, RequestView, Response, ResponseView};

#[test]
fn every_operation_works_through_the_client() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    let misc = db("misc");
    client.ping().unwrap();

    let first = client.put(&misc, b"host-serialize-mx1", b"1").unwrap();
    let record = client.get(&misc, b"host-serialize-mx1").unwrap().expect("stored");
    assert_eq!((record.value.as_slice(), record.stamp), (&b"1"[..], first));
    let second = client.put(&misc, b"host-serialize-mx1", b"2").unwrap();
    assert!(second > first, "stamps move forward");
    assert_eq!(client.get(&misc, b"absent").unwrap(), None);

    assert!(client.delete(&misc, b"host-serialize-mx1").unwrap());
    assert!(!client.delete(&misc, b"host-serialize-mx1").unwrap());

    for n in 0..25u32 {
        client.put(&misc, format!("tpt-serialize-{n:02}").as_bytes(), b"x").unwrap();
    }
    client.put(&misc, b"other", b"x").unwrap();
    let mut keys = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = client.scan(&misc, b"tpt-serialize-", after.as_deref(), 10).unwrap();
        keys.extend(page.records.iter().map(|r| String::from_utf8(r.key.clone()).unwrap()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25u32).map(|n| format!("tpt-serialize-{n:02}")).collect();
    assert_eq!(keys, expected);

    match client.compare_and_set(&misc, b"cas", None, Some(b"a")).unwrap() {
        CasOutcome::Swapped(Some(_)) => {}
        other => panic!("{other:?}"),
    }
    let current = match client.compare_and_set(&misc, b"cas", None, Some(b"b")).unwrap() {
        CasOutcome::Conflict(Some(record)) => record,
        other => panic!("{other:?}"),
    };
    assert_eq!(current.value, b"a");
    assert!(matches!(
        client.compare_and_set(&misc, b"cas", Some(current.stamp), None).unwrap(),
        CasOutcome::Swapped(None)
    ));

    let stats = client.stats(Some(&misc)).unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].records, 26);
    let count = |kind: &str| stats[0].ops.iter().find(|op| op.kind == kind).map_or(0, |op| op.count);
    assert_eq!(count("put"), 28);
    assert_eq!(count("delete"), 2);
    assert_eq!(count("cas"), 3);
    assert_eq!(count("get"), 2, "gets applied in place are counted");
    let kinds: Vec<&str> = stats[0].ops.iter().map(|op| op.kind.as_str()).collect();
    assert!(kinds.windows(2).all(|pair| pair[0] < pair[1]), "stats lists kinds in name order: {kinds:?}");
    let all = client.stats(None).unwrap();
    assert!(all.iter().any(|s| s.db.as_str() == "retry"), "configured databases are running");

    // Nothing here is older than an hour, and everything is older than zero seconds.
    assert_eq!(client.tidy(&misc, Duration::from_secs(3600)).unwrap(), 0);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(client.tidy(&misc, Duration::from_secs(1)).unwrap(), 26);
    assert_eq!(client.stats(Some(&misc)).unwrap()[0].records, 0);
}

#[test]
fn eight_processes_of_compare_and_set_increments_lose_none() {
    let daemon = Daemon::start(&[]);
    let args = ["cas-increment", "--db", "misc", "--key", "counter", "--count", "10000"];
    let outputs = daemon.run_workers(8, &args, &[]);
    let conflicts: u64 = outputs.iter().map(|out| out.trim().parse::<u64>().unwrap()).sum();
    let record = daemon.client().get(&db("misc"), b"counter").unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&record.value).unwrap(), "80000", "after {conflicts} conflicts");
}

#[test]
fn a_forked_child_opens_its_own_connection() {
    let daemon = Daemon::start(&[]);
    let output = Command::new(HINTS_BENCH).args(["fork-check", "--socket"]).arg(&daemon.socket).output().unwrap();
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    // Parent and child each wrote their own 2000 records through one Client value.
    assert_eq!(daemon.client().stats(Some(&db("forkcheck"))).unwrap()[0].records, 4000);
}

#[test]
fn a_parent_closing_its_client_frees_its_slot_though_a_child_holds_the_socket() {
    let daemon = Daemon::start(&[]);
    let output = Command::new(HINTS_BENCH).args(["fork-close-check", "--socket"]).arg(&daemon.socket).output().unwrap();
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
}

#[test]
fn the_client_reconnects_by_itself_after_a_daemon_restart() {
    let mut daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    client.put(&db("misc"), b"before", b"1").unwrap();
    assert!(daemon.stop().success());
    assert!(matches!(client.get(&db("misc"), b"before"), Err(Error::Unavailable { .. })));
    daemon.launch();
    // The same client value, without being told, reaches the new daemon.
    client.put(&db("misc"), b"after", b"2").unwrap();
    assert_eq!(client.get(&db("misc"), b"after").unwrap().unwrap().value, b"2");
}

#[test]
fn sigterm_stops_the_daemon_cleanly_and_removes_the_socket() {
    let mut daemon = Daemon::start(&[]);
    let mut idle_on_ring = Client::new(daemon.client_config().with_ring(true));
    let mut idle_on_socket = Client::new(daemon.client_config().with_ring(false));
    for client in [&mut idle_on_ring, &mut idle_on_socket] {
        // Enough calls for a connection to have followed its client to another lane.
        for _ in 0..200 {
            client.ping().unwrap();
        }
    }
    assert!(idle_on_ring.is_on_ring() && !idle_on_socket.is_on_ring());
    let _before_its_hello = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    assert!(exists(&daemon.socket));
    let status = daemon.stop();
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log_text());
    assert!(!exists(&daemon.socket), "socket left behind");
    let log = daemon.log_text();
    assert!(log.contains("hintsd listening") && log.contains("hintsd stopped"), "{log}");
    // The idle connections, waiting for their next request or their hello, were told of the
    // stop and ended at once, rather than being cut off after the drain wait.
    assert!(!log.contains("still busy after the drain wait"), "{log}");
}

#[test]
fn the_socket_directory_and_socket_have_their_modes() {
    let daemon = Daemon::start(&[]);
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(daemon.socket.parent().unwrap()), 0o750);
    assert_eq!(mode(&daemon.socket), 0o660);
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_to_start() {
    let daemon = Daemon::start(&[]);
    let output = Command::new(common::hintsd_bin()).arg("--socket").arg(&daemon.socket).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("already listening"), "{}", stderr(&output));
    daemon.client().ping().unwrap();
}

#[test]
fn a_panic_in_one_database_leaves_the_others_serving() {
    let daemon = Daemon::start(&["--fault-panic-key", "boom"]);
    let mut client = daemon.client();
    client.put(&db("retry"), b"R:example.net", b"kept").unwrap();
    client.put(&db("misc"), b"lost-with-the-restart", b"x").unwrap();
    match client.put(&db("misc"), b"boom", b"x") {
        Err(Error::Daemon(reply)) => assert_eq!(reply.code, ErrorCode::DATABASE_FAILED),
        other => panic!("expected DATABASE_FAILED, got {other:?}"),
    }
    // The failed database was restarted and serves again; the other kept its data.
    client.put(&db("misc"), b"after", b"y").unwrap();
    assert_eq!(client.get(&db("misc"), b"after").unwrap().unwrap().value, b"y");
    assert_eq!(client.get(&db("retry"), b"R:example.net").unwrap().unwrap().value, b"kept");
    assert!(daemon.log_text().contains("panicked"), "the panic is logged");
}

/// A stopping daemon serving a client that never pauses still stops cleanly, and every write
/// the client was told was stored is in the final snapshot.
#[test]
fn a_client_that_never_pauses_does_not_keep_the_daemon_from_stopping() {
    use hints_proto::frame::{decode_body, read_frame, write_frame};
    use hints_proto::{Request, RequestEnvelope, Response, ResponseEnvelope};

    let mut daemon = Daemon::start(&[]);
    let mut stream = daemon.raw();
    common::hello(&mut stream);
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        for id in 1u64.. {
            let request = Request::Put { db: db("misc"), key: format!("k{id}").into_bytes(), value: b"v".to_vec() };
            if write_frame(&mut writer, &RequestEnvelope { id, request }, &mut buffer).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.pid() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut acknowledged = Vec::new();
    let mut body = Vec::new();
    while read_frame(&mut stream, &mut body).is_ok() {
        let reply: ResponseEnvelope = decode_body(&body).unwrap();
        if let Response::Stored(_) = reply.response {
            acknowledged.push(reply.id);
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let status = daemon.stop();
    assert!(status.success(), "{status}");
    sender.join().unwrap();
    assert!(!acknowledged.is_empty());
    daemon.launch();
    let mut client = daemon.client();
    let lost = acknowledged.iter().filter(|id| client.get(&db("misc"), format!("k{id}").as_bytes()).unwrap().is_none());
    assert_eq!(lost.count(), 0, "writes acknowledged before the stop were lost");
}

/// Requests already queued for a database's actor when a request applied directly panics are
/// refused, not applied to the state the restart then throws away: a write acknowledged after
/// the panic is never lost. (Writes before it go back to the last snapshot, as documented.)
#[test]
fn no_write_acknowledged_after_a_panic_is_lost() {
    use hints_proto::{Request, RequestEnvelope, Response, ResponseEnvelope};
    use std::os::unix::net::UnixStream;

    let daemon = Daemon::start(&["--fault-panic-key", "boom"]);
    let put = |key: String| Request::Put { db: db("misc"), key: key.into_bytes(), value: b"v".to_vec() };
    for round in 0..10 {
        let socket = daemon.socket.clone();
        let writer = std::thread::spawn(move || {
            let mut stream = UnixStream::connect(&socket).unwrap();
            common::hello(&mut stream);
            // Stats first, so the whole batch goes through the actor's mailbox.
            let mut batch = vec![RequestEnvelope { id: 0, request: Request::Stats { db: Some(db("misc")) } }];
            batch.extend((1..=120u64).map(|id| RequestEnvelope { id, request: put(format!("r{round}-{id}")) }));
            for envelope in &batch {
                common::send(&mut stream, envelope);
            }
            let mut acknowledged = Vec::new();
            for _ in 0..batch.len() {
                let reply: ResponseEnvelope = common::receive(&mut stream);
                if let Response::Stored(stamp) = reply.response {
                    acknowledged.push((format!("r{round}-{}", reply.id), stamp));
                }
            }
            acknowledged
        });
        std::thread::sleep(Duration::from_micros(300));
        // One batch, applied under one taking of the lock: nothing lands between the two. So
        // both frames go in one write; sent apart, the daemon may read the marker alone, and
        // the writer's puts then land between the two, before the panic, stamped after the
        // marker, and are rightly lost with the state the panic throws away.
        let mut stream = daemon.raw();
        common::hello(&mut stream);
        let mut both = Vec::new();
        let boom = Request::Get { db: db("misc"), key: b"boom".to_vec() };
        for envelope in
            [RequestEnvelope { id: 1, request: put("marker".into()) }, RequestEnvelope { id: 2, request: boom }]
        {
            hints_proto::frame::encode_frame(&envelope, &mut both).unwrap();
        }
        std::io::Write::write_all(&mut stream, &both).unwrap();
        let Response::Stored(panic_time) = common::receive::<ResponseEnvelope>(&mut stream).response else {
            panic!("the marker was not stored");
        };
        let reply: ResponseEnvelope = common::receive(&mut stream);
        assert!(matches!(reply.response, Response::Error(ref e) if e.code == ErrorCode::DATABASE_FAILED), "{reply:?}");
        let acknowledged = writer.join().unwrap();
        let mut client = daemon.client();
        let lost: Vec<_> = acknowledged
            .iter()
            .filter(|(key, stamp)| *stamp > panic_time && client.get(&db("misc"), key.as_bytes()).unwrap().is_none())
            .collect();
        assert!(lost.is_empty(), "round {round}: {} writes acknowledged after the panic lost", lost.len());
    }
}

#[test]
fn a_peer_not_on_the_allow_list_is_refused() {
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("a nobody user");
    if !nix::unistd::geteuid().is_root() {
        // Switching to another uid takes root; CI runs as root. Say so rather than pass.
        panic!("this test must run as root to start a client as nobody");
    }
    let config_dir = tempfile::tempdir().unwrap();
    let allowing = config_dir.path().join("allow.toml");
    std::fs::write(&allowing, format!("allow_uids = [{}]\n", nobody.uid)).unwrap();
    for (extra, allowed) in [(vec![], false), (vec!["--config", allowing.to_str().unwrap()], true)] {
        let daemon = Daemon::start(&extra);
        // Open the filesystem so that only the credential check stands between nobody and us.
        std::fs::set_permissions(daemon.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(daemon.socket.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let output = Command::new(common::hintsctl_bin())
            .arg("--socket")
            .arg(&daemon.socket)
            .arg("ping")
            .uid(nobody.uid.as_raw())
            .gid(nobody.gid.as_raw())
            .output()
            .unwrap();
        if allowed {
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        } else {
            assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
            assert!(stderr(&output).contains("not allowed"), "{}", stderr(&output));
            assert!(daemon.log_text().contains("refusing peer"), "the refusal is logged");
        }
        daemon.client().ping().unwrap();
    }
}

#[test]
fn configuration_errors_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [("conections_max = 5\n", "conections_max"), ("connections_max = 0\n", "connections_max")] {
        let path = dir.path().join("hintsd.toml");
        std::fs::write(&path, text).unwrap();
        let mut child = Command::new(common::hintsd_bin())
            .arg("--config")
            .arg(&path)
            .arg("--socket")
            .arg(dir.path().join("s.sock"))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_with_deadline(&mut child);
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(2), "{err}");
        assert!(err.contains(key), "{err}");
    }
    let output = Command::new(common::hintsd_bin()).arg("--no-such-flag").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_async_client_does_the_same_operations() {
    let daemon = Daemon::start(&[]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = hints_client::AsyncClient::new(daemon.client_config());
        let misc = db("misc");
        client.ping().await.unwrap();
        let stamp = client.put(&misc, b"async", b"1").await.unwrap();
        let record = client.get(&misc, b"async").await.unwrap().unwrap();
        assert_eq!((record.value.as_slice(), record.stamp), (&b"1"[..], stamp));
        match client.compare_and_set(&misc, b"async", Some(stamp), Some(b"2")).await.unwrap() {
            CasOutcome::Swapped(Some(newer)) => assert!(newer > stamp),
            other => panic!("{other:?}"),
        }
        assert_eq!(client.scan(&misc, b"as", None, 10).await.unwrap().records.len(), 1);
        assert_eq!(client.stats(Some(&misc)).await.unwrap()[0].records, 1);
        assert!(client.delete(&misc, b"async").await.unwrap());
        assert_eq!(client.tidy(&misc, Duration::from_secs(60)).await.unwrap(), 0);
    });
    // The blocking client sees what the async one left.
    assert_eq!(daemon.client().get(&db("misc"), b"async").unwrap(), None);
}

#[test]
fn the_async_client_pipelines_borrowed_requests_and_hands_replies_over_in_place() {
    let daemon = Daemon::start(&[]);
    let config = daemon.client_config();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Spawned on a multi-threaded runtime: the call's future must be `Send`, as an async
    // MTA's would need it.
    let replies = runtime.block_on(async move {
        tokio::spawn(async move {
            let mut client = hints_client::AsyncClient::new(config);
            let misc = db("misc");
            let value: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let requests = [
                RequestView::Put { db: misc.as_str(), key: b"views", value: &value },
                RequestView::Get { db: misc.as_str(), key: b"views" },
                RequestView::Get { db: misc.as_str(), key: b"absent" },
                RequestView::Other(Request::Ratelimit { condition: "lots / 1h".into(), at: None }),
            ];
            let mut replies = Vec::new();
            client
                .pipeline_each(&requests, |reply| {
                    if let ResponseView::Value(Some(record)) = &reply {
                        assert_eq!(record.value, &value[..], "the value as stored, read in place");
                    }
                    replies.push(reply.into_owned());
                })
                .await
                .unwrap();
            replies
        })
        .await
        .unwrap()
    });
    assert!(
        matches!(
            &replies[..],
            [Response::Stored(_), Response::Value(Some(_)), Response::Value(None), Response::Error(_)]
        ),
        "{replies:?}"
    );
}

#[test]
fn json_logs_are_one_object_a_line_naming_the_socket() {
    let mut daemon = Daemon::start(&["--log-format", "json"]);
    let status = daemon.stop();
    assert!(status.success(), "{status}; log:\n{}", daemon.log_text());
    let log = daemon.log_text();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"))).collect();
    let listening = lines.iter().find(|line| line["fields"]["message"] == "hintsd listening").expect("start line");
    assert_eq!(listening["fields"]["socket"], daemon.socket.to_str().unwrap());
    assert!(listening["fields"]["databases"].as_str().unwrap().contains("retry"));
}

#[test]
fn a_socket_directory_another_user_owns_is_refused() {
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("a nobody user");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::os::unix::fs::chown(&run, Some(nobody.uid.as_raw()), None).unwrap();
    let output = Command::new(common::hintsd_bin())
        .arg("--socket")
        .arg(run.join("hintsd.sock"))
        .arg("--no-snapshot")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("belongs to uid"), "{}", stderr(&output));
}

#[test]
fn a_stop_signal_as_soon_as_the_daemon_answers_stops_it_cleanly() {
    // The signal handlers must be in place before the socket answers: a test (or an init
    // system) may stop the daemon right after its first answer.
    for round in 0..10 {
        let mut daemon = Daemon::start(&["--no-snapshot"]);
        let status = daemon.stop();
        assert!(status.success(), "round {round}: {status}; log:\n{}", daemon.log_text());
    }
}

/// The longest a call with a 300 ms deadline may take before it counts as hung (a bound on
/// liveness, far from any figure of speed).
const HUNG_CALL: Duration = Duration::from_secs(30);

/// Whether process `pid` is stopped (state `T` in /proc).
fn is_stopped(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
}

#[test]
fn a_call_under_a_storm_of_signals_still_ends_when_its_time_is_up() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};

    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
    use nix::unistd::Pid;

    extern "C" fn ignore(_: libc::c_int) {}
    // No SA_RESTART: every signal interrupts the client's wait with EINTR.
    let action = SigAction::new(SigHandler::Handler(ignore), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler does nothing, so it is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.unwrap();
    let daemon = Daemon::start(&["--no-snapshot"]);
    let daemon_pid = Pid::from_raw(daemon.pid() as i32);
    for ring in [false, true] {
        let config = daemon.client_config().with_ring(ring).with_timeout(Duration::from_millis(300));
        let (connected_tx, connected_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let caller = std::thread::spawn(move || {
            let mut client = hints_client::Client::new(config);
            client.ping().unwrap();
            assert_eq!(client.is_on_ring(), ring);
            // SAFETY: pthread_self has no preconditions.
            connected_tx.send(unsafe { libc::pthread_self() }).unwrap();
            go_rx.recv().unwrap();
            done_tx.send(client.get(&db("storm"), b"key")).unwrap();
        });
        let caller_thread = connected_rx.recv().unwrap();
        // The daemon stops answering: the call can only end by its deadline.
        kill(daemon_pid, Signal::SIGSTOP).unwrap();
        while !is_stopped(daemon.pid()) {
            std::thread::yield_now();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let storm = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: the caller thread is joined only after this loop has stopped,
                    // so its id stays valid.
                    unsafe { libc::pthread_kill(caller_thread, libc::SIGUSR1) };
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        };
        go_tx.send(()).unwrap();
        let result = done_rx.recv_timeout(HUNG_CALL);
        stop.store(true, Ordering::Relaxed);
        storm.join().unwrap();
        kill(daemon_pid, Signal::SIGCONT).unwrap();
        let result = result.unwrap_or_else(|_| panic!("a call (ring: {ring}) under signals never ended"));
        assert!(matches!(result, Err(Error::Unavailable { .. })), "ring: {ring}: {result:?}");
        caller.join().unwrap();
    }
}

/// Replies many times the socket's buffer (a batch of gets of the largest value) arrive whole
/// and in order, on the socket and on the ring: the daemon sends what fits at once and waits
/// for room for the rest while the client reads.
#[test]
fn replies_larger_than_the_sockets_buffer_arrive_whole() {
    let daemon = Daemon::start(&[]);
    let value: Vec<u8> = (0..hints_proto::limits::VALUE_BYTES_MAX).map(|i| (i % 251) as u8).collect();
    let get = Request::Get { db: db("misc"), key: b"big".to_vec() };
    for ring in [false, true] {
        let mut client = Client::new(daemon.client_config().with_ring(ring));
        client.put(&db("misc"), b"big", &value).unwrap();
        // 16 x 256 KiB: 4 MiB of replies to one write of requests.
        let replies = client.pipeline(&vec![get.clone(); 16]).unwrap();
        assert_eq!(replies.len(), 16, "ring {ring}");
        for reply in replies {
            match reply {
                Response::Value(Some(record)) => {
                    assert!(record.value == value, "ring {ring}: a value came back changed")
                }
                other => panic!("ring {ring}: {other:?}"),
            }
        }
    }
}

/// `get_with` hands over the record where it was read, says when there is none, and turns an
/// error reply into the call's error, on the socket and on the ring.
#[test]
fn get_with_reads_a_record_in_place_and_reports_a_miss_and_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hintsd.toml");
    std::fs::write(&config, "databases = [\"misc\"]\ndatabases_max = 1\n").unwrap();
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    for ring in [false, true] {
        let mut client = Client::new(daemon.client_config().with_ring(ring));
        let stamp = client.put(&db("misc"), b"here", b"value").unwrap();
        let found =
            client.get_with(&db("misc"), b"here", |record| record.map(|r| (r.key.to_vec(), r.value.to_vec(), r.stamp)));
        assert_eq!(found.unwrap(), Some((b"here".to_vec(), b"value".to_vec(), stamp)), "ring {ring}");
        let missed = client.get_with(&db("misc"), b"absent", |record| record.is_some());
        assert!(!missed.unwrap(), "ring {ring}");
        // A second database is past `databases_max`: the daemon answers with an error.
        let refused = client.get_with(&db("other"), b"here", |_| ());
        match refused {
            Err(Error::Daemon(reply) | Error::Refused(reply)) => {
                assert_eq!(reply.code, ErrorCode::TOO_MANY_DATABASES, "ring {ring}")
            }
            other => panic!("ring {ring}: {other:?}"),
        }
        let bad = client.get_with(&db("misc"), &[], |_| ());
        assert!(matches!(bad, Err(Error::BadRequest(_))), "ring {ring}: an empty key is refused: {bad:?}");
    }
}
