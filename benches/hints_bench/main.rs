//! `hints-bench`: a load generator that runs client *processes* against hintsd and the stores
//! MTAs use today (Exim's locked GDBM and Berkeley DB files on disk and on tmpfs, SQLite,
//! LMDB, Redis, and a bare socket echo as the floor), on the same workloads in one run, and
//! reports throughput, latency percentiles, CPU per operation and hintsd's ratios against
//! each; also the small worker programs the end-to-end tests run as separate processes
//! (compare-and-set increments, fork checks).
//!
//! `hints-bench run --contenders hintsd,sqlite --workloads mix --clients 1,4` starts each
//! contender privately (a server, or a directory of files), fills it, checks that it stores
//! what it is given (a `worker --check` process). Then, cell by cell (workload, key
//! distribution, pipeline depth, client count), the contenders take turns for a few rounds:
//! each turn starts that many worker processes that run for a fixed time from a common start
//! instant, and merges their histograms; each contender is reported by its median round.

mod contenders;
mod histogram;
mod memory;
mod report;
mod targets;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use hints_client::CasOutcome;
use hints_proto::DbName;
use serde::{Deserialize, Serialize};

use crate::contenders::{Contender, Dirs, Target};
use crate::histogram::Histogram;
use crate::report::{Cell, Report};
use crate::workload::{Generator, KeyDist, Workload};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks and test workers for hintsd")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

