//! The C library end to end: `tests/c/hints_test.c` is compiled with the system `cc` against
//! `hints-client/include/hints_client.h` and the library built by Cargo (once the static
//! `libhints_client.a`, once the shared `libhints_client.so`), and run against a real daemon.
//! It calls every function of the header, a `fork()` whose child uses its parent's handle
//! among them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Daemon, Linkage, compile_c, wait_with_deadline};

/// Compiles `tests/c/hints_test.c` into `out_dir` with warnings as errors; returns the program.
fn compile(linkage: Linkage, out_dir: &Path) -> PathBuf {
    let program = out_dir.join(format!("hints_test_{linkage:?}").to_lowercase());
    compile_c(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/hints_test.c"), &[], linkage, &program);
    program
}

/// Compiles the C test program with `linkage`, runs it against a fresh daemon, and checks
/// that every check in it passed.
fn run_c_test(linkage: Linkage) {
    let daemon = Daemon::start(&[]);
    let program = compile(linkage, daemon.dir.path());
    let (stdout_path, stderr_path) = (daemon.dir.path().join("c.stdout"), daemon.dir.path().join("c.stderr"));
    let mut child = Command::new(&program)
        .arg(&daemon.socket)
        // Only the socket given decides; the default-rule check sets its own.
        .env_remove("HINTSD_SOCKET")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("run the C test program");
    let status = wait_with_deadline(&mut child);
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        status.success() && summary.ends_with(" passed, 0 failed"),
        "the C test program ({linkage:?}) exited with {status}:\n{stdout}\n{stderr}\ndaemon log:\n{}",
        daemon.log_text()
    );
    let passed: u32 = summary.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count");
    assert!(passed > 200, "only {passed} checks ran: {stdout}");
}

#[test]
fn a_c_program_linked_with_the_static_library_passes_every_check() {
    run_c_test(Linkage::Static);
}

#[test]
fn a_c_program_linked_with_the_shared_library_passes_every_check() {
    run_c_test(Linkage::Shared);
}
