//! Lanes: the threads that run connection tasks, one current-thread tokio runtime each (named
//! `hintsd-lane-N`), so a connection's every wake-up lands on the one thread that serves it.
//!
//! A lane is a plain runtime rather than an actix arbiter: an arbiter runs its tasks in a
//! `LocalSet` inside the runtime and polls its command channel whenever any of them wakes,
//! about 400 instructions a wake-up (callgrind), which at one request a wake-up was 7 % of the
//! daemon's work. Connection tasks need no actor context of their own: they reach databases
//! through their addresses and locks.
//!
//! A connection is read and greeted on the tokio pool, then moved to the lane with the fewest
//! connections. Requests are applied from the lane directly (see `direct.rs`): no thread
//! hand-off on the request path, and as many lanes serving at once as the host has cores.
//!
//! While the host has a core for every client and every busy lane, a lane that has answered a
//! ring connection keeps looking at its ring for a moment ([`Lanes::spin_budget`]) before it
//! sleeps, as the client does for its reply: neither end then sleeps, where waking a sleeping
//! core costs tens of µs on a VM. Once clients and lanes outnumber the cores, spinning would
//! take a core a client needs, so lanes sleep at once; then a client is best served by the lane
//! on its own core, where its wake-ups cost no interrupt between cores, so a connection moves
//! to the lane on the CPU its client runs on ([`Lanes::lane_on_cpu`]), as a ring client says
//! or, for a socket client, as `/proc` says. Lanes are pinned to a CPU each (`pin_lanes`), so
//! every CPU with a lane has one to follow to; unpinned, a lane's CPU is where its connections
//! last saw it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sched::CpuSet;
use nix::unistd::Pid;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// One lane's thread and how many connections it runs.
#[derive(Debug)]
struct Lane {
    runtime: Handle,
    connections: AtomicUsize,
    /// The CPU the lane's thread was last seen on by one of its connections ([`NO_CPU`]: not
    /// yet).
    cpu: AtomicUsize,
    /// Set when the lane's thread has ended (stopped, or died): a task sent there is dropped.
    ended: Arc<AtomicBool>,
}

/// What stops a lane's thread, and the thread.
type LaneStop = (oneshot::Sender<()>, std::thread::JoinHandle<()>);

/// A lane's CPU before any of its connections has looked.
const NO_CPU: usize = usize::MAX;

/// The connection threads.
#[derive(Clone, Debug)]
pub struct Lanes {
    lanes: Arc<[Lane]>,
    /// Each lane's stop and thread, taken at shutdown: the thread then ends, dropping what
    /// still runs on it.
    stops: Arc<Mutex<Vec<LaneStop>>>,
    /// How long a lane may spin for its ring connection's next request; zero: never.
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
    /// Starts `count` lanes (at least one), which spin up to `spin` for a ring connection's next
    /// request while the host has a core for every client and busy lane; with `pin`, lane `i`
    /// runs only on the `i`-th CPU this process may use (round the list again past its end).
    pub fn start(count: usize, spin: Duration, pin: bool) -> Lanes {
        let cpus = if pin { allowed_cpus() } else { Vec::new() };
        let (lanes, stops): (Vec<Lane>, Vec<_>) = (0..count.max(1))
            .map(|index| {
                let cpu = (!cpus.is_empty()).then(|| cpus[index % cpus.len()]);
                start_lane(index, cpu)
            })
            .unzip();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Lanes { lanes: lanes.into(), stops: Arc::new(Mutex::new(stops)), spin, cores }
    }

    /// How long the lane of `seat` may spin for its ring connection's next request: `Some` only
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

    /// Notes that the lane of `seat` runs on `cpu` now.
    pub fn note_cpu(&self, seat: &Seat, cpu: usize) {
        let lane = &self.lanes[seat.index];
        // Read first: the line is shared by every lane's connections, and rarely changes.
        if lane.cpu.load(Ordering::Relaxed) != cpu {
            lane.cpu.store(cpu, Ordering::Relaxed);
        }
    }

