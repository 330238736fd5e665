//! Shared test harness: start the real `hintsd` binary on a private socket, reach it with the
//! real client and the real `hintsctl`, stop it with a signal.

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use hints_client::{Client, ClientConfig};

/// How long a daemon may take to come up or go down before the test fails.
pub const DAEMON_WAIT_MAX: Duration = Duration::from_secs(20);

pub const HINTS_BENCH: &str = env!("CARGO_BIN_EXE_hints-bench");

/// The `hintsd` binary of this build, built first if need be.
pub fn hintsd_bin() -> PathBuf {
    workspace_bin("hintsd")
}

/// The `hintsctl` binary of this build, built first if need be.
pub fn hintsctl_bin() -> PathBuf {
    workspace_bin("hintsctl")
}

/// Binaries of other packages are not given to this package's tests by Cargo, so build them
/// (a no-op when up to date) into the same target directory as `hints-bench`, once per run.
fn workspace_bin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let dir = Path::new(HINTS_BENCH).parent().expect("target dir").to_owned();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cargo.args(["build", "--bins", "-p", "hintsd", "-p", "hints-client"]);
        if dir.file_name().is_some_and(|profile| profile == "release") {
            cargo.arg("--release");
        }
        let status = cargo.current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("run cargo build");
        assert!(status.success(), "building hintsd and hintsctl failed");
    });
    dir.join(name)
}

/// How a C program is linked against hints-client's C library.
#[derive(Clone, Copy, Debug)]
pub enum Linkage {
    /// `libhints_client.a` and the system libraries Rust's standard library needs.
    Static,
    /// `libhints_client.so`, found at run time through an rpath.
    Shared,
}

/// Builds hints-client's `cdylib` and `staticlib` (a no-op when up to date) into the same
/// target directory as this test, once per run, and returns that directory.
pub fn c_library_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let dir = Path::new(HINTS_BENCH).parent().expect("target dir").to_owned();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        // The same packages as `workspace_bin` builds, so that both resolve the same features
        // and neither rebuilds what the other just built.
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

/// Compiles the C program `source` with the system `cc` (C11, warnings as errors) against
/// `hints-client/include/hints_client.h`, any further `include_dirs`, and the C library linked
/// as `linkage`, into `program`; fails the test with cc's output if it does not compile.
pub fn compile_c(source: &Path, include_dirs: &[PathBuf], linkage: Linkage, program: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = c_library_dir();
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
        .arg("-I")
        .arg(root.join("hints-client/include"));
    for dir in include_dirs {
        cc.arg("-I").arg(dir);
    }
    cc.arg(source).arg("-o").arg(program);
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
        "cc failed on {} ({linkage:?}):\n{}{}",
        source.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running daemon in its own temporary directory; stopped (SIGKILL) on drop if still up.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
    log: PathBuf,
    /// `HINTSD_LOG` for the daemon.
    log_filter: String,
}

impl Daemon {
    /// Starts `hintsd --socket <tmp>/run/hintsd.sock` with `extra_args`, and waits until it
    /// answers a ping.
    pub fn start(extra_args: &[&str]) -> Daemon {
        Daemon::start_logging(extra_args, "info")
    }

    /// As [`Daemon::start`], with `HINTSD_LOG=log_filter` (its log is [`Daemon::log_text`]).
    pub fn start_logging(extra_args: &[&str], log_filter: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("run").join("hintsd.sock");
        let log = dir.path().join("hintsd.log");
        let extra_args = extra_args.iter().map(|s| (*s).to_owned()).collect();
        let mut daemon = Daemon { dir, socket, child: None, extra_args, log, log_filter: log_filter.to_owned() };
        daemon.launch();
        daemon
    }

