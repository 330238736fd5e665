//! The benchmark harness runs every contender for a moment and its numbers add up, so it
//! cannot rot between benchmark runs. Before measuring a contender, `hints-bench run` checks it
//! in a separate worker process (`worker --check`): what was filled reads back, a put reads
//! back, a read-modify-write applies, and the ratelimit and seen accesses store Exim's
//! records. A contender that fails to start, its fill or its check is reported as skipped with
//! the reason, the others are measured, and the run fails. No timing is asserted.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{HINTS_BENCH, stderr, stdout};

const CONTENDERS: [&str; 11] = [
    "hintsd",
    "hintsd-ring",
    "hintsd-pool",
    "echo",
    "exim-gdbm-disk",
    "exim-gdbm-tmpfs",
    "exim-bdb-disk",
    "exim-bdb-tmpfs",
    "sqlite",
    "lmdb",
    "redis",
];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[test]
fn every_contender_stores_what_it_is_given_and_reports_operations_without_errors() {
    common::hintsd_bin(); // hints-bench starts the hintsd that sits beside it
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let output = Command::new(HINTS_BENCH)
        .args(["run", "--clients", "2", "--workloads", "mix,ratelimit,seen", "--keys-dist", "zipf"])
        .args(["--pipeline", "1,4", "--seconds", "0.1", "--rounds", "2", "--keys", "50", "--disk-dir"])
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let cells = report["cells"].as_array().unwrap();

    // Only a contender whose server or tmpfs is missing here may be skipped.
    let mut skipped = BTreeSet::new();
    for skip in report["skipped"].as_array().unwrap() {
        let name = skip["contender"].as_str().unwrap();
        let allowed = match name {
            "redis" => !on_path("redis-server"),
            "exim-gdbm-tmpfs" | "exim-bdb-tmpfs" => !std::path::Path::new("/dev/shm").is_dir(),
            _ => false,
        };
        assert!(allowed, "{name} was skipped: {skip}");
        skipped.insert(name);
    }
    for name in CONTENDERS.iter().filter(|name| !skipped.contains(*name)) {
        let workloads: BTreeSet<&str> =
            cells.iter().filter(|c| c["contender"] == *name).map(|c| c["workload"].as_str().unwrap()).collect();
        let expected: BTreeSet<&str> =
            if *name == "echo" { ["echo"].into() } else { ["mix/zipf", "ratelimit", "seen"].into() };
        assert_eq!(workloads, expected, "{name}");
    }
    // Pipelined cells for hintsd (and the echo floor) only.
    let pipelined: BTreeSet<&str> =
        cells.iter().filter(|c| c["depth"] == 4).map(|c| c["contender"].as_str().unwrap()).collect();
    assert_eq!(pipelined, ["echo", "hintsd", "hintsd-ring"].into());
    // The echo ran beside each workload, in turn with the others.
    let beside: BTreeSet<&str> = cells
        .iter()
        .filter(|c| c["contender"] == "echo" && c["depth"] == 1)
        .map(|c| c["beside"].as_str().unwrap())
        .collect();
    assert_eq!(beside, ["mix/zipf", "ratelimit", "seen"].into());
    for cell in cells {
        // Each cell is the lower median round of its two.
        let rounds: Vec<f64> =
            cell["rounds"].as_array().unwrap().iter().map(|r| r["ops_per_sec"].as_f64().unwrap()).collect();
        assert_eq!(rounds.len(), 2, "{cell}");
        assert_eq!(cell["ops_per_sec"].as_f64(), Some(rounds[0].min(rounds[1])), "{cell}");
        assert!(cell["ops_per_sec"].as_f64().unwrap() > 0.0, "{cell}");
        assert_eq!(cell["errors"], 0, "{cell}");
        assert!(cell["p50_us"].as_f64().unwrap() <= cell["p99_us"].as_f64().unwrap(), "{cell}");
    }
    let table = stdout(&output);
    assert!(table.contains("| hintsd | mix/zipf | 2 | 1 |"), "{table}");
    assert!(table.contains("hintsd against each contender"), "{table}");
    assert!(table.contains("hintsd-ring against each contender"), "{table}");
    assert!(table.contains("| echo | echo (beside ratelimit) | 2 | 4 |"), "{table}");
}

