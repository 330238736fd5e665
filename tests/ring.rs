//! The shared-memory ring between the real daemon and real client processes: every operation,
//! frames larger than the ring, processes counting together, fork, a daemon restart, a daemon
//! that offers no ring, a client that writes nonsense into the shared memory (the daemon
//! closes that connection and serves everyone else), replies read in place, and a connection
//! that follows its client to the lane on its CPU.

mod common;

use std::io::{IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use common::{Daemon, HINTS_BENCH, closed_by_daemon, db, hello, receive, send, stderr, stdout};
use hints_client::{Client, Error};
use hints_proto::ring::shm::{SharedRings, ShmRegion};
use hints_proto::ring::{Consumer, Ordering, Producer, Region};
use hints_proto::{ErrorCode, Request, RequestEnvelope, RequestView, Response, ResponseEnvelope, ResponseView};

fn ring_client(daemon: &Daemon) -> Client {
    Client::new(daemon.client_config().with_ring(true))
}

/// A daemon started with `config` as its configuration file and `HINTSD_LOG=log_filter`.
fn daemon_with_config(config: &str, log_filter: &str) -> Daemon {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config).unwrap();
    let (_, path) = file.keep().unwrap();
    Daemon::start_logging(&["--config", path.to_str().unwrap()], log_filter)
}

/// A daemon whose rings hold `ring_bytes` each way.
fn daemon_with_ring_bytes(ring_bytes: usize) -> Daemon {
    daemon_with_config(&format!("ring_bytes = {ring_bytes}\n"), "info")
}

