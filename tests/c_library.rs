//! The C library end to end: `tests/c/hints_test.c` is compiled with the system `cc` against
//! `hints-client/include/hints_client.h` and the library built by Cargo (once the static
//! `libhints_client.a`, once the shared `libhints_client.so`), and run against a real daemon.
//! It calls every function of the header, a `fork()` whose child uses its parent's handle
//! among them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Daemon, HINTS_BENCH, wait_with_deadline};

/// The target directory of this build (`target/debug` or `target/release`).
fn target_dir() -> PathBuf {
    Path::new(HINTS_BENCH).parent().expect("target dir").to_owned()
}

/// Builds hints-client's `cdylib` and `staticlib` (a no-op when up to date) into the same
/// target directory as this test, once per run, and returns that directory.
fn library_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let dir = target_dir();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        // The same packages as `common::workspace_bin` builds, so that both resolve the same
        // features and neither rebuilds what the other just built.
        cargo.args(["build", "--lib", "--bins", "-p", "hintsd", "-p", "hints-client"]);
        if dir.file_name().is_some_and(|profile| profile == "release") {
            cargo.arg("--release");
        }
        let status = cargo.current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("run cargo build");
        assert!(status.success(), "building the hints-client library failed");
    });
    for name in ["libhints_client.a", "libhints_client.so"] {
        assert!(dir.join(name).is_file(), "{name} is not in {}", dir.display());
    }
    dir
}

/// How the test program is linked.
#[derive(Clone, Copy, Debug)]
enum Linkage {
    Static,
    Shared,
}

/// Compiles `tests/c/hints_test.c` into `out_dir` with warnings as errors; returns the program.
fn compile(linkage: Linkage, out_dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = library_dir();
    let program = out_dir.join(format!("hints_test_{linkage:?}").to_lowercase());
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
        .arg("-I")
        .arg(root.join("hints-client/include"))
        .arg(root.join("tests/c/hints_test.c"))
        .arg("-o")
        .arg(&program);
    match linkage {
        // The system libraries Rust's standard library needs (`--print native-static-libs`).
        Linkage::Static => {
            cc.arg(lib_dir.join("libhints_client.a")).args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"])
        }
        Linkage::Shared => {
            cc.arg("-L").arg(&lib_dir).arg("-lhints_client").arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        }
    };
    let output = cc.output().expect("run cc (the system C compiler)");
    assert!(
        output.status.success(),
        "cc failed ({linkage:?}):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
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
