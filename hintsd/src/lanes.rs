//! Lanes: the threads that run connection tasks, one current-thread runtime each (actix
//! arbiters), so a connection's every wake-up lands on the one thread that serves it.
//!
//! A connection is read and greeted on the tokio pool, then moved to the lane with the fewest
//! connections, where it stays until it closes. Requests are applied from the lane directly
//! (see `direct.rs`): no thread hand-off on the request path, and as many lanes serving at once
//! as the host has cores.
//!
//! While the host has a core for every client and every busy lane, a lane that has answered
//! keeps trying its connection's socket for a moment ([`Lanes::spin_budget`]) before it sleeps:
//! waking a sleeping core costs about 30 µs on a VM, more than a lightly loaded round trip's
//! own work. Once clients and lanes outnumber the cores, spinning would take a core a client
//! needs, so lanes sleep at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

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
    /// How long a lane may spin for its connection's next request; zero: never.
    spin: Duration,
    /// The host's cores.
    cores: usize,
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
    /// Starts `count` lanes (at least one), which spin up to `spin` for a connection's next
    /// request while the host has a core for every client and busy lane.
    pub fn start(count: usize, spin: Duration) -> Lanes {
        let arbiters: Vec<Arbiter> = (0..count.max(1)).map(|_| Arbiter::new()).collect();
        let lanes = arbiters.iter().map(|arbiter| Lane { arbiter: arbiter.handle(), connections: AtomicUsize::new(0) });
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Lanes { lanes: lanes.collect(), arbiters: Arc::new(Mutex::new(arbiters)), spin, cores }
    }

    /// How long the lane of `seat` may spin for its connection's next request: `Some` only
    /// while that connection is alone on its lane (a spin holds the lane's thread) and every
    /// connection (counted as a client process that may be running) and every lane serving
    /// one can have a core of its own.
    pub fn spin_budget(&self, seat: &Seat) -> Option<Duration> {
        if self.spin.is_zero() || !self.is_alone(seat) {
            return None;
        }
        let counts = self.lanes.iter().map(|lane| lane.connections.load(Ordering::Relaxed));
        let (connections, busy_lanes) = counts.fold((0, 0), |(all, busy), n| (all + n, busy + usize::from(n > 0)));
        (connections + busy_lanes <= self.cores).then_some(self.spin)
    }

    /// True while the connection of `seat` is the only one on its lane.
    pub fn is_alone(&self, seat: &Seat) -> bool {
        self.lanes[seat.index].connections.load(Ordering::Relaxed) == 1
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
    use std::time::Duration;

    use super::Lanes;

    #[actix::test]
    async fn connections_go_to_the_least_busy_lane_and_leave_it_on_drop() {
        let lanes = Lanes::start(2, Duration::ZERO);
        let (_, first) = lanes.seat();
        let (_, second) = lanes.seat();
        assert_ne!(first.index, second.index, "the second connection takes the idle lane");
        drop(first);
        let (_, third) = lanes.seat();
        assert_ne!(third.index, second.index, "the lane freed by the first is the least busy");
        lanes.stop();
    }

    #[actix::test]
    async fn lanes_spin_only_while_clients_and_busy_lanes_fit_the_cores() {
        let spin = Some(Duration::from_micros(30));
        let mut lanes = Lanes::start(2, Duration::from_micros(30));
        lanes.cores = 2;
        let (_, first) = lanes.seat();
        assert_eq!(lanes.spin_budget(&first), spin, "one client and its lane: two cores");
        let (_, second) = lanes.seat();
        assert_eq!(lanes.spin_budget(&first), None, "two clients and two busy lanes need four cores");
        drop(second);
        lanes.cores = 8;
        let (_, second) = lanes.seat();
        let (_, third) = lanes.seat();
        let (sharing, alone) = if third.index == first.index { (&first, &second) } else { (&second, &first) };
        assert_eq!(lanes.spin_budget(sharing), None, "a connection sharing its lane never spins");
        assert_eq!(lanes.spin_budget(&third), None, "nor the one it shares it with");
        assert_eq!(lanes.spin_budget(alone), spin, "three clients, two lanes: five of eight cores");
        drop((first, second, third));
        let (_, only) = lanes.seat();
        lanes.spin = Duration::ZERO;
        assert_eq!(lanes.spin_budget(&only), None, "spin_micros = 0 turns it off");
        lanes.stop();
    }
}
