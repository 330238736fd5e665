//! hintsd: one daemon per host that keeps an MTA's hints (retry, callout, ratelimit, seen,
//! misc, tls, and any database a client names) in memory, one actix actor per database,
//! behind a Unix socket. No file locks, no fsync on the request path.
//!
//! # Layout
//! - [`config`]: the TOML file, command-line overrides, embedded defaults.
//! - [`telemetry`]: tracing-subscriber setup.
//! - [`listener`]: the socket, its modes, credentials and the connection limit.
//! - [`connection`]: one client's frames, answered in order, on its lane.
//! - [`lanes`]: the threads connections run on after their hello.
//! - [`registry`]: the supervisor that starts a database's actor on its own arbiter.
//! - [`socket`]: a connection's socket, watched for input only.
//! - [`text`]: the text socket for Exim's `${readsocket}`.
//! - [`db`]: the database and its actor (actix messages and handlers).
//! - [`direct`]: the running databases, which connection tasks apply plain requests to directly.
//! - [`store`]: the records of one database, a plain struct with time passed in.

mod batch;
pub mod config;
pub mod connection;
pub mod db;
pub mod direct;
pub mod hints;
pub mod lanes;
pub mod listener;
mod peer_cpu;
mod records;
pub mod registry;
pub mod ring_end;
pub mod snapshot;
pub mod socket;
pub mod stop;
pub mod store;
mod store_key;
pub mod telemetry;
pub mod text;

/// For anything that refills a vector of borrowed requests batch after batch (the benchmark's
/// client too).
pub use batch::reuse_vec;

use std::sync::Arc;
use std::time::Duration;

use hints_proto::{DbName, Request, Response};

use tokio_util::task::TaskTracker;

use crate::config::{Config, ConnectionPlacement};
use crate::connection::ConnectionContext;
use crate::lanes::Lanes;
use crate::listener::Protocol;
use crate::registry::Registry;
use crate::stop::Stop;

/// How long shutdown waits for connections to finish what they were doing.
pub const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(10);

/// Why the daemon could not start or stopped with an error.
#[derive(Debug)]
pub enum RunError {
    Bind(listener::BindError),
    Database(hints_proto::ErrorReply),
    Runtime(std::io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Bind(err) => err.fmt(f),
            RunError::Database(err) => write!(f, "starting a configured database: {err}"),
            RunError::Runtime(err) => write!(f, "runtime: {err}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs the daemon until SIGINT or SIGTERM: binds the socket, starts the configured
/// databases, serves, then stops accepting, lets requests in flight finish, removes the socket
/// and returns.
///
/// # Errors
/// The socket could not be set up, or the runtime failed.
pub fn run(config: Config) -> Result<(), RunError> {
    let worker_threads = config.worker_threads;
    let system = actix::System::with_tokio_rt(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .thread_name("hintsd-pool")
            .enable_all()
            .build()
            .expect("building the tokio runtime")
    });
    system.block_on(start(config))?;
    system.run().map_err(RunError::Runtime)
}

async fn start(config: Config) -> Result<(), RunError> {
    // Caught from here on: a stop signal that comes once the socket answers must find them
    // installed (a task that installed them on its first poll could come too late).
    let stop_signals = StopSignals::install();
    let listener = listener::bind(&config.socket, config.socket_group).map_err(RunError::Bind)?;
    let text_listener = listener::bind(&config.text_socket, config.socket_group).map_err(RunError::Bind)?;
    let config = Arc::new(config);
    let registry = Registry::start(Arc::clone(&config));
    for db in databases_at_boot(&config) {
        let store = match &config.snapshot_dir {
            Some(dir) => db::load_snapshot(dir, &db),
            None => store::Store::new(),
        };
        registry.open_with(&db, store).await.map_err(RunError::Database)?;
    }
    let databases: Vec<&str> = config.databases.iter().map(|db| db.as_str()).collect();
    tracing::info!(
        socket = %config.socket.display(),
        text_socket = %config.text_socket.display(),
        version = env!("CARGO_PKG_VERSION"),
        databases = ?databases,
        connections_max = config.connections_max,
        allow_uids = ?config.access.uids,
        allow_gids = ?config.access.gids,
        snapshot_dir = ?config.snapshot_dir,
        "hintsd listening"
    );
    let ctx = ConnectionContext {
        registry: registry.clone(),
        lanes: (config.connection_placement == ConnectionPlacement::Lanes)
            .then(|| Lanes::start(config.connection_threads, config.lane_spin, config.pin_lanes)),
        stop: Stop::new(),
        tracker: TaskTracker::new(),
        ring_bytes: config.ring_bytes,
    };
    let system = actix::System::current();
    let admission = listener::Admission::new(config.access.clone(), config.connections_max);
    let accept = tokio::spawn(listener::accept_loop(listener, Protocol::Binary, admission.clone(), ctx.clone()));
    let accept_text = tokio::spawn(listener::accept_loop(text_listener, Protocol::Text, admission, ctx.clone()));
    tokio::spawn(async move {
        let signal = stop_signals.wait().await;
        tracing::info!(signal, "stopping: no new connections, finishing requests in flight");
        ctx.stop.stop();
        let _ = accept.await;
        let _ = accept_text.await;
        ctx.tracker.close();
        if tokio::time::timeout(SHUTDOWN_DRAIN_MAX, ctx.tracker.wait()).await.is_err() {
            tracing::warn!(open = ctx.tracker.len(), "connections still busy after the drain wait; closing them");
        }
        if config.snapshot_dir.is_some() {
            snapshot_all(&registry).await;
        }
        registry.stop_all().await;
        if let Some(lanes) = &ctx.lanes {
            lanes.stop();
        }
        tracing::info!("hintsd stopped");
        system.stop();
    });
    Ok(())
}

/// The configured databases and every database that has a snapshot, each once.
fn databases_at_boot(config: &Config) -> Vec<DbName> {
    let mut databases = config.databases.clone();
    if let Some(dir) = &config.snapshot_dir {
        match snapshot::snapshot_files(dir) {
            Ok(found) => databases.extend(found),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(dir = %dir.display(), error = %err, "cannot list snapshots"),
        }
    }
    let mut seen = std::collections::HashSet::new();
    databases.retain(|db| seen.insert(db.clone()));
    databases
}

/// Writes every database's snapshot and waits for the files (at shutdown).
async fn snapshot_all(registry: &Registry) {
    for (db, handle) in registry.all() {
        let request = Request::Snapshot { db: Some(db.clone()) };
        match handle.addr.send(db::Apply { request, conn: db::DAEMON_CONN }).await {
            Ok(Response::Snapshotted { .. }) => {}
            Ok(other) => tracing::warn!(db = %db, answer = ?other, "final snapshot not written"),
            Err(err) => tracing::warn!(db = %db, error = %err, "final snapshot not written"),
        }
    }
}

/// SIGTERM and SIGINT, caught from the moment [`StopSignals::install`] returns.
struct StopSignals {
    handlers: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    fn install() -> StopSignals {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => Some((term, int)),
            _ => {
                tracing::error!("cannot install signal handlers; stop hintsd with SIGKILL");
                None
            }
        };
        StopSignals { handlers }
    }

    /// The name of the first stop signal to come.
    async fn wait(self) -> &'static str {
        let Some((mut term, mut int)) = self.handlers else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
}