    /// A lane other than the one of `seat` that was last seen on `cpu`.
    pub fn lane_on_cpu(&self, seat: &Seat, cpu: usize) -> Option<usize> {
        let mut others = (0..self.lanes.len()).filter(|&index| index != seat.index);
        others.find(|&index| self.lanes[index].cpu.load(Ordering::Relaxed) == cpu)
    }

    /// A seat on the running lane with the fewest connections, and that lane's runtime.
    pub fn seat(&self) -> (Handle, Seat) {
        let running = (0..self.lanes.len()).filter(|&index| !self.has_ended(index));
        let index = running.min_by_key(|&index| self.lanes[index].connections.load(Ordering::Relaxed)).unwrap_or(0);
        self.seat_on(index)
    }

    /// True once lane `index`'s thread has ended: stopped, or died.
    pub fn has_ended(&self, index: usize) -> bool {
        self.lanes[index].ended.load(Ordering::Relaxed)
    }

    /// A seat on lane `index`, and that lane's runtime.
    pub fn seat_on(&self, index: usize) -> (Handle, Seat) {
        let lane = &self.lanes[index];
        lane.connections.fetch_add(1, Ordering::Relaxed);
        (lane.runtime.clone(), Seat { lanes: Arc::clone(&self.lanes), index })
    }

    /// Stops every lane (at shutdown, once connections have drained) and waits for their
    /// threads to end, dropping what still ran on them.
    pub fn stop(&self) {
        let (stops, threads): (Vec<_>, Vec<_>) =
            self.stops.lock().unwrap_or_else(PoisonError::into_inner).drain(..).unzip();
        // Every lane is told first, so they wind down together.
        for stop in stops {
            let _ = stop.send(());
        }
        for thread in threads {
            // A lane that panicked has said so in the log already.
            let _ = thread.join();
        }
    }
}

impl Seat {
    /// The lane's number (as in its thread's name).
    pub fn lane(&self) -> usize {
        self.index
    }
}

/// The CPUs this process may run on, in order (empty, and logged, if they cannot be read).
pub fn allowed_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).collect(),
        Err(err) => {
            tracing::warn!(error = %err, "could not read the CPUs this process may use; lanes are not pinned");
            Vec::new()
        }
    }
}

/// Starts lane `index`'s thread, pinned to `cpu` if given, and returns once its runtime runs
/// (so that the first connections can already follow their clients to it), with its stop.
fn start_lane(index: usize, cpu: Option<usize>) -> (Lane, LaneStop) {
    let (stop, stopped) = oneshot::channel::<()>();
    let (started, lane_started) = std::sync::mpsc::channel();
    let ended = Arc::new(AtomicBool::new(false));
    let ended_when_dropped = EndedWhenDropped(Arc::clone(&ended));
    let thread = std::thread::Builder::new()
        .name(format!("hintsd-lane-{index}"))
        .spawn(move || {
            let _ended_when_dropped = ended_when_dropped;
            let pinned = cpu.filter(|&cpu| pin_this_thread(cpu, index));
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("building a lane's runtime");
            let _ = started.send((runtime.handle().clone(), pinned));
            // Until the stop comes, or `Lanes` is dropped without one.
            runtime.block_on(async move {
                let _ = stopped.await;
            });
        })
        .expect("starting a lane's thread");
    let (runtime, pinned) = lane_started.recv().expect("a lane's thread starts its runtime");
    let lane = Lane {
        runtime,
        connections: AtomicUsize::new(0),
        // A pinned lane is noted on its CPU at once, so connections can follow their clients to
        // it before it has served any.
        cpu: AtomicUsize::new(pinned.unwrap_or(NO_CPU)),
        ended,
    };
    (lane, (stop, thread))
}

/// Marks a lane ended when its thread ends, however it ends.
struct EndedWhenDropped(Arc<AtomicBool>);

impl Drop for EndedWhenDropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Keeps the calling thread (lane `index`) on `cpu`; whether it could (a CPU that cannot be
/// had leaves the lane to the scheduler).
fn pin_this_thread(cpu: usize, index: usize) -> bool {
    match pin_current_thread(cpu) {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(lane = index, cpu, error = %err, "could not pin a lane to its CPU");
            false
        }
    }
}