/// Which counter a counting worker increments, and how often.
#[derive(Debug, clap::Args)]
struct CounterArgs {
    #[arg(long)]
    socket: PathBuf,
    #[arg(long)]
    db: String,
    #[arg(long)]
    key: String,
    #[arg(long)]
    count: u64,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the benchmark matrix and print a table.
    Run(RunArgs),
    /// One benchmark client process (started by `run`); prints its result as JSON.
    Worker(WorkerArgs),
    /// Increment a counter held as a decimal value COUNT times by compare-and-set.
    CasIncrement(CounterArgs),
    /// Measure the daemon's memory holding RECORDS records, and its snapshot write and load.
    Memory {
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        #[arg(long, default_value_t = 100)]
        value_bytes: usize,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Add 1 to a counter COUNT times (the daemon's atomic add).
    CounterAdd(CounterArgs),
    /// Take and give back a serialize slot ROUNDS times; while holding one, count the holders
    /// through an independent counter and fail if more than LIMIT hold at once.
    SerializeWorker {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        rounds: u32,
        #[arg(long)]
        limit: u32,
    },
    /// The echo floor's server (started by `run`).
    EchoServer {
        #[arg(long)]
        socket: PathBuf,
        /// `threads` (the floor), or `lanes` or `epoll`: two servers shaped like hintsd's
        /// lanes that differ only in their event loop (`benches/event_loop.sh`).
        #[arg(long, value_enum, default_value = "threads")]
        shape: contenders::EchoShape,
    },
    /// Sum up workers that ran side by side, from the JSON each printed: ops/s, p50, p99.
    Summary {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Use one client from a parent and a forked child at once; exit 0 if every answer was right.
    ForkCheck {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long, default_value_t = 2000)]
        rounds: u32,
    },
    /// Take a slot, fork a child that keeps the inherited socket open, drop the client in the
    /// parent, and check that the slot came free while the child still lives.
    ForkCloseCheck {
        #[arg(long)]
        socket: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Contenders to measure, comma-separated; each gets a private server or directory.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "hintsd,hintsd-ring,hintsd-pool,echo,exim-gdbm-disk,exim-gdbm-tmpfs,exim-bdb-disk,exim-bdb-tmpfs,sqlite,lmdb,redis"
    )]
    contenders: Vec<Contender>,
    /// Client process counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    clients: Vec<u32>,
    /// Workloads to run, comma-separated (echo runs its own).
    #[arg(long, alias = "ops", value_delimiter = ',', default_value = "mix,ratelimit,seen")]
    workloads: Vec<Workload>,
    /// Key distributions for get, put and mix, comma-separated (ratelimit's hot keys and
    /// seen's keys are uniform).
    #[arg(long, value_delimiter = ',', default_value = "uniform,zipf")]
    keys_dist: Vec<KeyDist>,
    /// Pipeline depths, comma-separated: requests a worker writes before it reads their
    /// replies. Depths above 1 run only for hintsd and echo.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pipeline: Vec<usize>,
    /// Seconds each contender runs in a round of a cell.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Rounds of each cell: the contenders take turns in it, in an order that changes each
    /// round, this many times, and each is reported by its median round. Contenders measured
    /// seconds apart see the same machine, so their ratios hold on a shared, noisy host.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=ROUNDS_MAX))]
    rounds: u32,
    #[arg(long, default_value_t = 10_000)]
    keys: u32,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Where the on-disk contenders keep their files.
    #[arg(long, default_value = "/var/tmp")]
    disk_dir: PathBuf,
    /// The tmpfs for the `-tmpfs` contenders.
    #[arg(long, default_value = "/dev/shm")]
    tmpfs_dir: PathBuf,
    /// The workers' random seed (worker i uses a seed derived from it and i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct WorkerArgs {
    #[arg(long, value_enum)]
    contender: Contender,
    /// The contender's socket or directory.
    #[arg(long)]
    target: PathBuf,
    /// Check the contender instead of measuring it (see `workload::check`).
    #[arg(long)]
    check: bool,
    /// Fill the contender with the workloads' records (as `run` does before its cells), then
    /// exit: for scripts that run workers themselves (`benches/where_time_goes.sh`).
    #[arg(long, conflicts_with = "check")]
    fill: bool,
    #[arg(long, value_enum, default_value = "mix")]
    workload: Workload,
    #[arg(long, value_enum, default_value = "uniform")]
    keys_dist: KeyDist,
    #[arg(long, default_value_t = 10_000)]
    keys: u32,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Start at this Unix time in milliseconds, so all workers start together.
    #[arg(long, default_value_t = 0)]
    start_at_ms: u64,
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct WorkerResult {
    ops: u64,
    errors: u64,
    elapsed_secs: f64,
    histogram: Histogram,
    /// Latencies per kind of access (at depth 1 only).
    by_kind: BTreeMap<String, Histogram>,
}

impl WorkerResult {
    /// Adds the result of a worker that ran beside these.
    fn absorb(&mut self, other: &WorkerResult) {
        self.histogram.merge(&other.histogram);
        for (kind, histogram) in &other.by_kind {
            self.by_kind.entry(kind.clone()).or_default().merge(histogram);
        }
        self.ops += other.ops;
        self.errors += other.errors;
        self.elapsed_secs = self.elapsed_secs.max(other.elapsed_secs);
    }

    /// Operations a second, over the longest of the workers' times.
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed_secs.max(1e-9)
    }
}

/// Prints what workers that ran side by side did together, from their JSON results: ops/s,
/// p50 and p99.
fn summary(files: &[PathBuf]) -> Res<()> {
    let mut total = WorkerResult::default();
    for file in files {
        let text = std::fs::read(file).map_err(|err| format!("{}: {err}", file.display()))?;
        let result: WorkerResult =
            serde_json::from_slice(&text).map_err(|err| format!("{}: not a worker's result: {err}", file.display()))?;
        total.absorb(&result);
    }
    let latency = report::Quantiles::of(&total.histogram);
    println!(
        "{:.0} ops/s, p50 {:.1} µs, p99 {:.1} µs, {} errors",
        total.ops_per_sec(),
        latency.p50_us,
        latency.p99_us,
        total.errors
    );
    Ok(())
}

