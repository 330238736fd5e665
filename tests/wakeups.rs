//! Wake-ups: clients that pause at random moments between and inside pipelines, on the socket
//! and on the ring, with and without the lanes spinning; a lost wake-up in the daemon shows as
//! a call that times out (the clients' timeout is 3 s). And a request queued behind one that
//! carried a descriptor, which ends the daemon's `recv` early.

mod common;

use std::time::Duration;

use common::{Daemon, db};
use hints_client::Client;
use hints_proto::RequestView;

fn daemon_with_config(config: &str) -> Daemon {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config).unwrap();
    let (_, path) = file.keep().unwrap();
    Daemon::start(&["--config", path.to_str().unwrap()])
}

fn hammer(daemon: &Daemon, ring: bool, threads: u64, rounds: u32) {
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let config = daemon.client_config().with_ring(ring).with_timeout(Duration::from_secs(3));
            std::thread::spawn(move || {
                let mut client = Client::new(config);
                let misc = db("misc");
                let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ (t + 1);
                let mut rand = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                for round in 0..rounds {
                    let key = (rand() % 64).to_be_bytes();
                    let result = match rand() % 4 {
                        0 => client.put(&misc, &key, &key).map(drop),
                        1 => client.get(&misc, &key).map(drop),
                        _ => {
                            let keys: Vec<[u8; 8]> = (0..1 + rand() % 24).map(|k| k.to_be_bytes()).collect();
                            let requests: Vec<RequestView<'_>> =
                                keys.iter().map(|k| RequestView::Get { db: misc.as_str(), key: k }).collect();
                            client.pipeline_each(&requests, |_| {})
                        }
                    };
                    if let Err(err) = result {
                        panic!("thread {t} round {round} (ring {ring}, on ring {}): {err}", client.is_on_ring());
                    }
                    match rand() % 6 {
                        0 => std::thread::sleep(Duration::from_micros(rand() % 300)),
                        1 => std::thread::yield_now(),
                        _ => {}
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}

#[test]
fn no_lost_wake_ups_under_random_pauses() {
    // Lanes spin only for ring connections, so the default (spinning) configuration is run
    // for the ring alone: for the socket it is `spin_micros = 0` again.
    let cases: [(&str, &[bool]); 3] = [
        ("spin_micros = 0\n", &[false, true]),
        ("", &[true]),
        ("connection_threads = 1\nspin_micros = 0\n", &[false, true]),
    ];
    for (config, transports) in cases {
        let daemon = daemon_with_config(config);
        for &ring in transports {
            hammer(&daemon, ring, 8, 4000);
        }
    }
}

/// A request sent with a descriptor attached (`SCM_RIGHTS`, which no hintsd client sends) ends
/// the daemon's `recv` even when the next request is already queued behind it; the daemon must
/// read on rather than take that short read for a drained socket.
#[test]
fn a_request_behind_one_that_carried_a_descriptor_is_answered() {
    use std::os::fd::AsRawFd;

    use hints_proto::frame::encode_frame;
    use hints_proto::{Request, RequestEnvelope, Response, ResponseEnvelope};
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

    let daemon = daemon_with_config("spin_micros = 0\n");
    let mut stream = daemon.raw();
    stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    common::hello(&mut stream);
    // Make the daemon sleep first (lanes spin only for ring connections, but the sleep is what
    // this test needs, so it does not rest on that).
    std::thread::sleep(Duration::from_millis(50));
    let mut first = Vec::new();
    encode_frame(&RequestEnvelope { id: 1, request: Request::Ping }, &mut first).unwrap();
    let mut second = Vec::new();
    encode_frame(&RequestEnvelope { id: 2, request: Request::Ping }, &mut second).unwrap();
    let passed = std::fs::File::open("/dev/null").unwrap();
    let fds = [passed.as_raw_fd()];
    let iov = [std::io::IoSlice::new(&first)];
    sendmsg::<()>(stream.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None).unwrap();
    std::io::Write::write_all(&mut stream, &second).unwrap();
    for id in [1, 2] {
        let reply: ResponseEnvelope = common::receive(&mut stream);
        assert_eq!((reply.id, reply.response), (id, Response::Pong));
    }
}
