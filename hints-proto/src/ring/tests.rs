//! The ring on one thread: frames in order, wrapping, full and too large, a model check by
//! proptest, and a hostile other end. `tests/loom_ring.rs` checks two threads.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

fn ring(capacity: usize) -> (Producer<std::sync::Arc<HeapRegion>>, Consumer<std::sync::Arc<HeapRegion>>) {
    let region = std::sync::Arc::new(HeapRegion::new(capacity));
    (Producer::new(std::sync::Arc::clone(&region)), Consumer::new(region))
}

#[test]
fn frames_come_out_in_order_and_whole_across_the_wrap() {
    let (mut producer, mut consumer) = ring(32);
    let mut out = Vec::new();
    for round in 0u8..50 {
        let frame: Vec<u8> = (0..round % 20).map(|i| i ^ round).collect();
        producer.try_push(&frame).unwrap();
        assert!(consumer.try_pop(&mut out).unwrap());
        assert_eq!(out, frame, "round {round}");
    }
    assert!(!consumer.try_pop(&mut out).unwrap(), "nothing left");
}

#[test]
fn a_full_ring_refuses_until_the_consumer_makes_room() {
    let (mut producer, mut consumer) = ring(16);
    producer.try_push(b"12345678").unwrap();
    assert_eq!(producer.try_push(b"abcd"), Err(PushError::Full), "12 of 16 bytes used, 8 wanted");
    let mut out = Vec::new();
    assert!(consumer.try_pop(&mut out).unwrap());
    producer.try_push(b"abcd").unwrap();
    assert!(consumer.try_pop(&mut out).unwrap());
    assert_eq!(out, b"abcd");
}

#[test]
fn a_frame_that_can_never_fit_is_refused_as_too_large() {
    let (mut producer, _) = ring(16);
    assert_eq!(producer.try_push(&[0; 13]), Err(PushError::TooLarge { bytes: 13 }));
    producer.try_push(&[0; 12]).unwrap();
}

#[test]
fn a_hostile_producer_cannot_make_the_consumer_read_past_what_it_published() {
    let mut out = Vec::new();
    // The tail more than a ring ahead.
    let region = HeapRegion::new(16);
    region.tail().store(17, Ordering::Relaxed);
    assert!(Consumer::new(&region).try_pop(&mut out).is_err());
    // Part of a length.
    let region = HeapRegion::new(16);
    region.tail().store(2, Ordering::Relaxed);
    assert!(Consumer::new(&region).try_pop(&mut out).is_err());
    // A length past the published bytes, and one past any frame: refused before allocating.
    for len in [9u32, u32::MAX] {
        let region = HeapRegion::new(16);
        // SAFETY: no other end is running.
        unsafe { region.write(0, &len.to_le_bytes()) };
        region.tail().store(12, Ordering::Relaxed);
        assert!(Consumer::new(&region).try_pop(&mut out).is_err(), "length {len}");
        assert!(out.capacity() < 1024, "nothing large was allocated");
    }
}

#[test]
fn a_hostile_consumer_cannot_make_the_producer_overwrite_unread_frames() {
    let region = HeapRegion::new(16);
    let mut producer = Producer::new(&region);
    producer.try_push(b"1234").unwrap();
    // A head past the tail, as if more had been consumed than produced.
    region.head().store(100, Ordering::Relaxed);
    assert!(matches!(producer.try_push(b"x"), Err(PushError::Corrupt(_))));
}

#[derive(Debug, Clone)]
enum Op {
    Push(Vec<u8>),
    Pop,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![prop::collection::vec(any::<u8>(), 0..40).prop_map(Op::Push), Just(Op::Pop),];
    prop::collection::vec(op, 0..200)
}

proptest! {
    /// Against a queue: a push fails exactly when the frames held and the new one would not
    /// fit, and pops give back exactly what was pushed, in order.
    #[test]
    fn the_ring_behaves_as_a_bounded_queue_of_frames(capacity_log in 4u32..8, ops in ops()) {
        let capacity = 1usize << capacity_log;
        let (mut producer, mut consumer) = ring(capacity);
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut out = Vec::new();
        for op in ops {
            match op {
                Op::Push(frame) => {
                    let used: usize = model.iter().map(|held| 4 + held.len()).sum();
                    let expected = if 4 + frame.len() > capacity {
                        Err(PushError::TooLarge { bytes: frame.len() })
                    } else if used + 4 + frame.len() > capacity {
                        Err(PushError::Full)
                    } else {
                        Ok(())
                    };
                    prop_assert_eq!(producer.try_push(&frame), expected.clone());
                    if expected.is_ok() {
                        model.push_back(frame);
                    }
                }
                Op::Pop => match model.pop_front() {
                    Some(frame) => {
                        prop_assert!(consumer.try_pop(&mut out).unwrap());
                        prop_assert_eq!(&out, &frame);
                    }
                    None => prop_assert!(!consumer.try_pop(&mut out).unwrap()),
                },
            }
        }
    }
}
