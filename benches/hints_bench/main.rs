//! `hints-bench`: a load generator that runs client *processes* against hintsd and reports
//! throughput, latency percentiles and CPU per operation; also the small worker programs the
//! end-to-end tests run as separate processes (compare-and-set increments, fork checks).
//!
//! `hints-bench run --spawn-daemon --clients 1,4 --ops get,put` starts a private hintsd, fills
//! it, and for each (operation, client count) starts that many worker processes that run for
//! a fixed time from a common start instant, then merges their histograms.

mod histogram;
mod memory;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use hints_client::{CasOutcome, Client, ClientConfig};
use hints_proto::{DbName, Request};
use serde::{Deserialize, Serialize};

use crate::histogram::Histogram;

/// Keys in the benchmark database are `bench-<n>`.
const KEY_PREFIX: &str = "bench-";
/// Requests per pipelined batch when filling the database.
const FILL_BATCH: usize = 100;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks and test workers for hintsd")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the benchmark matrix and print a table.
    Run(RunArgs),
    /// One benchmark client process (started by `run`); prints its result as JSON.
    Worker(WorkerArgs),
    /// Increment a counter held as a decimal value COUNT times by compare-and-set.
    CasIncrement {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        db: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        count: u64,
    },
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
    CounterAdd {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        db: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        count: u64,
    },
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
    },
    /// Use one client from a parent and a forked child at once; exit 0 if every answer was right.
    ForkCheck {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long, default_value_t = 2000)]
        rounds: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Get,
    Put,
    /// 80 % get, 20 % put.
    Mix,
}

/// What the workers talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Contender {
    /// hintsd as configured by default: connections run on their database's thread.
    Hintsd,
    /// hintsd with `connection_placement = "pool"`: requests cross threads.
    HintsdPool,
    /// The floor: a bare Unix-socket echo server (a blocked thread per connection) that answers
    /// each request with a reply the size of a get's; no work at all.
    Echo,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Contenders to measure, comma-separated; each gets a private server started for it.
    #[arg(long, value_delimiter = ',', default_value = "hintsd,hintsd-pool,echo")]
    contenders: Vec<Contender>,
    /// Client process counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    clients: Vec<u32>,
    /// Operations to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "get,put")]
    ops: Vec<Op>,
    /// Seconds each (operation, clients) cell runs.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    #[arg(long, default_value_t = 10_000)]
    keys: u32,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct WorkerArgs {
    #[arg(long)]
    socket: PathBuf,
    #[arg(long, value_enum)]
    contender: Contender,
    #[arg(long, value_enum)]
    op: Op,
    #[arg(long)]
    keys: u32,
    #[arg(long)]
    value_bytes: usize,
    /// Start at this Unix time in milliseconds, so all workers start together.
    #[arg(long)]
    start_at_ms: u64,
    #[arg(long)]
    seconds: f64,
    #[arg(long)]
    seed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WorkerResult {
    ops: u64,
    errors: u64,
    elapsed_secs: f64,
    histogram: Histogram,
}

#[derive(Debug, Serialize)]
struct Cell {
    contender: Contender,
    op: Op,
    clients: u32,
    ops_per_sec: f64,
    errors: u64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    cpu_us_per_op: f64,
}

fn main() {
    let args = Args::parse();
    let result = match args.command {
        Cmd::Run(run_args) => run(&run_args),
        Cmd::Worker(worker_args) => worker(&worker_args),
        Cmd::CasIncrement { socket, db, key, count } => cas_increment(socket, &db, &key, count),
        Cmd::ForkCheck { socket, rounds } => fork_check(socket, rounds),
        Cmd::EchoServer { socket } => echo_server(&socket),
        Cmd::CounterAdd { socket, db, key, count } => counter_add(socket, &db, &key, count),
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

fn bench_db() -> DbName {
    DbName::new("bench").expect("valid name")
}

fn client(socket: PathBuf) -> Client {
    Client::new(ClientConfig::from_environment().with_socket(socket).with_timeout(Duration::from_secs(5)))
}

fn run(args: &RunArgs) -> Res<()> {
    let mut cells = Vec::new();
    for &contender in &args.contenders {
        let mut server = Server::spawn(contender)?;
        let ops: &[Op] = if contender == Contender::Echo { &[Op::Get] } else { &args.ops };
        if contender != Contender::Echo {
            fill(&server.socket, args.keys, args.value_bytes)?;
        }
        for &op in ops {
            for &clients in &args.clients {
                cells.push(run_cell(&server, contender, op, clients, args)?);
            }
        }
        server.stop();
    }
    print_table(&cells, args);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&cells)?)?;
    }
    Ok(())
}