    /// Starts the daemon again on the same socket (after [`Daemon::stop`]).
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut command = Command::new(hintsd_bin());
        command.arg("--socket").arg(&self.socket);
        // Each daemon keeps its snapshots in its own directory, never the system's.
        if !self.extra_args.iter().any(|arg| arg == "--no-snapshot" || arg == "--snapshot-dir") {
            command.arg("--snapshot-dir").arg(self.snapshot_dir());
        }
        let child = command
            .args(&self.extra_args)
            .env("HINTSD_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn hintsd");
        self.child = Some(child);
        let deadline = Instant::now() + DAEMON_WAIT_MAX;
        loop {
            if self.client().ping().is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("hintsd exited during start with {status}; log:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "hintsd did not answer within {DAEMON_WAIT_MAX:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client for this daemon.
    pub fn client(&self) -> Client {
        Client::new(self.client_config())
    }

    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::from_environment().with_socket(self.socket.clone()).with_timeout(Duration::from_secs(5))
    }

    /// Runs `hintsctl --socket <socket> args...`.
    pub fn hintsctl(&self, args: &[&str]) -> Output {
        Command::new(hintsctl_bin()).arg("--socket").arg(&self.socket).args(args).output().expect("run hintsctl")
    }

    /// Where this daemon's snapshots go (unless the test chose otherwise).
    pub fn snapshot_dir(&self) -> PathBuf {
        self.dir.path().join("snapshots")
    }

    /// Kills the daemon with SIGKILL (a crash: no final snapshot) and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("daemon running");
        child.kill().expect("kill hintsd");
        child.wait().expect("reap hintsd");
    }

    /// The daemon's binary-protocol socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
            .expect("signal hintsd");
        wait_with_deadline(&mut child)
    }

    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Runs `count` `hints-bench` processes against this daemon at once (`args`, then
    /// `--socket <socket>`, with `env` set) and returns each one's stdout, once every one has
    /// exited successfully.
    pub fn run_workers(&self, count: usize, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        let workers: Vec<Child> = (0..count)
            .map(|_| {
                Command::new(HINTS_BENCH)
                    .args(args)
                    .arg("--socket")
                    .arg(&self.socket)
                    .envs(env.iter().copied())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn hints-bench")
            })
            .collect();
        let outputs = workers.into_iter().map(|worker| worker.wait_with_output().expect("wait for hints-bench"));
        outputs
            .map(|output| {
                assert!(output.status.success(), "{}", stderr(&output));
                stdout(&output)
            })
            .collect()
    }

    /// A raw connection to the socket, for bad-input tests.
    pub fn raw(&self) -> UnixStream {
        let stream = UnixStream::connect(&self.socket).expect("connect");
        stream.set_read_timeout(Some(DAEMON_WAIT_MAX)).unwrap();
        stream
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for a child to exit, failing the test past [`DAEMON_WAIT_MAX`].
pub fn wait_with_deadline(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DAEMON_WAIT_MAX;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {DAEMON_WAIT_MAX:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The text of a command's stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text of a command's stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn db(name: &str) -> hints_proto::DbName {
    hints_proto::DbName::new(name).expect("valid name")
}

pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Writes one frame holding `msg` to a raw stream.
pub fn send<T: serde::Serialize>(stream: &mut UnixStream, msg: &T) {
    hints_proto::frame::write_frame(stream, msg, &mut Vec::new()).expect("write frame");
}

/// Reads one frame from a raw stream and decodes it as `T`.
pub fn receive<T: serde::de::DeserializeOwned>(stream: &mut UnixStream) -> T {
    let mut body = Vec::new();
    hints_proto::frame::read_frame(stream, &mut body).expect("read frame");
    hints_proto::frame::decode_body(&body).expect("decode frame")
}

/// Sends a hello and checks that it was accepted.
pub fn hello(stream: &mut UnixStream) {
    send(stream, &hints_proto::Hello::new("raw-test"));
    match receive::<hints_proto::HelloReply>(stream) {
        hints_proto::HelloReply::Accepted { .. } => {}
        refused => panic!("hello refused: {refused:?}"),
    }
}

/// True when the daemon has closed the stream (reads end of file, or a reset).
pub fn closed_by_daemon(stream: &mut UnixStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}
