//! `hints-bench memory`: the daemon's resident memory holding N records in one database, and
//! the time to write that database's snapshot and to load it again at start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hints_client::{Client, ClientConfig};
use hints_proto::{DbName, Request};

use crate::Res;

/// Requests per pipelined batch while filling.
const FILL_BATCH: usize = 1000;

/// What one memory run measured.
#[derive(Debug, serde::Serialize)]
pub struct MemoryReport {
    pub records: u64,
    pub value_bytes: usize,
    pub rss_empty_mib: f64,
    pub rss_full_mib: f64,
    pub rss_bytes_per_record: f64,
    pub fill_secs: f64,
    pub snapshot_write_ms: f64,
    pub snapshot_file_mib: f64,
    pub restart_ready_ms: f64,
    pub rss_after_load_mib: f64,
}

pub fn run(records: u64, value_bytes: usize) -> Res<MemoryReport> {
    let hintsd = std::env::current_exe()?.with_file_name("hintsd");
    let dir = std::env::temp_dir().join(format!("hints-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("hintsd.sock");
    let snapshots = dir.join("snapshots");
    let db = DbName::new("bench")?;

    let (mut daemon, _) = start(&hintsd, &socket, &snapshots)?;
    let mut client = Client::new(ClientConfig::new(&socket).with_timeout(Duration::from_secs(60)));
    let rss_empty = rss_mib(daemon.id())?;
    let value = vec![b'v'; value_bytes];
    let filled = Instant::now();
    let mut batch = Vec::with_capacity(FILL_BATCH);
    for n in 0..records {
        batch.push(Request::Put { db: db.clone(), key: key_of(n), value: value.clone() });
        if batch.len() == FILL_BATCH || n + 1 == records {
            client.pipeline(&batch)?;
            batch.clear();
        }
    }
    let fill_secs = filled.elapsed().as_secs_f64();
    let held = client.stats(Some(&db))?[0].records;
    if held != records {
        return Err(format!("the daemon holds {held} records, not {records}").into());
    }
    let rss_full = rss_mib(daemon.id())?;

    let written = Instant::now();
    client.snapshot(Some(&db))?;
    let snapshot_write_ms = written.elapsed().as_secs_f64() * 1e3;
    let snapshot_file_mib = std::fs::metadata(snapshots.join("bench.snapshot"))?.len() as f64 / (1 << 20) as f64;
    stop(&mut daemon);

    let (mut daemon, restart_ready) = start(&hintsd, &socket, &snapshots)?;
    let mut client = Client::new(ClientConfig::new(&socket).with_timeout(Duration::from_secs(60)));
    let loaded = client.stats(Some(&db))?[0].records;
    if loaded != records {
        return Err(format!("the restarted daemon loaded {loaded} records, not {records}").into());
    }
    let rss_after_load = rss_mib(daemon.id())?;
    stop(&mut daemon);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(MemoryReport {
        records,
        value_bytes,
        rss_empty_mib: rss_empty,
        rss_full_mib: rss_full,
        rss_bytes_per_record: (rss_full - rss_empty) * (1 << 20) as f64 / records as f64,
        fill_secs,
        snapshot_write_ms,
        snapshot_file_mib,
        restart_ready_ms: restart_ready.as_secs_f64() * 1e3,
        rss_after_load_mib: rss_after_load,
    })
}

pub fn print(report: &MemoryReport) {
    println!(
        "| records | value bytes | RSS empty MiB | RSS full MiB | bytes/record | snapshot write ms | snapshot MiB | restart to ready ms | RSS after load MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {:.1} | {:.0} | {:.1} |",
        report.records,
        report.value_bytes,
        report.rss_empty_mib,
        report.rss_full_mib,
        report.rss_bytes_per_record,
        report.snapshot_write_ms,
        report.snapshot_file_mib,
        report.restart_ready_ms,
        report.rss_after_load_mib
    );
}

/// A key shaped like Exim's retry keys (about 30 bytes).
fn key_of(n: u64) -> Vec<u8> {
    format!("T:mx{n}.example.net:192.0.2.{}", n % 256).into_bytes()
}

/// Starts hintsd and returns it with the time until it answered (which includes loading
/// snapshots, done before the socket is served).
fn start(hintsd: &Path, socket: &Path, snapshots: &Path) -> Res<(Child, Duration)> {
    let started = Instant::now();
    let child = Command::new(hintsd)
        .arg("--socket")
        .arg(socket)
        .arg("--snapshot-dir")
        .arg(snapshots)
        .env("HINTSD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let mut client = Client::new(ClientConfig::new(socket).with_timeout(Duration::from_secs(5)));
    let deadline = started + Duration::from_secs(300);
    while client.ping().is_err() {
        if Instant::now() > deadline {
            return Err("hintsd did not answer".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((child, started.elapsed()))
}

fn stop(child: &mut Child) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
}

/// Resident memory of a process, from /proc.
fn rss_mib(pid: u32) -> Res<f64> {
    let status = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/status")))?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).ok_or("no VmRSS")?;
    let kib: f64 = line.split_whitespace().nth(1).ok_or("odd VmRSS")?.parse()?;
    Ok(kib / 1024.0)
}