#[test]
fn every_operation_goes_through_the_ring() {
    let daemon = Daemon::start(&[]);
    let mut client = ring_client(&daemon);
    let misc = db("misc");
    client.ping().unwrap();
    assert!(client.is_on_ring(), "the daemon offers rings by default");
    let stamp = client.put(&misc, b"k", b"v").unwrap();
    let record = client.get(&misc, b"k").unwrap().unwrap();
    assert_eq!((record.value.as_slice(), record.stamp), (&b"v"[..], stamp));
    assert!(client.delete(&misc, b"k").unwrap());
    assert_eq!(client.counter(&misc, b"n", 5, None, None).unwrap(), 5);
    let rate = client.ratelimit("2 / 1h / strict / per_rcpt / 192.0.2.1", None).unwrap();
    assert!(!rate.over);
    assert!(client.serialize_take(&misc, b"slot", 1).unwrap().held);
    assert_eq!(client.lock(&misc, Duration::from_secs(5)).unwrap(), Duration::from_secs(5));
    assert!(client.unlock(&misc).unwrap());
    let replies = client
        .pipeline(
            &(0..300u32)
                .map(|_| Request::Counter {
                    db: misc.clone(),
                    key: b"piped".to_vec(),
                    delta: 1,
                    expiry_secs: None,
                    at: None,
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
    assert_eq!(replies.last(), Some(&Response::Counter(300)), "a pipeline in chunks keeps its order");
    assert!(client.is_on_ring());
    assert_eq!(client.stats(Some(&misc)).unwrap()[0].records, 2, "n and piped; slots are not records");
}

#[test]
fn frames_larger_than_the_ring_cross_it_in_pieces() {
    let daemon = daemon_with_ring_bytes(4096);
    let mut client = ring_client(&daemon);
    let misc = db("misc");
    let big: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    for n in 0..8u8 {
        client.put(&misc, &[b'k', n], &big).unwrap();
    }
    assert!(client.is_on_ring());
    assert_eq!(client.get(&misc, b"k\x03").unwrap().unwrap().value, big);
    // A scan page of about 512 KiB, and a pipeline whose requests and replies both overflow.
    let page = client.scan(&misc, b"k", None, 1000).unwrap();
    assert!(page.records.len() >= 2 && page.records.iter().all(|record| record.value == big));
    let gets: Vec<Request> = (0..8u8).map(|n| Request::Get { db: misc.clone(), key: vec![b'k', n] }).collect();
    let replies = client.pipeline(&gets).unwrap();
    assert!(replies.iter().all(|reply| matches!(reply, Response::Value(Some(record)) if record.value == big)));
}

#[test]
fn replies_read_in_place_and_requests_sent_borrowed_are_the_owned_ones_on_the_ring_and_the_socket() {
    let daemon = daemon_with_ring_bytes(4096);
    let misc = db("misc");
    let big: Vec<u8> = (0..100 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut requests = vec![Request::Put { db: misc.clone(), key: b"big".to_vec(), value: big.clone() }];
    for key in [&b"big"[..], b"absent", b"big"] {
        requests.push(Request::Get { db: misc.clone(), key: key.to_vec() });
    }
    requests.push(Request::Ratelimit { condition: "lots / 1h".into(), at: None });
    // The second time round, sent as a worker sends its own bytes: borrowed, not copied.
    let views: Vec<RequestView<'_>> = requests
        .iter()
        .map(|request| match request {
            Request::Get { db, key } => RequestView::Get { db: db.as_str(), key },
            Request::Put { db, key, value } => RequestView::Put { db: db.as_str(), key, value },
            other => RequestView::Other(other.clone()),
        })
        .collect();
    for ring in [true, false] {
        let mut client = Client::new(daemon.client_config().with_ring(ring));
        let owned = client.pipeline(&requests).unwrap();
        let mut in_place = Vec::new();
        client
            .pipeline_each(&views, |reply| {
                if let ResponseView::Value(Some(record)) = &reply {
                    assert_eq!(record.value, &big[..], "a value larger than the ring, read whole in place");
                }
                in_place.push(reply.into_owned());
            })
            .unwrap();
        assert_eq!(client.is_on_ring(), ring);
        assert!(
            matches!(in_place[2], Response::Value(None)) && matches!(in_place[4], Response::Error(_)),
            "{:?}",
            in_place.iter().map(Response::kind).collect::<Vec<_>>()
        );
        // The same replies, but for the stamps of the second put.
        assert_eq!((&owned[2], &owned[4]), (&in_place[2], &in_place[4]));
        let values = |replies: &[Response]| -> Vec<Option<Vec<u8>>> {
            replies
                .iter()
                .filter_map(|reply| match reply {
                    Response::Value(record) => Some(record.as_ref().map(|record| record.value.clone())),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(values(&owned), values(&in_place));
    }
}

#[test]
fn a_daemon_that_offers_no_ring_keeps_the_client_on_its_socket() {
    let daemon = daemon_with_ring_bytes(0);
    let mut client = ring_client(&daemon);
    client.put(&db("misc"), b"k", b"v").unwrap();
    assert!(!client.is_on_ring());
    assert_eq!(client.get(&db("misc"), b"k").unwrap().unwrap().value, b"v");
    assert_eq!(client.connection_id(), Some(1), "the declined ring costs no reconnection");
}

#[test]
fn ring_clients_in_four_processes_lose_no_increment() {
    let daemon = Daemon::start(&[]);
    let args = ["cas-increment", "--db", "misc", "--key", "counter", "--count", "5000"];
    daemon.run_workers(4, &args, &[("HINTSD_RING", "1")]);
    let record = daemon.client().get(&db("misc"), b"counter").unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&record.value).unwrap(), "20000");
}

#[test]
fn a_forked_child_makes_its_own_ring() {
    let daemon = Daemon::start(&[]);
    let output = Command::new(HINTS_BENCH)
        .args(["fork-check", "--socket"])
        .arg(&daemon.socket)
        .env("HINTSD_RING", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    assert_eq!(daemon.client().stats(Some(&db("forkcheck"))).unwrap()[0].records, 4000);
}

#[test]
fn a_ring_client_sees_the_daemon_go_and_reaches_the_new_one() {
    let mut daemon = Daemon::start(&[]);
    let mut client = ring_client(&daemon);
    client.put(&db("misc"), b"before", b"1").unwrap();
    assert!(daemon.stop().success());
    assert!(matches!(client.get(&db("misc"), b"before"), Err(Error::Unavailable { .. })));
    daemon.launch();
    client.put(&db("misc"), b"after", b"2").unwrap();
    assert!(client.is_on_ring());
    assert_eq!(client.get(&db("misc"), b"after").unwrap().unwrap().value, b"2");

    // A kept ring connection whose daemon was killed: an idempotent call is resent.
    daemon.kill();
    daemon.launch();
    assert_eq!(client.get(&db("misc"), b"before").unwrap().unwrap().value, b"1", "the snapshot kept it");
}

/// A raw connection moved to a ring by hand, as a hostile client would: the reply's frame
/// carries the memfd.
struct RawRing {
    stream: UnixStream,
    requests: Producer<ShmRegion>,
    replies: Consumer<ShmRegion>,
    memfd: OwnedFd,
}

impl RawRing {
    fn open(daemon: &Daemon) -> RawRing {
        let mut stream = daemon.raw();
        hello(&mut stream);
        send(&mut stream, &RequestEnvelope { id: 1, request: Request::OpenRing });
        let mut reply = [0u8; 64];
        let mut control = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut reply)];
        let received = nix::sys::socket::recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for message in received.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(raw) = message {
                // SAFETY: descriptors the kernel just gave us.
                fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        let bytes = received.bytes;
        let (body, _) = hints_proto::frame::split_frame(&reply[..bytes]).unwrap().unwrap();
        let envelope: ResponseEnvelope = hints_proto::frame::decode_body(body).unwrap();
        assert_eq!(envelope.response, Response::RingOpened { ring_bytes: 65_536 });
        let [memfd] = <[OwnedFd; 1]>::try_from(fds).unwrap();
        let (requests, replies) = SharedRings::open(&memfd).unwrap().into_client_ends();
        RawRing { stream, requests, replies, memfd }
    }

    /// A doorbell byte on the socket.
    fn ring_daemon(&mut self) {
        self.stream.write_all(&[1]).unwrap();
    }
}

/// The next reply frame in a reply ring, waiting for it (a bound for a stuck daemon only).
fn next_reply(replies: &mut Consumer<ShmRegion>, what: &str) -> Response {
    let mut bytes = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut chunk = [0u8; 1024];
        let n = replies.read(&mut chunk).unwrap();
        bytes.extend_from_slice(&chunk[..n]);
        if let Some((body, _)) = hints_proto::frame::split_frame(&bytes).unwrap() {
            return hints_proto::frame::decode_body::<ResponseEnvelope>(body).unwrap().response;
        }
        assert!(std::time::Instant::now() < deadline, "no reply to {what} came through the ring");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn nonsense_in_the_shared_memory_closes_that_connection_only() {
    let daemon = Daemon::start(&[]);
    let mut good = ring_client(&daemon);
    good.put(&db("misc"), b"kept", b"1").unwrap();

    // A request ring whose writer claims more than the ring holds.
    let mut liar = RawRing::open(&daemon);
    liar.requests.region().tail().store(1 << 40, Ordering::Release);
    liar.ring_daemon();
    assert!(closed_by_daemon(&mut liar.stream), "a corrupt ring ends its connection");

    // Bytes that are not a frame: an error reply through the ring, then the close.
    let mut garbler = RawRing::open(&daemon);
    assert_eq!(garbler.requests.write(&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3]).unwrap(), 7);
    garbler.ring_daemon();
    assert!(closed_by_daemon(&mut garbler.stream), "an oversized frame ends its connection");
    let reply = next_reply(&mut garbler.replies, "an oversized frame");
    assert!(matches!(reply, Response::Error(ref e) if e.code == ErrorCode::FRAME_TOO_LARGE), "{reply:?}");

    // A flood of doorbells with nothing in the ring only wakes the daemon to look; the next
    // real request is answered.
    let mut ringer = RawRing::open(&daemon);
    ringer.stream.write_all(&vec![0xa5; 256 * 1024]).unwrap();
    let mut frame = Vec::new();
    hints_proto::frame::encode_frame(&RequestEnvelope { id: 2, request: Request::Ping }, &mut frame).unwrap();
    assert_eq!(ringer.requests.write(&frame).unwrap(), frame.len());
    ringer.ring_daemon();
    assert_eq!(next_reply(&mut ringer.replies, "a ping after a doorbell flood"), Response::Pong);

    // Everyone else goes on, on the ring and on the socket.
    assert_eq!(good.get(&db("misc"), b"kept").unwrap().unwrap().value, b"1");
    assert!(good.is_on_ring());
    assert_eq!(
        Client::new(daemon.client_config().with_ring(false)).get(&db("misc"), b"kept").unwrap().unwrap().value,
        b"1"
    );
}

#[test]
fn open_ring_among_other_requests_is_refused_and_the_socket_goes_on() {
    let daemon = Daemon::start(&[]);
    let mut stream = daemon.raw();
    hello(&mut stream);
    let mut frames = Vec::new();
    for (id, request) in [(1, Request::Ping), (2, Request::OpenRing), (3, Request::Ping)] {
        hints_proto::frame::encode_frame(&RequestEnvelope { id, request }, &mut frames).unwrap();
    }
    stream.write_all(&frames).unwrap();
    let replies: Vec<ResponseEnvelope> = (0..3).map(|_| receive(&mut stream)).collect();
    assert_eq!(replies[0].response, Response::Pong);
    assert!(matches!(&replies[1].response, Response::Error(e) if e.code == ErrorCode::BAD_ARGUMENT), "{replies:?}");
    assert_eq!(replies[2].response, Response::Pong);
}

#[test]
fn a_client_that_keeps_the_ring_file_after_it_leaves_keeps_none_of_the_daemons_memory() {
    let daemon = Daemon::start(&[]);
    let value = vec![0x5a; 60 * 1024];
    ring_client(&daemon).put(&db("misc"), b"big", &value).unwrap();
    let mut raw = RawRing::open(&daemon);
    let mut frame = Vec::new();
    let get = Request::Get { db: db("misc"), key: b"big".to_vec() };
    hints_proto::frame::encode_frame(&RequestEnvelope { id: 2, request: get }, &mut frame).unwrap();
    assert_eq!(raw.requests.write(&frame).unwrap(), frame.len());
    raw.ring_daemon();
    assert!(matches!(next_reply(&mut raw.replies, "a get"), Response::Value(Some(record)) if record.value == value));
    let blocks = |fd: &OwnedFd| {
        // SAFETY: fstat on our descriptor into a zeroed struct.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) }, 0);
        stat.st_blocks
    };
    assert!(blocks(&raw.memfd) > 0, "the daemon wrote the reply into the file's pages");
    // The client leaves but keeps the file (and its mapping, in `raw.replies`).
    let RawRing { stream, memfd, replies, .. } = raw;
    drop(stream);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while blocks(&memfd) > 0 {
        assert!(std::time::Instant::now() < deadline, "the daemon kept the closed ring's pages");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(replies);

    // A client the daemon closes on (bad input) still reads the error written last; if it then
    // keeps its socket and the file, the pages go back after the daemon's linger.
    let mut refused = RawRing::open(&daemon);
    assert_eq!(refused.requests.write(&[0xff, 0xff, 0xff, 0x7f]).unwrap(), 4);
    refused.ring_daemon();
    assert!(closed_by_daemon(&mut refused.stream), "the daemon ends the connection");
    let reply = next_reply(&mut refused.replies, "an oversized frame");
    assert!(matches!(reply, Response::Error(ref e) if e.code == ErrorCode::FRAME_TOO_LARGE), "{reply:?}");
    let deadline = std::time::Instant::now() + hintsd::ring_end::RING_LINGER_MAX + Duration::from_secs(10);
    while blocks(&refused.memfd) > 0 {
        assert!(std::time::Instant::now() < deadline, "a client that stays cannot keep the pages");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rings_the_daemon_closed_count_as_connections_while_they_linger() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "connections_max = 3\n").unwrap();
    let daemon = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    // Three clients the daemon closes on (bad input) while they keep their sockets open, and
    // leave their error replies unread: their rings linger.
    let lingering: Vec<RawRing> = (0..3)
        .map(|_| {
            let mut raw = RawRing::open(&daemon);
            assert_eq!(raw.requests.write(&[0xff, 0xff, 0xff, 0x7f]).unwrap(), 4);
            raw.ring_daemon();
            assert!(closed_by_daemon(&mut raw.stream), "the daemon ends the connection");
            raw
        })
        .collect();
    let mut newcomer = Client::new(daemon.client_config().with_timeout(Duration::from_secs(2)));
    match newcomer.ping() {
        Err(Error::Refused(reply)) => assert_eq!(reply.code, ErrorCode::TOO_MANY_CONNECTIONS),
        other => panic!("three lingering rings hold the three connections, yet: {other:?}"),
    }
    // Once their clients leave, the places come back at once.
    drop(lingering);
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while newcomer.ping().is_err() {
        assert!(std::time::Instant::now() < deadline, "the lingering rings kept their places");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The CPUs thread `name` of process `pid` may run on, as the kernel lists them ("0-1", "1").
fn thread_cpus(pid: u32, name: &str) -> String {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let task = tasks
        .map(|task| task.unwrap().path())
        .find(|task| std::fs::read_to_string(task.join("comm")).is_ok_and(|comm| comm.trim() == name))
        .unwrap_or_else(|| panic!("hintsd has no thread named {name}"));
    let status = std::fs::read_to_string(task.join("status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("Cpus_allowed_list:")).unwrap();
    line.split_whitespace().nth(1).unwrap().to_owned()
}

/// A daemon with two lanes that never spin (lanes spin only while there are cores to spare,
/// and then connections stay where they were put), and `extra` configuration.
fn two_lane_daemon(extra: &str) -> Daemon {
    daemon_with_config(&format!("connection_threads = 2\nspin_micros = 0\n{extra}"), "info,hintsd::connection=debug")
}

/// The CPUs this test may run on, in order; the daemons it starts inherit them. At least two,
/// to put two lanes on different ones.
fn two_allowed_cpus() -> [usize; 2] {
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    let cpus: Vec<usize> = (0..nix::sched::CpuSet::count()).filter(|&cpu| allowed.is_set(cpu).unwrap()).collect();
    assert!(cpus.len() >= 2, "this test needs two CPUs to put two lanes on different ones; it may use {cpus:?}");
    [cpus[0], cpus[1]]
}

#[test]
fn lanes_are_pinned_to_a_cpu_each_unless_told_not_to() {
    let cpus = two_allowed_cpus();
    let pinned = two_lane_daemon("");
    assert_eq!(thread_cpus(pinned.pid(), "hintsd-lane-0"), cpus[0].to_string());
    assert_eq!(thread_cpus(pinned.pid(), "hintsd-lane-1"), cpus[1].to_string());
    let free = two_lane_daemon("pin_lanes = false\n");
    let everywhere = thread_cpus(free.pid(), "hintsd");
    assert_eq!(thread_cpus(free.pid(), "hintsd-lane-0"), everywhere);
    assert_eq!(thread_cpus(free.pid(), "hintsd-lane-1"), everywhere);
}

impl RawRing {
    /// Says the client runs on `cpu` (the word a real client keeps up to date), sends a ping
    /// and reads its answer.
    fn ping_from(&mut self, cpu_word: u32, id: u64) {
        SharedRings::open(&self.memfd).unwrap().words().client_cpu().store(cpu_word, Ordering::Relaxed);
        let mut frame = Vec::new();
        hints_proto::frame::encode_frame(&RequestEnvelope { id, request: Request::Ping }, &mut frame).unwrap();
        assert_eq!(self.requests.write(&frame).unwrap(), frame.len());
        self.ring_daemon();
        assert_eq!(next_reply(&mut self.replies, "a ping"), Response::Pong, "ping {id}");
    }
}

#[test]
fn a_socket_connection_follows_its_client_process_to_the_lane_on_its_cpu() {
    // Lane i runs on cpus[i] (lanes_are_pinned_to_a_cpu_each_unless_told_not_to).
    let cpus = two_allowed_cpus();
    let daemon = two_lane_daemon("");
    // Two socket clients, both kept on lane 1's CPU: new connections go to the lane with
    // fewer, so one of the two is put on lane 0, and the daemon, reading where its client runs
    // from /proc, moves it to lane 1. The one put there stays.
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new("taskset")
                .args(["-c", &cpus[1].to_string(), HINTS_BENCH, "worker", "--contender", "hintsd", "--target"])
                .arg(daemon.socket())
                .args(["--workload", "ratelimit", "--seconds", "0.5"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run taskset with hints-bench")
        })
        .collect();
    for worker in workers {
        let output = worker.wait_with_output().expect("wait for hints-bench");
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stdout(&output).contains("\"errors\":0"), "{}", stdout(&output));
    }
    let log = daemon.log_text();
    let moved = format!("on=\"socket\" from=0 to=Some(1) cpu=Some({})", cpus[1]);
    assert_eq!(log.matches("follows its client").count(), 1, "{log}");
    assert!(log.contains(&moved), "{moved} in {log}");
}

#[test]
fn a_lone_socket_client_is_followed_to_its_cpu_even_with_a_core_to_spare() {
    // One client and two lanes on two cores: a lane could spin for it, but lanes spin only for
    // ring connections, so the socket connection is free to follow its client (a spinning
    // lane's connection never moves).
    let cpus = two_allowed_cpus();
    let daemon = daemon_with_config("connection_threads = 2\n", "info,hintsd::connection=debug");
    let output = Command::new("taskset")
        .args(["-c", &cpus[1].to_string(), HINTS_BENCH, "worker", "--contender", "hintsd", "--target"])
        .arg(daemon.socket())
        .args(["--workload", "ratelimit", "--seconds", "0.5"])
        .output()
        .expect("run taskset with hints-bench");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("\"errors\":0"), "{}", stdout(&output));
    let log = daemon.log_text();
    // The first connection goes to lane 0; its client runs on lane 1's CPU.
    let moved = format!("on=\"socket\" from=0 to=Some(1) cpu=Some({})", cpus[1]);
    assert!(log.contains(&moved), "{moved} in {log}");
}

#[test]
fn a_ring_connection_follows_its_client_to_the_lane_on_its_cpu_and_ignores_nonsense() {
    // Lane i runs on cpus[i] (lanes_are_pinned_to_a_cpu_each_unless_told_not_to).
    let cpus = two_allowed_cpus();
    let daemon = two_lane_daemon("");
    let follows = || daemon.log_text().matches("connection follows its client").count();

    // The two go to different lanes: lane 0 and lane 1, or the other way round while the
    // daemon still counts the connection `Daemon::start` made on lane 0.
    let mut first = RawRing::open(&daemon);
    let mut second = RawRing::open(&daemon);
    first.ping_from(0, 2);
    second.ping_from(0, 2);
    assert_eq!(follows(), 0, "a client that says nothing stays where it was put");

    // The first client says it runs on lane 1's CPU, then, if it was there already, on lane
    // 0's: a few requests later its connection is served there, answering as before.
    let word = |lane: usize| u32::try_from(cpus[lane] + 1).unwrap();
    let mut id = 3;
    let mut to = 0;
    for lane in [1, 0] {
        for _ in 0..20 {
            first.ping_from(word(lane), id);
            id += 1;
        }
        if follows() == 1 {
            to = lane;
            break;
        }
    }
    assert_eq!(follows(), 1, "{}", daemon.log_text());
    let moved = format!("from={} to=Some({to}) cpu=Some({})", 1 - to, cpus[to]);
    assert!(daemon.log_text().contains(&moved), "{moved} in {}", daemon.log_text());

    // A CPU no lane runs on, or one that changes on every request, moves nothing.
    for round in 0..100 {
        let claim = match round % 3 {
            0 => u32::MAX,
            1 => word(0),
            _ => word(1),
        };
        first.ping_from(claim, id + round);
    }
    assert_eq!(follows(), 1, "{}", daemon.log_text());

    // A real client says by itself where it runs: on the CPU of the lane that serves both
    // raw ones, it is put on the other (empty) lane and follows its client.
    let mut here = nix::sched::CpuSet::new();
    here.set(cpus[to]).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &here).unwrap();
    let mut client = ring_client(&daemon);
    for round in 0..20u32 {
        client.put(&db("misc"), b"round", round.to_string().as_bytes()).unwrap();
    }
    assert_eq!(follows(), 2, "{}", daemon.log_text());
    assert!(daemon.log_text().ends_with(&format!("{moved}\n")), "{moved} last in {}", daemon.log_text());

    // Every connection is still served, and nothing was lost on the way.
    first.ping_from(2, 200);
    second.ping_from(0, 3);
    assert_eq!(client.get(&db("misc"), b"round").unwrap().unwrap().value, b"19");
}

#[test]
fn open_ring_after_requests_answered_in_place_is_refused_and_their_replies_kept() {
    let daemon = Daemon::start(&[]);
    let mut stream = daemon.raw();
    hello(&mut stream);
    let mut frames = Vec::new();
    let put = Request::Put { db: db("misc"), key: b"k".to_vec(), value: b"v".to_vec() };
    for (id, request) in [(1, Request::Ping), (2, put), (3, Request::OpenRing)] {
        hints_proto::frame::encode_frame(&RequestEnvelope { id, request }, &mut frames).unwrap();
    }
    stream.write_all(&frames).unwrap();
    let first: ResponseEnvelope = receive(&mut stream);
    assert_eq!((first.id, &first.response), (1, &Response::Pong));
    let second: ResponseEnvelope = receive(&mut stream);
    assert!(second.id == 2 && matches!(second.response, Response::Stored(_)), "{second:?}");
    let third: ResponseEnvelope = receive(&mut stream);
    assert!(
        third.id == 3 && matches!(&third.response, Response::Error(e) if e.code == ErrorCode::BAD_ARGUMENT),
        "{third:?}"
    );
}
