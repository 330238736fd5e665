//! The daemon's stop as its tasks wait for it: a flag, and a waker slot per waiting task that
//! the stop wakes, so that a connection's wait for its next request costs no lock.
//!
//! A connection waits for the stop with every wait for a request. On a `CancellationToken`
//! (a child token per connection) that wait created, registered and dropped a `Notified`
//! each time, under the token's lock, and checked the token under it too: about 400
//! instructions a request at one request a wake-up (callgrind). Here a wait stores the task's
//! waker in the connection's own slot (two compare-and-swaps when it is the same waker as last
//! time) and reads the flag; the table of slots is locked only when a task starts or stops
//! watching, and once at the stop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use futures::task::AtomicWaker;

/// The daemon's stop, shared by everything that waits for it.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    stopping: AtomicBool,
    /// The slot of every task watching, by the number its watch was given.
    watching: Mutex<HashMap<u64, Arc<AtomicWaker>>>,
    next_watch: AtomicU64,
}

/// One task's watch on the stop; its slot goes when it is dropped.
#[derive(Debug)]
pub struct StopWatch {
    shared: Arc<Shared>,
    number: u64,
    waker: Arc<AtomicWaker>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// True once [`Stop::stop`] has been called.
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    /// Stops: every watch's [`StopWatch::stopped`] finishes, now and from now on.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        let watching = self.shared.watching.lock().unwrap_or_else(PoisonError::into_inner);
        for waker in watching.values() {
            waker.wake();
        }
    }

    /// A watch for one task to wait on.
    pub fn watch(&self) -> StopWatch {
        let number = self.shared.next_watch.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(AtomicWaker::new());
        let mut watching = self.shared.watching.lock().unwrap_or_else(PoisonError::into_inner);
        watching.insert(number, Arc::clone(&waker));
        StopWatch { shared: Arc::clone(&self.shared), number, waker }
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
            if self.shared.stopping.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
        })
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        self.shared.watching.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.number);
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
    async fn a_watch_woken_for_another_reason_goes_on_waiting_and_leaves_its_slot_when_dropped() {
        let stop = Stop::new();
        let watch = stop.watch();
        let other = stop.watch();
        drop(other);
        assert_eq!(stop.shared.watching.lock().unwrap().len(), 1, "a dropped watch leaves the table");
        // Polled again and again by one task, as a connection does between requests.
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
}