#[test]
fn a_worker_fills_a_running_daemon_as_run_does_so_that_its_check_passes() {
    let daemon = common::Daemon::start(&["--no-snapshot"]);
    let worker = |flag: &str| {
        Command::new(HINTS_BENCH)
            .args(["worker", "--contender", "hintsd", "--keys", "50", flag, "--target"])
            .arg(&daemon.socket)
            .output()
            .unwrap()
    };
    let unfilled = worker("--check");
    assert!(!unfilled.status.success(), "the check passed on an empty daemon: {}", stdout(&unfilled));
    assert!(stderr(&unfilled).contains("a filled record reads back"), "{}", stderr(&unfilled));
    let fill = worker("--fill");
    assert!(fill.status.success(), "{}{}", stdout(&fill), stderr(&fill));
    let check = worker("--check");
    assert!(check.status.success(), "{}{}", stdout(&check), stderr(&check));
}

/// The children of process `pid`, as the kernel lists them.
fn children(pid: u32) -> Vec<u32> {
    let listed = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    listed.split_whitespace().filter_map(|child| child.parse().ok()).collect()
}

/// A process's command line, its arguments joined by spaces.
fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|line| String::from_utf8_lossy(&line).replace('\0', " "))
        .unwrap_or_default()
}

/// Checks that a run failed, and because of `contender` alone, listed as skipped with a reason
/// that starts with `reason`; returns the cells the report has.
fn cells_of_a_run_failed_by(
    output: &std::process::Output,
    json: &std::path::Path,
    contender: &str,
    reason: &str,
) -> Vec<serde_json::Value> {
    assert!(!output.status.success(), "a contender failed, so the run fails: {}", stdout(output));
    let said = format!("{contender} failed; the report says where, and has what was measured");
    assert!(stderr(output).contains(&said), "{}", stderr(output));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["contender"], contender);
    let given = skipped[0]["reason"].as_str().unwrap();
    assert!(given.starts_with(reason), "{given}");
    report["cells"].as_array().unwrap().clone()
}

