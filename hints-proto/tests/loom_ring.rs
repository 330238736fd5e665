//! The ring between two threads, model-checked: loom runs every interleaving of the producer
//! and the consumer (and flags any unsynchronised access to a frame's bytes). Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release -p hints-proto --test loom_ring` (tests/run.sh
//! does, in a target directory of its own).
#![cfg(loom)]

use hints_proto::ring::{Consumer, HeapRegion, Producer, PushError};
use loom::sync::Arc;
use loom::thread;

/// Three frames through a 16-byte ring: 10, 6 and 12 bytes with their lengths, so the ring
/// fills (the producer must wait) and the last frame wraps around the end of the data.
const FRAMES: [&[u8]; 3] = [b"abcdef", b"gh", b"ijklmnop"];

#[test]
fn frames_cross_between_threads_whole_and_in_order() {
    loom::model(|| {
        let region = Arc::new(HeapRegion::new(16));
        let mut producer = Producer::new(Arc::clone(&region));
        let mut consumer = Consumer::new(region);
        let sender = thread::spawn(move || {
            for frame in FRAMES {
                loop {
                    match producer.try_push(frame) {
                        Ok(()) => break,
                        Err(PushError::Full) => thread::yield_now(),
                        Err(other) => panic!("push failed: {other:?}"),
                    }
                }
            }
        });
        let mut out = Vec::new();
        for frame in FRAMES {
            while !consumer.try_pop(&mut out).expect("the ring stays sound") {
                thread::yield_now();
            }
            assert_eq!(out, frame);
        }
        sender.join().unwrap();
        assert!(!consumer.try_pop(&mut out).unwrap(), "nothing more was sent");
    });
}
