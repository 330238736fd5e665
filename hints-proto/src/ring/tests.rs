//! The ring on one thread: bytes in order across the wrap, a full ring, a model check by
//! proptest, a hostile other end, and the doorbell's rules. `tests/loom_ring.rs` checks two
//! threads.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

fn ring(capacity: usize) -> (Producer<Arc<HeapRegion>>, Consumer<Arc<HeapRegion>>) {
    heap_ring(capacity)
}

#[test]
fn bytes_come_out_in_order_across_the_wrap() {
    let (mut producer, mut consumer) = ring(32);
    let mut out = [0u8; 32];
    for round in 0u8..50 {
        let sent: Vec<u8> = (0..round % 20).map(|i| i ^ round).collect();
        assert_eq!(producer.write(&sent).unwrap(), sent.len());
        assert_eq!(consumer.read(&mut out).unwrap(), sent.len());
        assert_eq!(&out[..sent.len()], &sent[..], "round {round}");
    }
    assert_eq!(consumer.read(&mut out).unwrap(), 0, "nothing left");
}

#[test]
fn a_full_ring_takes_what_fits_and_the_rest_after_the_reader_makes_room() {
    let (mut producer, mut consumer) = ring(16);
    assert_eq!(producer.write(&[7; 12]).unwrap(), 12);
    assert_eq!(producer.room().unwrap(), 4);
    assert_eq!(producer.write(b"abcdefgh").unwrap(), 4, "only 4 of 16 bytes were free");
    assert_eq!(producer.write(b"efgh").unwrap(), 0, "full");
    let mut out = [0u8; 10];
    assert_eq!(consumer.read(&mut out).unwrap(), 10);
    assert_eq!(consumer.available().unwrap(), 6);
    assert_eq!(producer.write(b"efgh").unwrap(), 4);
    let mut rest = [0u8; 16];
    assert_eq!(consumer.read(&mut rest).unwrap(), 10);
    assert_eq!(&rest[..10], b"\x07\x07abcdefgh");
}

#[test]
fn a_hostile_writer_cannot_make_the_reader_read_past_what_it_published() {
    let mut out = [0u8; 64];
    for tail in [17, u64::MAX] {
        let region = HeapRegion::new(16);
        region.tail().store(tail, Ordering::Relaxed);
        // SAFETY: the only reader; no writer runs.
        let mut consumer = unsafe { Consumer::new(&region) };
        assert!(consumer.available().is_err(), "tail {tail}");
        assert!(consumer.read(&mut out).is_err(), "tail {tail}");
    }
}

#[test]
fn a_hostile_reader_cannot_make_the_writer_overwrite_unread_bytes() {
    let region = HeapRegion::new(16);
    // SAFETY: the only writer; no reader runs.
    let mut producer = unsafe { Producer::new(&region) };
    assert_eq!(producer.write(b"1234").unwrap(), 4);
    // A head past the tail, as if more had been read than written.
    region.head().store(100, Ordering::Relaxed);
    assert!(producer.room().is_err());
    assert!(producer.write(b"x").is_err());
}

#[test]
fn a_doorbell_wakes_once_per_announcement_and_only_for_what_its_end_waits_for() {
    use doorbell::{WANTS_DATA, WANTS_ROOM};
    let word = AtomicU32::new(doorbell::AWAKE);
    assert!(!doorbell::take_sleeper(&word, WANTS_DATA), "nobody announced sleep");
    doorbell::announce_sleep(&word, WANTS_DATA);
    assert!(!doorbell::take_sleeper(&word, WANTS_ROOM), "room does not wake an end waiting for data");
    assert!(doorbell::take_sleeper(&word, WANTS_DATA), "the first waker with data takes the sleeper");
    assert!(!doorbell::take_sleeper(&word, WANTS_DATA), "and only the first");
    doorbell::announce_sleep(&word, WANTS_DATA | WANTS_ROOM);
    assert!(doorbell::take_sleeper(&word, WANTS_ROOM), "an end waiting for both wakes for either");
    doorbell::announce_sleep(&word, WANTS_ROOM);
    doorbell::cancel_sleep(&word);
    assert!(!doorbell::take_sleeper(&word, WANTS_ROOM), "a cancelled announcement wakes nobody");
    word.store(0xdead_beef, Ordering::Relaxed);
    assert!(doorbell::take_sleeper(&word, WANTS_DATA), "a hostile value costs a needless wake-up, no more");
    assert_eq!(word.load(Ordering::Relaxed), doorbell::AWAKE);
}

#[derive(Debug, Clone)]
enum Op {
    Write(Vec<u8>),
    Read(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op =
        prop_oneof![prop::collection::vec(any::<u8>(), 0..40).prop_map(Op::Write), (0usize..40).prop_map(Op::Read)];
    prop::collection::vec(op, 0..200)
}

proptest! {
    /// Against a bounded queue of bytes: a write takes exactly what fits, a read gives back
    /// exactly what was written, in order, as much as asked and held.
    #[test]
    fn the_ring_behaves_as_a_bounded_queue_of_bytes(capacity_log in 4u32..8, ops in ops()) {
        let capacity = 1usize << capacity_log;
        let (mut producer, mut consumer) = ring(capacity);
        let mut model: VecDeque<u8> = VecDeque::new();
        for op in ops {
            match op {
                Op::Write(bytes) => {
                    let fits = (capacity - model.len()).min(bytes.len());
                    prop_assert_eq!(producer.write(&bytes).unwrap(), fits);
                    model.extend(&bytes[..fits]);
                }
                Op::Read(wanted) => {
                    let mut out = vec![0u8; wanted];
                    let got = consumer.read(&mut out).unwrap();
                    prop_assert_eq!(got, wanted.min(model.len()));
                    let expected: Vec<u8> = model.drain(..got).collect();
                    prop_assert_eq!(&out[..got], &expected[..]);
                }
            }
            prop_assert_eq!(consumer.available().unwrap(), model.len());
            prop_assert_eq!(producer.room().unwrap(), capacity - model.len());
        }
    }
}