/// A server process started for one contender, in a private directory.
struct Server {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Server {
    fn spawn(contender: Contender) -> Res<Server> {
        let dir = std::env::temp_dir().join(format!("hints-bench-{}-{contender:?}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("server.sock");
        let mut command = match contender {
            Contender::Echo => {
                let mut command = Command::new(std::env::current_exe()?);
                command.arg("echo-server");
                command
            }
            Contender::Hintsd | Contender::HintsdPool => {
                let hintsd = std::env::current_exe()?.with_file_name("hintsd");
                if !hintsd.exists() {
                    return Err(format!(
                        "{} not found; build it first (cargo build --release --bins)",
                        hintsd.display()
                    )
                    .into());
                }
                let placement = if contender == Contender::HintsdPool { "pool" } else { "database" };
                let config = dir.join("hintsd.toml");
                std::fs::write(&config, format!("connection_placement = \"{placement}\"\n"))?;
                let mut command = Command::new(hintsd);
                command.arg("--config").arg(config).env("HINTSD_LOG", "warn");
                command
            }
        };
        let child = command.arg("--socket").arg(&socket).stdin(Stdio::null()).stdout(Stdio::null()).spawn()?;
        let server = Server { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !server.answers(contender) {
            if Instant::now() > deadline {
                return Err(format!("the {contender:?} server did not answer").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn answers(&self, contender: Contender) -> bool {
        match contender {
            Contender::Echo => EchoClient::connect(&self.socket).and_then(|mut echo| echo.round_trip()).is_ok(),
            _ => client(self.socket.clone()).ping().is_ok(),
        }
    }

    fn stop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn key_of(n: u32) -> Vec<u8> {
    format!("{KEY_PREFIX}{n}").into_bytes()
}

fn fill(socket: &std::path::Path, keys: u32, value_bytes: usize) -> Res<()> {
    let mut client = client(socket.to_owned());
    let value = vec![b'v'; value_bytes];
    let all: Vec<u32> = (0..keys).collect();
    for chunk in all.chunks(FILL_BATCH) {
        let requests: Vec<Request> =
            chunk.iter().map(|&n| Request::Put { db: bench_db(), key: key_of(n), value: value.clone() }).collect();
        client.pipeline(&requests)?;
    }
    Ok(())
}

fn run_cell(server: &Server, contender: Contender, op: Op, clients: u32, args: &RunArgs) -> Res<Cell> {
    let start_at_ms = unix_ms() + 300;
    let exe = std::env::current_exe()?;
    let server_pid = server.child.id();
    let cpu_before = process_cpu_secs(server_pid)?;
    let children_before = children_cpu_secs();
    let mut workers = Vec::new();
    for index in 0..clients {
        let child = Command::new(&exe)
            .arg("worker")
            .arg("--socket")
            .arg(&server.socket)
            .args(["--contender", contender_name(contender)])
            .args(["--op", op_name(op)])
            .args(["--keys", &args.keys.to_string()])
            .args(["--value-bytes", &args.value_bytes.to_string()])
            .args(["--start-at-ms", &start_at_ms.to_string()])
            .args(["--seconds", &args.seconds.to_string()])
            .args(["--seed", &(u64::from(index) * 7919 + 1).to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        workers.push(child);
    }
    let mut histogram = Histogram::default();
    let (mut ops, mut errors, mut elapsed) = (0u64, 0u64, 0f64);
    for child in workers {
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(format!("a worker failed with {}", output.status).into());
        }
        let result: WorkerResult = serde_json::from_slice(&output.stdout)?;
        histogram.merge(&result.histogram);
        ops += result.ops;
        errors += result.errors;
        elapsed = elapsed.max(result.elapsed_secs);
    }
    let client_cpu = children_cpu_secs() - children_before;
    let server_cpu = process_cpu_secs(server_pid)? - cpu_before;
    let cpu_us_per_op = (server_cpu + client_cpu) * 1e6 / ops.max(1) as f64;
    let us = |q| histogram.quantile_nanos(q) as f64 / 1000.0;
    Ok(Cell {
        contender,
        op,
        clients,
        ops_per_sec: ops as f64 / elapsed.max(1e-9),
        errors,
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        cpu_us_per_op,
    })
}

fn contender_name(contender: Contender) -> &'static str {
    match contender {
        Contender::Hintsd => "hintsd",
        Contender::HintsdPool => "hintsd-pool",
        Contender::Echo => "echo",
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Get => "get",
        Op::Put => "put",
        Op::Mix => "mix",
    }
}

fn print_table(cells: &[Cell], args: &RunArgs) {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!(
        "{cpus} CPUs; blocking client processes; {} keys of {} bytes; {} s a cell",
        args.keys, args.value_bytes, args.seconds
    );
    println!();
    println!("| contender | op | clients | ops/s | p50 µs | p99 µs | p99.9 µs | CPU µs/op | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for cell in cells {
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            contender_name(cell.contender),
            if cell.contender == Contender::Echo { "echo" } else { op_name(cell.op) },
            cell.clients,
            cell.ops_per_sec,
            cell.p50_us,
            cell.p99_us,
            cell.p999_us,
            cell.cpu_us_per_op,
            cell.errors
        );
    }
}

fn worker(args: &WorkerArgs) -> Res<()> {
    if args.contender == Contender::Echo {
        return echo_worker(args);
    }
    let mut client = client(args.socket.clone());
    client.ping()?;
    let db = bench_db();
    let value = vec![b'w'; args.value_bytes];
    let mut rng = args.seed | 1;
    let mut histogram = Histogram::default();
    let (mut ops, mut errors) = (0u64, 0u64);
    while unix_ms() < args.start_at_ms {
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    let run_for = Duration::from_secs_f64(args.seconds);
    while started.elapsed() < run_for {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = key_of((rng % u64::from(args.keys)) as u32);
        let is_put = match args.op {
            Op::Get => false,
            Op::Put => true,
            Op::Mix => rng % 10 < 2,
        };
        let t0 = Instant::now();
        let ok =
            if is_put { client.put(&db, &key, &value).is_ok() } else { matches!(client.get(&db, &key), Ok(Some(_))) };
        histogram.record(t0.elapsed().as_nanos() as u64);
        ops += 1;
        errors += u64::from(!ok);
    }
    let result = WorkerResult { ops, errors, elapsed_secs: started.elapsed().as_secs_f64(), histogram };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// Bytes of an echo request and reply: about a get request and a get reply of a 100-byte value.
const ECHO_REQUEST_BYTES: usize = 24;
const ECHO_REPLY_BYTES: usize = 130;

struct EchoClient {
    stream: std::os::unix::net::UnixStream,
    reply: Vec<u8>,
}

impl EchoClient {
    fn connect(socket: &std::path::Path) -> std::io::Result<EchoClient> {
        let stream = std::os::unix::net::UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(EchoClient { stream, reply: vec![0; ECHO_REPLY_BYTES] })
    }

    fn round_trip(&mut self) -> std::io::Result<()> {
        use std::io::{Read, Write};
        self.stream.write_all(&[7; ECHO_REQUEST_BYTES])?;
        self.stream.read_exact(&mut self.reply)
    }
}

fn echo_worker(args: &WorkerArgs) -> Res<()> {
    let mut echo = EchoClient::connect(&args.socket)?;
    let mut histogram = Histogram::default();
    let (mut ops, mut errors) = (0u64, 0u64);
    while unix_ms() < args.start_at_ms {
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    let run_for = Duration::from_secs_f64(args.seconds);
    while started.elapsed() < run_for {
        let t0 = Instant::now();
        let ok = echo.round_trip().is_ok();
        histogram.record(t0.elapsed().as_nanos() as u64);
        ops += 1;
        errors += u64::from(!ok);
    }
    let result = WorkerResult { ops, errors, elapsed_secs: started.elapsed().as_secs_f64(), histogram };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

fn echo_server(socket: &std::path::Path) -> Res<()> {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(socket)?;
    for stream in listener.incoming() {
        let mut stream = stream?;
        std::thread::spawn(move || {
            let mut request = [0u8; ECHO_REQUEST_BYTES];
            let reply = [9u8; ECHO_REPLY_BYTES];
            while stream.read_exact(&mut request).is_ok() {
                if stream.write_all(&reply).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

fn cas_increment(socket: PathBuf, db: &str, key: &str, count: u64) -> Res<()> {
    let mut client = client(socket);
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
    let mut client = client(socket);
    let db = DbName::new(db)?;
    let mut last = 0;
    for _ in 0..count {
        last = client.counter(&db, key.as_bytes(), 1, None, None)?;
    }
    println!("{last}");
    Ok(())
}

fn serialize_worker(socket: PathBuf, rounds: u32, limit: u32) -> Res<()> {
    let mut client = client(socket);
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

fn fork_check(socket: PathBuf, rounds: u32) -> Res<()> {
    let mut client = client(socket);
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
