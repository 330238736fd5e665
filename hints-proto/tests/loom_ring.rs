//! The ring between two threads, model-checked: loom runs every interleaving of the writer and
//! the reader (and flags any unsynchronised access to the data bytes). The second model adds
//! the doorbells: each end sleeps when it has nothing to do, and loom fails the test if any
//! interleaving leaves both asleep (a lost wake-up). Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release -p hints-proto --test loom_ring` (tests/run.sh
//! does, in a target directory of its own).
#![cfg(loom)]

use hints_proto::ring::doorbell::{self, WANTS_DATA, WANTS_ROOM};
use hints_proto::ring::{AtomicU32, heap_ring};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// 20 bytes through a 16-byte ring in writes of 10: the ring fills, the writer must wait, and
/// the second write wraps around the end of the data.
const SENT: &[u8; 20] = b"abcdefghijklmnopqrst";
const WRITE_BYTES: usize = 10;

#[test]
fn bytes_cross_between_threads_in_order() {
    loom::model(|| {
        let (mut producer, mut consumer) = heap_ring(16);
        let writer = thread::spawn(move || {
            for chunk in SENT.chunks(WRITE_BYTES) {
                let mut done = 0;
                while done < chunk.len() {
                    match producer.write(&chunk[done..]).expect("the ring stays sound") {
                        0 => thread::yield_now(),
                        n => done += n,
                    }
                }
            }
        });
        let mut received = Vec::new();
        let mut buf = [0u8; 7];
        while received.len() < SENT.len() {
            match consumer.read(&mut buf).expect("the ring stays sound") {
                0 => thread::yield_now(),
                n => received.extend_from_slice(&buf[..n]),
            }
        }
        writer.join().unwrap();
        assert_eq!(received, SENT);
        assert_eq!(consumer.read(&mut buf).unwrap(), 0, "nothing more was sent");
    });
}

/// A doorbell as loom can see it (in hintsd, a byte on the connection's socket): ringing sets
/// it, waiting blocks until it is set and clears it. A ring nobody waits for is kept, as an
/// unread byte is.
#[derive(Default)]
struct Bell {
    rung: Mutex<bool>,
    ringing: Condvar,
}

impl Bell {
    fn ring(&self) {
        *self.rung.lock().unwrap() = true;
        self.ringing.notify_one();
    }

    fn wait(&self) {
        let mut rung = self.rung.lock().unwrap();
        while !*rung {
            rung = self.ringing.wait(rung).unwrap();
        }
        *rung = false;
    }
}

/// One end's doorbell: the word in shared memory and what it sleeps on.
#[derive(Default)]
struct End {
    word: AtomicU32,
    bell: Bell,
}

impl End {
    /// Sleeps until `wants`, unless `has_work`, checked after the announcement, says otherwise.
    fn sleep_unless(&self, wants: u32, has_work: impl Fn() -> bool) {
        doorbell::announce_sleep(&self.word, wants);
        if has_work() {
            doorbell::cancel_sleep(&self.word);
        } else {
            self.bell.wait();
        }
    }

    /// Called by the other end after it published a position that gives this end `event`.
    fn wake_if_asleep(&self, event: u32) {
        if doorbell::take_sleeper(&self.word, event) {
            self.bell.ring();
        }
    }
}

#[test]
fn an_end_that_sleeps_is_always_woken_by_the_other_ends_next_write() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let (mut producer, mut consumer) = heap_ring(16);
        let (writer_end, reader_end) = (Arc::new(End::default()), Arc::new(End::default()));
        let (writer_side, reader_side) = (Arc::clone(&writer_end), Arc::clone(&reader_end));
        let writer = thread::spawn(move || {
            for chunk in SENT.chunks(WRITE_BYTES) {
                let mut done = 0;
                while done < chunk.len() {
                    match producer.write(&chunk[done..]).unwrap() {
                        0 => writer_side.sleep_unless(WANTS_ROOM, || producer.room().unwrap() > 0),
                        n => {
                            done += n;
                            reader_side.wake_if_asleep(WANTS_DATA);
                        }
                    }
                }
            }
        });
        let mut received = Vec::new();
        let mut buf = [0u8; 16];
        while received.len() < SENT.len() {
            match consumer.read(&mut buf).unwrap() {
                0 => reader_end.sleep_unless(WANTS_DATA, || consumer.available().unwrap() > 0),
                n => {
                    received.extend_from_slice(&buf[..n]);
                    writer_end.wake_if_asleep(WANTS_ROOM);
                }
            }
        }
        writer.join().unwrap();
        assert_eq!(received, SENT);
    });
}
