//! The Exim hints-database backend kit (`contrib/exim/`) end to end: its harness
//! (`contrib/exim/test/harness.c`), which drives `hints_hintsd.h` through the call sequences of
//! Exim's `dbfn.c` and of `exim_dumpdb`/`exim_tidydb`, is compiled with the system `cc` against
//! the header, the test shim and the C library, and run against a real daemon.

mod common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Linkage, compile_c};

/// How long the harness may run: about 6 s on an idle machine (3.3 s of it the lease check,
/// then 2 x 1000 increments), given room for a loaded one.
const HARNESS_RUN_MAX: Duration = Duration::from_secs(120);

/// Waits for the harness to exit, killing it and failing the test past [`HARNESS_RUN_MAX`].
fn wait_for(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + HARNESS_RUN_MAX;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the backend harness did not exit within {HARNESS_RUN_MAX:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_exim_backend_harness_passes_against_a_real_daemon() {
    let daemon = Daemon::start(&[]);
    let kit = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/exim");
    let program = daemon.dir.path().join("exim_backend_harness");
    compile_c(&kit.join("test/harness.c"), &[kit.clone(), kit.join("test")], Linkage::Shared, &program);

    let (stdout_path, stderr_path) =
        (daemon.dir.path().join("harness.stdout"), daemon.dir.path().join("harness.stderr"));
    // The spool directory only makes the paths Exim would pass; the harness checks that nothing
    // is created in it.
    let mut child = Command::new(&program)
        .arg(daemon.dir.path().join("spool"))
        .env("HINTSD_SOCKET", &daemon.socket)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("run the backend harness");
    let status = wait_for(&mut child);
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        status.success() && summary.ends_with(" passed, 0 failed"),
        "the backend harness exited with {status}:\n{stdout}\n{stderr}\ndaemon log:\n{}",
        daemon.log_text()
    );
    let passed: u32 = summary.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count");
    assert!(passed > 80, "only {passed} checks ran: {stdout}");
}
