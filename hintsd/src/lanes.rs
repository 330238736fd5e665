//! Lanes: the threads that run connection tasks, one current-thread runtime each (actix
//! arbiters), so a connection's every wake-up lands on the one thread that serves it.
//!
//! A connection is read and greeted on the tokio pool, then moved to the lane with the fewest
//! connections, where it stays until it closes. Requests are applied from the lane directly
//! (see `direct.rs`): no thread hand-off on the request path, and as many lanes serving at once
//! as the host has cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix::{Arbiter, ArbiterHandle};

/// One lane's thread and how many connections it runs.
#[derive(Debug)]
struct Lane {
    arbiter: ArbiterHandle,
    connections: AtomicUsize,
}

/// The connection threads.
#[derive(Clone, Debug)]
pub struct Lanes {
    lanes: Arc<[Lane]>,
    /// Kept to stop them at shutdown.
    arbiters: Arc<Mutex<Vec<Arbiter>>>,
}

/// A connection's place on a lane; the lane's count goes down when it is dropped.
#[derive(Debug)]
pub struct Seat {
    lanes: Arc<[Lane]>,
    index: usize,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.lanes[self.index].connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Lanes {
    /// Starts `count` lanes (at least one).
    pub fn start(count: usize) -> Lanes {
        let arbiters: Vec<Arbiter> = (0..count.max(1)).map(|_| Arbiter::new()).collect();
        let lanes = arbiters.iter().map(|arbiter| Lane { arbiter: arbiter.handle(), connections: AtomicUsize::new(0) });
        Lanes { lanes: lanes.collect(), arbiters: Arc::new(Mutex::new(arbiters)) }
    }

    /// A seat on the lane with the fewest connections, and that lane's thread.
    pub fn seat(&self) -> (ArbiterHandle, Seat) {
        let index = (0..self.lanes.len())
            .min_by_key(|&index| self.lanes[index].connections.load(Ordering::Relaxed))
            .expect("there is at least one lane");
        let lane = &self.lanes[index];
        lane.connections.fetch_add(1, Ordering::Relaxed);
        (lane.arbiter.clone(), Seat { lanes: Arc::clone(&self.lanes), index })
    }

    /// Stops every lane (at shutdown, once connections have drained).
    pub fn stop(&self) {
        for arbiter in self.arbiters.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            arbiter.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lanes;

    #[actix::test]
    async fn connections_go_to_the_least_busy_lane_and_leave_it_on_drop() {
        let lanes = Lanes::start(2);
        let (_, first) = lanes.seat();
        let (_, second) = lanes.seat();
        assert_ne!(first.index, second.index, "the second connection takes the idle lane");
        drop(first);
        let (_, third) = lanes.seat();
        assert_ne!(third.index, second.index, "the lane freed by the first is the least busy");
        lanes.stop();
    }
}