fn main() {
    let args = Args::parse();
    let result = match args.command {
        Cmd::Run(run_args) => run(&run_args),
        Cmd::Worker(worker_args) => worker(&worker_args),
        Cmd::CasIncrement(CounterArgs { socket, db, key, count }) => cas_increment(socket, &db, &key, count),
        Cmd::ForkCheck { socket, rounds } => fork_check(socket, rounds),
        Cmd::ForkCloseCheck { socket } => fork_close_check(socket),
        Cmd::EchoServer { socket, shape } => contenders::echo_server(&socket, shape),
        Cmd::Summary { files } => summary(&files),
        Cmd::CounterAdd(CounterArgs { socket, db, key, count }) => counter_add(socket, &db, &key, count),
        Cmd::Memory { records, value_bytes, json } => memory::run(records, value_bytes).and_then(|report| {
            memory::print(&report);
            if let Some(path) = json {
                std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
            }
            Ok(())
        }),
        Cmd::SerializeWorker { socket, rounds, limit } => serialize_worker(socket, rounds, limit),
    };
    if let Err(err) = result {
        eprintln!("hints-bench: {err}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The most rounds `run` takes of a cell.
const ROUNDS_MAX: i64 = 100;

fn run(args: &RunArgs) -> Res<()> {
    let dirs = Dirs { disk: args.disk_dir.clone(), tmpfs: args.tmpfs_dir.clone() };
    let mut report = Report::new(std::env::args().collect::<Vec<_>>().join(" "), &args.contenders);
    let (mut started, mut failed) = start_all(args, &dirs, &mut report);
    failed.extend(measure(&started, args, &mut report));
    for (_, target) in &mut started {
        target.stop();
    }
    report.print(&format!(
        "{} CPUs; client processes; {} keys of {} bytes; {} rounds of {} s a contender in each cell, the median round shown; seed {}; on-disk files in {}, tmpfs files in {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        args.keys,
        args.value_bytes,
        args.rounds,
        args.seconds,
        args.seed,
        args.disk_dir.display(),
        args.tmpfs_dir.display()
    ));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if !failed.is_empty() {
        return Err(format!("{} failed; the report says where, and has what was measured", failed.join(", ")).into());
    }
    Ok(())
}

/// Starts every contender that is available here (the others are reported as skipped, with
/// the reason), fills it and checks it. One that fails any of the three is stopped and
/// reported as skipped, with the reason, and the others go on. Returns those running, and the
/// names of those that failed.
fn start_all(args: &RunArgs, dirs: &Dirs, report: &mut Report) -> (Vec<(Contender, Target)>, Vec<&'static str>) {
    let (mut started, mut failed) = (Vec::new(), Vec::new());
    for &contender in &args.contenders {
        if let Some(reason) = contender.unavailable(dirs) {
            eprintln!("hints-bench: {} skipped: {reason}", contender.name());
            report.skip(contender, reason);
            continue;
        }
        match start_one(contender, args, dirs) {
            Ok(target) => started.push((contender, target)),
            Err(err) => {
                let reason = format!("failed before the first cell: {err}");
                eprintln!("hints-bench: {} {reason}", contender.name());
                report.skip(contender, reason);
                failed.push(contender.name());
            }
        }
    }
    (started, failed)
}

/// Starts `contender`, then fills and checks it; stopped again if either fails.
fn start_one(contender: Contender, args: &RunArgs, dirs: &Dirs) -> Res<Target> {
    let mut target = Target::start(contender, dirs)?;
    if contender == Contender::Echo {
        return Ok(target);
    }
    let ready = fill(contender, &target.path, args.keys, args.value_bytes).and_then(|()| {
        let check =
            worker_command(&target, contender, Workload::Mix, KeyDist::Uniform, args).arg("--check").output()?;
        if check.status.success() {
            return Ok(());
        }
        Err(format!("its check failed: {}", String::from_utf8_lossy(&check.stderr).trim()).into())
    });
    match ready {
        Ok(()) => Ok(target),
        Err(err) => {
            target.stop();
            Err(err)
        }
    }
}

/// Runs every cell (workload and key distribution, pipeline depth, client count) over the
/// contenders that take it, turn by turn, `args.rounds` times; the echo floor runs beside each
/// workload, so that every ratio to it is taken from the same minutes. A contender that fails
/// a turn is reported as skipped, with the reason, and left out of the cells after; the cells
/// measured before it failed are kept. Returns the names of those that failed.
fn measure(started: &[(Contender, Target)], args: &RunArgs, report: &mut Report) -> Vec<&'static str> {
    let mut failed = vec![false; started.len()];
    for &workload in &args.workloads {
        let dists = if workload.has_key_dist() { &args.keys_dist[..] } else { &[KeyDist::Uniform] };
        for &dist in dists {
            for &depth in &args.pipeline {
                for &clients in &args.clients {
                    let here: Vec<usize> = (0..started.len())
                        .filter(|&at| !failed[at] && (depth == 1 || started[at].0.pipelines()))
                        .collect();
                    let place = Place { workload, dist, clients, depth };
                    measure_cell(started, &here, place, args, report, &mut failed);
                }
            }
        }
    }
    started.iter().zip(failed).filter(|(_, failed)| *failed).map(|((contender, _), _)| contender.name()).collect()
}

/// Where in the matrix a cell is.
#[derive(Clone, Copy)]
struct Place {
    workload: Workload,
    dist: KeyDist,
    clients: u32,
    depth: usize,
}

/// One cell: the contenders `here` (indices into `started`) take their turns, round after
/// round, and each that did not fail gets its median round into the report. One that fails
/// is reported as skipped, marked in `failed`, and its rounds of this cell are dropped.
fn measure_cell(
    started: &[(Contender, Target)],
    here: &[usize],
    place: Place,
    args: &RunArgs,
    report: &mut Report,
    failed: &mut [bool],
) {
    let Place { workload, dist, clients, depth } = place;
    let beside = workload_label(workload, dist);
    let mut rounds: Vec<Vec<Cell>> = here.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds as usize {
        for turn in turns(here.len(), round) {
            let (contender, target) = &started[here[turn]];
            if failed[here[turn]] {
                continue;
            }
            let ran = (*contender != Contender::Echo).then_some(workload);
            match run_cell(target, *contender, ran, dist, clients, depth, args) {
                Ok(cell) => rounds[turn].push(cell),
                Err(err) => {
                    let reason = format!("failed in {beside}, clients {clients}, depth {depth}: {err}");
                    eprintln!("hints-bench: {} {reason}", contender.name());
                    report.skip(*contender, reason);
                    failed[here[turn]] = true;
                }
            }
        }
    }
    for (&at, cells) in here.iter().zip(rounds) {
        if failed[at] {
            continue;
        }
        let mut cell = Cell::median(cells);
        if started[at].0 == Contender::Echo {
            cell.beside = Some(beside.clone());
        }
        report.cells.push(cell);
    }
}

/// The order of the turns of `count` contenders in round `round`: from contender `round`
/// (modulo `count`) on, forward on even rounds and backward on odd ones, so that each goes
/// first in turn and none follows the same one two rounds running (a turn may leave the
/// machine warm, or its disk busy, for the next).
fn turns(count: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |turn| if round % 2 == 1 { (round + count - turn) % count } else { (round + turn) % count })
}

/// A workload as the report names it: `mix/uniform`, `ratelimit`.
fn workload_label(workload: Workload, dist: KeyDist) -> String {
    if workload.has_key_dist() { format!("{}/{}", workload.name(), dist.name()) } else { workload.name().to_owned() }
}

fn worker_command(target: &Target, contender: Contender, workload: Workload, dist: KeyDist, args: &RunArgs) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap_or_else(|_| "hints-bench".into()));
    command
        .arg("worker")
        .args(["--contender", contender.name()])
        .arg("--target")
        .arg(&target.path)
        .args(["--workload", workload.name()])
        .args(["--keys-dist", dist.name()])
        .args(["--keys", &args.keys.to_string()])
        .args(["--value-bytes", &args.value_bytes.to_string()]);
    command
}