/// Keeps the calling thread on `cpu` (also used by the benchmark's lane-shaped servers).
///
/// # Errors
/// As `sched_setaffinity`: a CPU this process may not use, say.
pub fn pin_current_thread(cpu: usize) -> nix::Result<()> {
    let mut only = CpuSet::new();
    only.set(cpu)?;
    nix::sched::sched_setaffinity(Pid::from_raw(0), &only)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Lanes;

    /// Sends a word when dropped.
    struct Dropped(std::sync::mpsc::Sender<&'static str>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            let _ = self.0.send("dropped");
        }
    }

    #[test]
    fn a_task_runs_on_its_lane_and_is_dropped_when_the_lanes_stop() {
        let lanes = Lanes::start(2, Duration::ZERO, false);
        let (said, hear) = std::sync::mpsc::channel();
        let (lane, _seat) = lanes.seat_on(1);
        let guard = Dropped(said.clone());
        lane.spawn(async move {
            let _guard = guard;
            let here = std::thread::current().name() == Some("hintsd-lane-1");
            let _ = said.send(if here { "on lane 1" } else { "elsewhere" });
            std::future::pending::<()>().await;
        });
        let wait = Duration::from_secs(5);
        assert_eq!(hear.recv_timeout(wait).unwrap(), "on lane 1");
        lanes.stop();
        assert_eq!(hear.try_recv().unwrap(), "dropped", "stop returns once the lane's tasks are dropped");
        assert!(lanes.has_ended(0) && lanes.has_ended(1));

        let (said, hear) = std::sync::mpsc::channel();
        let guard = Dropped(said);
        lane.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        assert_eq!(hear.recv_timeout(wait).unwrap(), "dropped", "a task sent to a stopped lane is dropped");
    }

    #[test]
    fn a_pinned_lane_is_found_on_its_cpu_before_it_serves_anyone() {
        let cpus = super::allowed_cpus();
        let lanes = Lanes::start(2, Duration::ZERO, true);
        let (_, on_first) = lanes.seat_on(0);
        // Lane 1 is pinned to the second CPU this process may use (the first again on one).
        assert_eq!(lanes.lane_on_cpu(&on_first, cpus[1 % cpus.len()]), Some(1));
        lanes.stop();
    }

    #[test]
    fn connections_go_to_the_least_busy_lane_and_leave_it_on_drop() {
        let lanes = Lanes::start(2, Duration::ZERO, false);
        let (_, first) = lanes.seat();
        let (_, second) = lanes.seat();
        assert_ne!(first.index, second.index, "the second connection takes the idle lane");
        drop(first);
        let (_, third) = lanes.seat();
        assert_ne!(third.index, second.index, "the lane freed by the first is the least busy");
        lanes.stop();
    }

    #[test]
    fn a_lane_is_found_by_the_cpu_it_was_last_seen_on() {
        let lanes = Lanes::start(3, Duration::ZERO, false);
        let seats: Vec<_> = (0..3).map(|index| lanes.seat_on(index).1).collect();
        assert_eq!(lanes.lane_on_cpu(&seats[0], 0), None, "no lane has been seen anywhere yet");
        lanes.note_cpu(&seats[1], 5);
        lanes.note_cpu(&seats[2], 7);
        assert_eq!(lanes.lane_on_cpu(&seats[0], 5), Some(1));
        assert_eq!(lanes.lane_on_cpu(&seats[0], 7), Some(2));
        assert_eq!(lanes.lane_on_cpu(&seats[1], 5), None, "a connection's own lane is not another");
        lanes.note_cpu(&seats[1], 6);
        assert_eq!(lanes.lane_on_cpu(&seats[0], 5), None, "only the latest CPU counts");
        assert_eq!(lanes.lane_on_cpu(&seats[0], usize::MAX - 1), None);
        lanes.stop();
    }

    #[test]
    fn lanes_spin_only_while_clients_and_busy_lanes_fit_the_cores() {
        let spin = Some(Duration::from_micros(30));
        let mut lanes = Lanes::start(2, Duration::from_micros(30), false);
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
