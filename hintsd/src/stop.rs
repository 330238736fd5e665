//! The daemon's stop as its tasks wait for it: a flag, and a waker slot per waiting task that
//! the stop wakes, so that a connection's wait for its next request costs no lock.
//!
//! A connection waits for the stop with every wait for a request. On a `CancellationToken`
//! (a child token per connection) that wait created, registered and dropped a `Notified`
//! each time, under the token's lock, and checked the token under it too: about 350
//! instructions a request at one request a wake-up (callgrind). Here a wait stores the task's
//! waker in the connection's own slot (two compare-and-swaps when it is the same waker as last
//! time) and reads the flag; the table of slots is locked only when a task starts or stops
//! watching, and once at the stop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use futures::task::AtomicWaker;

/// The daemon's stop, shared by everything that waits for it.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    /// Read by every lane on every request, written once: an allocation of its own, so that
    /// making and dropping watches (the table below) does not take its cache line away.
    stopping: Arc<AtomicBool>,
    watches: Arc<Mutex<Watches>>,
}

#[derive(Debug, Default)]
struct Watches {
    /// The slot of every task watching, by the number its watch was given.
    slots: HashMap<u64, Arc<AtomicWaker>>,
    next: u64,
}

/// One task's watch on the stop; its slot goes when it is dropped.
#[derive(Debug)]
pub struct StopWatch {
    stop: Stop,
    number: u64,
    waker: Arc<AtomicWaker>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// True once [`Stop::stop`] has been called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stops: every watch's [`StopWatch::stopped`] finishes, now and from now on.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        for waker in watches.slots.values() {
            waker.wake();
        }
    }

    /// A watch for one task to wait on.
    pub fn watch(&self) -> StopWatch {
        let waker = Arc::new(AtomicWaker::new());
        let mut watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        let number = watches.next;
        watches.next += 1;
        watches.slots.insert(number, Arc::clone(&waker));
        StopWatch { stop: self.clone(), number, waker }
    }
}

impl StopWatch {
    /// Finishes once the daemon stops (at once if it has). Only the task that polled it last
    /// is woken: a watch is for one task.
    pub fn stopped(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            // The waker first, then the flag: a stop that sets the flag after this read wakes
            // the waker stored before it (`AtomicWaker` orders the two).
            self.waker.register(cx.waker());
            if self.stop.is_stopping() { Poll::Ready(()) } else { Poll::Pending }
        })
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        self.stop.watches.lock().unwrap_or_else(PoisonError::into_inner).slots.remove(&self.number);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Stop;

    #[tokio::test]
    async fn a_watch_finishes_when_the_daemon_stops_and_after() {
        let stop = Stop::new();
        let early = stop.watch();
        let waiting = tokio::spawn(async move { early.stopped().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "nothing stopped yet");
        assert!(!stop.is_stopping());
        stop.stop();
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("woken by the stop").unwrap();
        assert!(stop.is_stopping());
        let late = stop.watch();
        tokio::time::timeout(Duration::from_secs(5), late.stopped())
            .await
            .expect("a watch after the stop finishes at once");
    }

    #[tokio::test]
    async fn a_watch_waited_on_again_and_again_still_finishes_and_leaves_its_slot_when_dropped() {
        let stop = Stop::new();
        let watch = stop.watch();
        let other = stop.watch();
        drop(other);
        assert_eq!(stop.watches.lock().unwrap().slots.len(), 1, "a dropped watch leaves the table");
        // A new wait each time, as a connection makes between requests.
        for _ in 0..3 {
            let wait = tokio::time::timeout(Duration::from_millis(5), watch.stopped()).await;
            assert!(wait.is_err(), "no stop, no finish");
        }
        let waiting = tokio::spawn(async move { watch.stopped().await });
        tokio::task::yield_now().await;
        stop.stop();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the task polling it last is woken")
            .unwrap();
    }

    /// A watch waited on from one thread after another (a connection moving between lanes),
    /// the stop coming from yet another thread once the second wait has begun: it ends it.
    #[test]
    fn a_watch_moved_between_threads_is_woken_by_a_stop_from_another() {
        for round in 0..50u64 {
            let stop = Stop::new();
            let watch = stop.watch();
            let (moved, arrived) = std::sync::mpsc::channel();
            let (waiting, began) = std::sync::mpsc::channel();
            let first_lane = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
                runtime.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_micros(round % 7), watch.stopped()).await;
                });
                moved.send(watch).unwrap();
            });
            let second_lane = std::thread::spawn(move || {
                let watch = arrived.recv().unwrap();
                let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
                runtime.block_on(async {
                    let mut wait = std::pin::pin!(watch.stopped());
                    assert!(futures::poll!(&mut wait).is_pending(), "no stop yet");
                    waiting.send(()).unwrap();
                    // The timer first: a timeout that polled the wait when it fired would find
                    // the stop without having been woken by it.
                    tokio::select! {
                        biased;
                        () = tokio::time::sleep(Duration::from_secs(5)) => false,
                        () = wait => true,
                    }
                })
            });
            began.recv().unwrap();
            stop.stop();
            first_lane.join().unwrap();
            assert!(second_lane.join().unwrap(), "round {round}: the wait after the move was not woken");
        }
    }
}