/// One round of one contender in a cell: `clients` worker processes for `args.seconds` from a
/// common start.
fn run_cell(
    target: &Target,
    contender: Contender,
    workload: Option<Workload>,
    dist: KeyDist,
    clients: u32,
    depth: usize,
    args: &RunArgs,
) -> Res<Cell> {
    let start_at_ms = unix_ms() + 300;
    let server_pid = target.server.as_ref().map(Child::id);
    let server_cpu = || server_pid.map_or(Ok(0.0), process_cpu_secs);
    let cpu_before = server_cpu()?;
    let children_before = children_cpu_secs();
    let mut workers = Vec::new();
    for index in 0..clients {
        let child = worker_command(target, contender, workload.unwrap_or(Workload::Mix), dist, args)
            .args(["--depth", &depth.to_string()])
            .args(["--start-at-ms", &start_at_ms.to_string()])
            .args(["--seconds", &args.seconds.to_string()])
            .args(["--seed", &(args.seed.wrapping_mul(1_000_003) + u64::from(index)).to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        workers.push(child);
    }
    let mut total = WorkerResult::default();
    // Every worker is waited for, even after one failed, so that none runs into the next turn.
    let outputs: Vec<std::io::Result<std::process::Output>> =
        workers.into_iter().map(Child::wait_with_output).collect();
    for output in outputs {
        let output = output?;
        if !output.status.success() {
            return Err(format!("a {} worker failed with {}", contender.name(), output.status).into());
        }
        let result: WorkerResult = serde_json::from_slice(&output.stdout)?;
        total.absorb(&result);
    }
    let cpu = server_cpu()? - cpu_before + children_cpu_secs() - children_before;
    let workload = workload.map_or_else(|| "echo".to_owned(), |workload| workload_label(workload, dist));
    Ok(Cell::new(contender, workload, clients, depth, &total, cpu))
}

/// Fills the databases the workloads read with their records.
fn fill(contender: Contender, target: &std::path::Path, keys: u32, value_bytes: usize) -> Res<()> {
    for db in ["bench", "seen"] {
        let records = workload::fill_records(db, keys, value_bytes);
        contenders::open(contender, target, db)?.fill(&records)?;
    }
    Ok(())
}

/// A worker process: opens the contender, waits for the common start, then makes batches of
/// `depth` accesses until the time is up, and prints its [`WorkerResult`] as JSON.
fn worker(args: &WorkerArgs) -> Res<()> {
    if args.fill {
        return fill(args.contender, &args.target, args.keys, args.value_bytes);
    }
    if args.check {
        let open = |db: &str| contenders::open(args.contender, &args.target, db);
        return workload::check(&open, args.value_bytes);
    }
    let depth = args.depth.max(1);
    let mut tally = Tally { depth: depth as u64, ..Tally::default() };
    if args.contender == Contender::Echo {
        let mut echo = contenders::echo_step(&args.target)?;
        timed(args, &mut tally, |tally| tally.time("echo", || Ok(if echo(depth) { 0 } else { depth as u64 })));
    } else {
        let mut store = contenders::open(args.contender, &args.target, args.workload.db())?;
        let mut generator = Generator::new(args.workload, args.keys_dist, args.keys, args.value_bytes, args.seed);
        let mut batch = Vec::with_capacity(depth);
        timed(args, &mut tally, |tally| {
            batch.clear();
            batch.extend((0..depth).map(|_| generator.next_access()));
            let kind = if depth == 1 { batch[0].kind() } else { "batch" };
            tally.time(kind, || store.batch(&batch))
        });
    }
    if let Some(err) = &tally.first_error {
        eprintln!("hints-bench worker: {} errors; the first: {err}", tally.result.errors);
    }
    println!("{}", serde_json::to_string(&tally.result)?);
    Ok(())
}

/// What a worker has measured so far.
#[derive(Debug, Default)]
struct Tally {
    depth: u64,
    result: WorkerResult,
    by_kind: BTreeMap<&'static str, Histogram>,
    first_error: Option<String>,
}

impl Tally {
    /// Times one batch; `access` returns how many of its accesses failed, and an error fails
    /// them all. Returns when the batch ended, which is also the run's clock.
    fn time(&mut self, kind: &'static str, access: impl FnOnce() -> Res<u64>) -> Instant {
        let t0 = Instant::now();
        let failed = access().unwrap_or_else(|err| {
            self.first_error.get_or_insert_with(|| err.to_string());
            self.depth
        });
        let ended = Instant::now();
        let nanos = ended.duration_since(t0).as_nanos() as u64;
        self.result.histogram.record(nanos);
        if self.depth == 1 {
            self.by_kind.entry(kind).or_default().record(nanos);
        }
        self.result.ops += self.depth;
        self.result.errors += failed;
        ended
    }
}

/// Runs `step` (one timed batch, returning when it ended) from the agreed start for the run's
/// time. The run's clock is the batches' own end times: a third clock reading per batch was 66
/// of a one-deep hintsd worker's 2 478 instructions a request (callgrind), and every contender
/// paid it alike.
fn timed(args: &WorkerArgs, tally: &mut Tally, mut step: impl FnMut(&mut Tally) -> Instant) {
    while unix_ms() < args.start_at_ms {
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    while step(tally) < until {}
    tally.result.elapsed_secs = started.elapsed().as_secs_f64();
    tally.result.by_kind = std::mem::take(&mut tally.by_kind).into_iter().map(|(k, h)| (k.to_owned(), h)).collect();
}

fn cas_increment(socket: PathBuf, db: &str, key: &str, count: u64) -> Res<()> {
    let mut client = contenders::hintsd_client(&socket);
    let db = DbName::new(db)?;
    let mut conflicts = 0u64;
    for _ in 0..count {
        loop {
            let current = client.get(&db, key.as_bytes())?;
            let (expected, n) = match &current {
                Some(record) => (Some(record.stamp), std::str::from_utf8(&record.value)?.parse::<u64>()?),
                None => (None, 0),
            };
            let next = (n + 1).to_string();
            match client.compare_and_set(&db, key.as_bytes(), expected, Some(next.as_bytes()))? {
                CasOutcome::Swapped(_) => break,
                CasOutcome::Conflict(_) => conflicts += 1,
            }
        }
    }
    println!("{conflicts}");
    Ok(())
}

fn counter_add(socket: PathBuf, db: &str, key: &str, count: u64) -> Res<()> {
    let mut client = contenders::hintsd_client(&socket);
    let db = DbName::new(db)?;
    let mut last = 0;
    for _ in 0..count {
        last = client.counter(&db, key.as_bytes(), 1, None, None)?;
    }
    println!("{last}");
    Ok(())
}

fn serialize_worker(socket: PathBuf, rounds: u32, limit: u32) -> Res<()> {
    let mut client = contenders::hintsd_client(&socket);
    let misc = DbName::new("misc")?;
    let inside = DbName::new("serialize_check")?;
    let (mut taken, mut most_inside) = (0u32, 0i64);
    for _ in 0..rounds {
        let slot = client.serialize_take(&misc, b"host-serialize-mx.example.net", limit)?;
        if !slot.held {
            std::thread::yield_now();
            continue;
        }
        taken += 1;
        let now_inside = client.counter(&inside, b"holders", 1, None, None)?;
        most_inside = most_inside.max(now_inside);
        if now_inside > i64::from(limit) {
            return Err(format!("{now_inside} holders at once with a limit of {limit}").into());
        }
        client.counter(&inside, b"holders", -1, None, None)?;
        client.serialize_release(&misc, b"host-serialize-mx.example.net")?;
    }
    println!("{taken} {most_inside}");
    Ok(())
}

/// How long `fork-close-check` waits for the slot the parent's closed client held.
const FORK_CLOSE_WAIT_MAX: Duration = Duration::from_secs(10);

fn fork_close_check(socket: PathBuf) -> Res<()> {
    let misc = DbName::new("misc")?;
    let mut holder = contenders::hintsd_client(&socket);
    if !holder.serialize_take(&misc, b"fork-close", 1)?.held {
        return Err("the slot was not free to begin with".into());
    }
    // SAFETY: single-threaded here, as in fork_check; the child only sleeps and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if pid == 0 {
        // Holds its copy of the parent's socket, untouched, until it is killed.
        std::thread::sleep(Duration::from_secs(60));
        std::process::exit(0);
    }
    drop(holder);
    // The daemon learns of the close on the connection's own lane, and a new connection may be
    // served on another before that lane has run: the slot must come free while the child
    // lives, not before the next request. The bound only ends a wait for a slot kept for good.
    let mut client = contenders::hintsd_client(&socket);
    let give_up = std::time::Instant::now() + FORK_CLOSE_WAIT_MAX;
    let freed = loop {
        if client.serialize_take(&misc, b"fork-close", 1)?.held {
            break true;
        }
        if std::time::Instant::now() >= give_up {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // SAFETY: ending the child forked above.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    if !freed {
        return Err("the parent closed its client but the slot stayed taken while the child lived".into());
    }
    println!("ok");
    Ok(())
}

fn fork_check(socket: PathBuf, rounds: u32) -> Res<()> {
    let mut client = contenders::hintsd_client(&socket);
    client.ping()?;
    let db = DbName::new("forkcheck")?;
    // SAFETY: this process is single-threaded here (no runtime, no threads started), so the
    // child may go on using the heap and the client.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let me = if pid == 0 { "child" } else { "parent" };
    let mut wrong = 0u32;
    for round in 0..rounds {
        let key = format!("{me}-{round}");
        let value = format!("{me}:{round}:{}", std::process::id());
        client.put(&db, key.as_bytes(), value.as_bytes())?;
        match client.get(&db, key.as_bytes())? {
            Some(record) if record.value == value.as_bytes() => {}
            _ => wrong += 1,
        }
    }
    if pid == 0 {
        std::process::exit(i32::from(wrong != 0));
    }
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let child_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if wrong != 0 || !child_ok {
        return Err(format!("parent saw {wrong} wrong answers; child exit status {status}").into());
    }
    println!("ok");
    Ok(())
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// User plus system CPU seconds of a running process, from /proc.
fn process_cpu_secs(pid: u32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').ok_or("odd /proc stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the name.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks as f64 / per_sec)
}

/// CPU seconds of all reaped children of this process.
fn children_cpu_secs() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::turns;

    #[test]
    fn each_round_takes_every_contender_once_and_none_always_follows_the_same_one() {
        for count in 1..=8 {
            let rounds: Vec<Vec<usize>> = (0..2 * count).map(|round| turns(count, round).collect()).collect();
            for order in &rounds {
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..count).collect::<Vec<_>>(), "{order:?}");
            }
            // No contender follows the same one in two rounds running, and each goes first.
            let pairs = |order: &Vec<usize>| order.windows(2).map(|pair| (pair[0], pair[1])).collect::<Vec<_>>();
            for two in rounds.windows(2) {
                let (before, after) = (pairs(&two[0]), pairs(&two[1]));
                assert!(before.iter().all(|pair| !after.contains(pair)), "{two:?}");
            }
            let firsts: std::collections::BTreeSet<usize> = rounds.iter().map(|order| order[0]).collect();
            assert_eq!(firsts.len(), count, "{rounds:?}");
        }
    }
}