#[test]
fn a_contender_that_dies_in_the_middle_is_reported_failed_and_the_others_finish_the_run() {
    common::hintsd_bin();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    // Cells of 1 and 2 clients: hintsd's workers of the first cell are its first 2 (one a
    // round), those of the second its 3rd to 6th.
    let mut run = Command::new(HINTS_BENCH)
        .args(["run", "--contenders", "hintsd,echo", "--clients", "1,2,1,2", "--workloads", "mix"])
        .args(["--keys-dist", "uniform", "--pipeline", "1", "--seconds", "0.3", "--rounds", "2", "--keys", "50"])
        .arg("--json")
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The daemon is killed as the first worker of the second cell starts (workers run 0.6 s
    // and more, this looks every 10 ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut workers = BTreeSet::new();
    let daemon = loop {
        assert!(std::time::Instant::now() < deadline, "hintsd's third worker never came");
        assert!(run.try_wait().unwrap().is_none(), "the run ended before hintsd's third worker");
        let running = children(run.id());
        workers.extend(running.iter().copied().filter(|&child| {
            let line = command_line(child);
            line.contains(" worker ") && line.contains("--contender hintsd ") && !line.contains("--check")
        }));
        let daemon = running.iter().copied().find(|&child| command_line(child).contains("/hintsd "));
        if let (3.., Some(daemon)) = (workers.len(), daemon) {
            break daemon;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let output = run.wait_with_output().unwrap();
    let cells = cells_of_a_run_failed_by(&output, &json, "hintsd", "failed in mix/uniform, clients 2, depth 1: ");
    let hintsd: Vec<&serde_json::Value> = cells.iter().filter(|c| c["contender"] == "hintsd").collect();
    assert_eq!(hintsd.len(), 1, "the first cell is kept, the second's half-run rounds are not: {hintsd:?}");
    assert_eq!((&hintsd[0]["clients"], &hintsd[0]["errors"]), (&1.into(), &0.into()), "{hintsd:?}");
    assert_eq!(cells.iter().filter(|c| c["contender"] == "echo").count(), 4, "the echo ran every cell: {cells:?}");
    assert!(stdout(&output).contains("| hintsd | skipped: failed in mix/uniform, clients 2"), "{}", stdout(&output));
}

/// A server that is installed but will not run (here a `redis-server` that exits at once, as
/// one with a bad configuration or no permissions would) costs the run that contender only.
#[test]
fn a_contender_that_cannot_start_is_reported_failed_and_the_others_are_measured() {
    common::hintsd_bin();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let broken = bin.join("redis-server");
    std::fs::write(&broken, "#!/bin/sh\necho 'redis-server: cannot start' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path =
        std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())))
            .unwrap();
    let json = dir.path().join("report.json");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let output = Command::new(HINTS_BENCH)
        .env("PATH", path)
        .env("TMPDIR", &tmp)
        .args(["run", "--contenders", "hintsd,redis,echo", "--clients", "1", "--workloads", "mix"])
        .args(["--keys-dist", "uniform", "--pipeline", "1", "--seconds", "0.2", "--rounds", "1", "--keys", "50"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let reason = "failed before the first cell: the redis server ended (exit status: 1)";
    let cells = cells_of_a_run_failed_by(&output, &json, "redis", reason);
    for contender in ["hintsd", "echo"] {
        let measured: Vec<_> = cells.iter().filter(|cell| cell["contender"] == contender).collect();
        assert_eq!(measured.len(), 1, "{contender}: {cells:?}");
        assert!(measured[0]["ops_per_sec"].as_f64().unwrap() > 0.0, "{contender}: {cells:?}");
    }
    assert!(cells.iter().all(|cell| cell["contender"] != "redis"), "{cells:?}");
    // The failed server's directory went with it, as the others' did at the end.
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Each shape of the echo server (the floor, and the two lane-shaped ones of
/// `benches/event_loop.sh`) answers every round trip of a pipelining worker, and `summary` adds
/// up what the workers did.
#[test]
fn every_shape_of_echo_server_answers_and_summary_adds_up_its_workers() {
    for shape in ["threads", "lanes", "epoll"] {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("echo.sock");
        let server = Command::new(HINTS_BENCH)
            .args(["echo-server", "--shape", shape, "--socket"])
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Killed however the test ends.
        let _server = KilledOnDrop(server);
        let deadline = std::time::Instant::now() + common::DAEMON_WAIT_MAX;
        // Until it accepts, not until its socket exists: the path appears at `bind`, a moment
        // before `listen`, and a connection then is refused.
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(std::time::Instant::now() < deadline, "the {shape} echo server did not listen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut results = Vec::new();
        for (worker, depth) in [(1, "1"), (2, "8")] {
            let output = Command::new(HINTS_BENCH)
                .args(["worker", "--contender", "echo", "--seconds", "0.2", "--depth", depth, "--target"])
                .arg(&socket)
                .output()
                .unwrap();
            assert!(output.status.success(), "{shape}: {}", stderr(&output));
            let result: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
            assert!(result["ops"].as_u64().unwrap() > 0, "{shape}: {result}");
            assert_eq!(result["errors"], 0, "{shape}: {result}");
            let file = dir.path().join(format!("worker{worker}.json"));
            std::fs::write(&file, stdout(&output)).unwrap();
            results.push((file, result["ops"].as_u64().unwrap(), result["elapsed_secs"].as_f64().unwrap()));
        }
        let summary =
            Command::new(HINTS_BENCH).arg("summary").args(results.iter().map(|(file, ..)| file)).output().unwrap();
        assert!(summary.status.success(), "{}", stderr(&summary));
        // Workers are taken to have run side by side: their operations over the longest time.
        let ops: u64 = results.iter().map(|(_, ops, _)| ops).sum();
        let longest = results.iter().map(|(.., secs)| *secs).fold(0.0, f64::max);
        let line = stdout(&summary);
        let rate: f64 = line.split(" ops/s").next().unwrap().parse().unwrap();
        assert!((rate - ops as f64 / longest).abs() <= 1.0, "{ops} operations in {longest} s: {line}");
        assert!(line.contains("p50 ") && line.contains(", 0 errors"), "{line}");
    }
}

/// A child process killed (and reaped) when dropped.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The new inputs of `hints-bench` answer bad values with a clear error: an unknown echo
/// shape names the shapes there are, and `summary` names a file that is missing or not a
/// worker's JSON.
#[test]
fn a_bad_echo_shape_or_summary_file_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let shape = Command::new(HINTS_BENCH)
        .args(["echo-server", "--shape", "fibers", "--socket"])
        .arg(dir.path().join("echo.sock"))
        .output()
        .unwrap();
    assert!(!shape.status.success());
    assert!(stderr(&shape).contains("fibers") && stderr(&shape).contains("lanes"), "{}", stderr(&shape));
    assert!(!dir.path().join("echo.sock").exists(), "no server was started");

    let not_json = dir.path().join("not.json");
    std::fs::write(&not_json, "ops: many").unwrap();
    for (file, why) in [(dir.path().join("missing.json"), "No such file"), (not_json, "not a worker's result")] {
        let summary = Command::new(HINTS_BENCH).arg("summary").arg(&file).output().unwrap();
        assert!(!summary.status.success(), "{}", stdout(&summary));
        let said = stderr(&summary);
        assert!(said.contains(&*file.to_string_lossy()) && said.contains(why), "{said}");
    }
    let none = Command::new(HINTS_BENCH).arg("summary").output().unwrap();
    assert!(!none.status.success() && stderr(&none).contains("FILES"), "{}", stderr(&none));
}
