//! The daemon's configuration: a TOML file where every key is optional, command-line
//! overrides, and embedded defaults that run as they are. Unknown keys and bad values are
//! refused at start with a message naming the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hints_proto::DbName;
use hints_proto::limits::STATS_DATABASES_MAX;
use hints_proto::ring::shm::{SHM_RING_BYTES_MAX, SHM_RING_BYTES_MIN};
use serde::Deserialize;

/// Default and upper bound of `connections_max`.
pub const CONNECTIONS_MAX_DEFAULT: usize = 1024;
pub const CONNECTIONS_MAX_LIMIT: usize = 65_536;
/// Default and upper bound of `mailbox_capacity` (requests queued per database).
pub const MAILBOX_CAPACITY_DEFAULT: usize = 1024;
pub const MAILBOX_CAPACITY_LIMIT: usize = 1 << 20;
/// Default of `databases_max`; its bound is what one `stats` reply carries.
pub const DATABASES_MAX_DEFAULT: usize = 256;
/// Default and upper bound of `worker_threads` (the tokio pool for accept and hello).
pub const WORKER_THREADS_DEFAULT: usize = 2;
pub const WORKER_THREADS_LIMIT: usize = 64;
/// Upper bound of `connection_threads` (lanes); the default is one per core.
pub const CONNECTION_THREADS_LIMIT: usize = 64;
/// Default and upper bound of `spin_micros`: how long a lane that has answered a ring
/// connection may keep looking for its next request before it sleeps (when the host has a core
/// for every client and busy lane; see `lanes.rs`). 0 turns spinning off.
pub const SPIN_MICROS_DEFAULT: u64 = 30;
pub const SPIN_MICROS_LIMIT: u64 = 1000;
/// Default of `ring_bytes`: each way of a client's shared-memory ring. A round trip's frames
/// are well under 1 KiB, and a larger frame passes in pieces, so a small ring costs nothing
/// but the pages it touches. 0 offers no rings; otherwise a power of two from
/// `SHM_RING_BYTES_MIN` to `SHM_RING_BYTES_MAX`.
pub const RING_BYTES_DEFAULT: usize = 64 * 1024;
/// The largest configuration file read.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1 << 20;
/// The text socket's file name beside the main socket, unless configured.
pub const TEXT_SOCKET_FILE_NAME: &str = "hintsd-text.sock";
/// Default of a database's `records_max`.
pub const RECORDS_MAX_DEFAULT: u64 = 1_000_000;
/// The largest `records_max` accepted (a store numbers its records in 32 bits).
pub const RECORDS_MAX_LIMIT: u64 = 1 << 31;
/// Default of `snapshot_interval`.
pub const SNAPSHOT_INTERVAL_DEFAULT: Duration = Duration::from_secs(60);
/// Default of `serialize_max_age`: a slot held longer is freed even if its holder lives.
pub const SERIALIZE_MAX_AGE_DEFAULT: Duration = Duration::from_secs(3600);
/// Default snapshot directory for root; others use `$XDG_STATE_HOME/hintsd` or
/// `~/.local/state/hintsd`.
pub const SNAPSHOT_DIR_ROOT: &str = "/var/lib/hintsd";

/// How long a database keeps a record after its last write, unless configured: Exim's own
/// horizons where Exim has them (retry data 7 days, callout 24 h for a positive result and
/// 2 h for a negative one (set per record), seen 30 days after last use).
pub fn max_age_default(db: &str) -> Duration {
    const DAY: u64 = 86_400;
    let days = match db {
        "callout" | "tls" => 1,
        "retry" | "misc" | "ratelimit" => 7,
        db if db.starts_with("wait-") => 7,
        _ => 30,
    };
    Duration::from_secs(days * DAY)
}

/// Databases started at boot unless the file says otherwise: Exim's.
pub const DATABASES_DEFAULT: [&str; 6] = hints_proto::db_name::EXIM_DATABASES;

const _: () = assert!(DATABASES_MAX_DEFAULT <= STATS_DATABASES_MAX);

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where connection tasks run (see ARCHITECTURE.md, "Threads").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionPlacement {
    /// On a lane (`connection_threads` of them), a thread each connection keeps (unless it
    /// follows its client to another CPU's lane): no thread hand-off per request.
    Lanes,
    /// On the tokio pool, sending each request across threads (kept to measure the difference).
    Pool,
}

/// Who may connect: a peer whose effective uid or gid is listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

impl AccessPolicy {
    /// True when the peer's uid or gid is on the list.
    pub fn allows(&self, uid: Option<u32>, gid: Option<u32>) -> bool {
        uid.is_some_and(|uid| self.uids.contains(&uid)) || gid.is_some_and(|gid| self.gids.contains(&gid))
    }
}

/// The configuration in force, every value explicit.
#[derive(Clone, Debug)]
pub struct Config {
    pub socket: PathBuf,
    /// The text socket for Exim's `${readsocket}`; same directory, modes and checks.
    pub text_socket: PathBuf,
    /// Group given to the socket and its directory; its members are also allowed to connect.
    pub socket_group: Option<u32>,
    pub access: AccessPolicy,
    pub connections_max: usize,
    pub mailbox_capacity: usize,
    pub databases: Vec<DbName>,
    pub databases_max: usize,
    pub worker_threads: usize,
    /// Lanes: threads that run connections after their hello.
    pub connection_threads: usize,
    /// How long a lane may spin for its ring connection's next request (zero: never).
    pub lane_spin: Duration,
    /// Lane `i` runs only on the `i`-th CPU the daemon may use.
    pub pin_lanes: bool,
    /// Bytes each way of a client's shared-memory ring; 0 offers none.
    pub ring_bytes: usize,
    pub log_format: LogFormat,
    /// Where connection tasks run: on lanes (`connection_threads`), or on the tokio pool.
    pub connection_placement: ConnectionPlacement,
    /// Where snapshots are written and loaded from; `None` runs as a pure cache.
    pub snapshot_dir: Option<PathBuf>,
    pub snapshot_interval: Duration,
    pub serialize_max_age: Duration,
    /// Per-database settings given in `[db.<name>]`; others take the defaults.
    pub per_db: BTreeMap<DbName, DbLimits>,
    /// Fault injection for tests: a get or put of this key panics inside its database.
    pub fault_panic_key: Option<Vec<u8>>,
}

/// Age and size bounds of one database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbLimits {
    pub max_age: Duration,
    pub records_max: u64,
}

impl Config {
    /// The bounds of database `db`: its `[db.<name>]` table, else the defaults.
    pub fn limits_for(&self, db: &DbName) -> DbLimits {
        self.per_db
            .get(db)
            .copied()
            .unwrap_or(DbLimits { max_age: max_age_default(db.as_str()), records_max: RECORDS_MAX_DEFAULT })
    }
}

/// A configuration value that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, or the file when the file itself is at fault.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration key `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A user or group, by number or by name.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Id {
    Number(u32),
    Name(String),
}

/// The file as written; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    socket: Option<PathBuf>,
    text_socket: Option<PathBuf>,
    socket_group: Option<Id>,
    allow_uids: Option<Vec<Id>>,
    allow_gids: Option<Vec<Id>>,
    connections_max: Option<usize>,
    mailbox_capacity: Option<usize>,
    databases: Option<Vec<String>>,
    databases_max: Option<usize>,
    worker_threads: Option<usize>,
    connection_threads: Option<usize>,
    spin_micros: Option<u64>,
    pin_lanes: Option<bool>,
    ring_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    connection_placement: Option<ConnectionPlacement>,
    snapshot_dir: Option<PathBuf>,
    snapshot_interval: Option<String>,
    serialize_max_age: Option<String>,
    db: Option<BTreeMap<String, DbFileConfig>>,
}

/// A `[db.<name>]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DbFileConfig {
    max_age: Option<String>,
    records_max: Option<u64>,
}

/// What the command line may override.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub socket: Option<PathBuf>,
    pub text_socket: Option<PathBuf>,
    pub snapshot_dir: Option<PathBuf>,
    /// `--no-snapshot`: neither load nor write snapshots.
    pub no_snapshot: bool,
    pub log_format: Option<LogFormat>,
    pub fault_panic_key: Option<Vec<u8>>,
}

impl Config {
    /// Reads `path` (if given), applies `overrides`, and fills the rest from the defaults.
    ///
    /// # Errors
    /// An unreadable file, TOML that does not parse, an unknown key, or a value out of range,
    /// each naming the key.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Config::from_file(file, overrides)
    }

    /// Parses configuration text (for tests and `--check-config`).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(text: &str, overrides: Overrides) -> Result<Config, ConfigError> {
        Config::from_file(parse_text(text, "configuration")?, overrides)
    }

    fn from_file(file: FileConfig, overrides: Overrides) -> Result<Config, ConfigError> {
        let euid = nix::unistd::geteuid().as_raw();
        let socket = hints_proto::socket_path::from_environment(overrides.socket.or(file.socket), euid);
        let text_socket =
            overrides.text_socket.or(file.text_socket).unwrap_or_else(|| socket.with_file_name(TEXT_SOCKET_FILE_NAME));
        if text_socket == socket {
            return Err(ConfigError { key: "text_socket".into(), message: "must differ from socket".into() });
        }
        let socket_group = file.socket_group.map(|id| resolve_gid("socket_group", &id)).transpose()?;
        let mut uids = vec![0, euid];
        for id in file.allow_uids.unwrap_or_default() {
            uids.push(resolve_uid("allow_uids", &id)?);
        }
        let mut gids: Vec<u32> = socket_group.into_iter().collect();
        for id in file.allow_gids.unwrap_or_default() {
            gids.push(resolve_gid("allow_gids", &id)?);
        }
        uids.sort_unstable();
        uids.dedup();
        gids.sort_unstable();
        gids.dedup();
        let databases_max = bounded("databases_max", file.databases_max, DATABASES_MAX_DEFAULT, STATS_DATABASES_MAX)?;
        let names = file.databases.unwrap_or_else(|| DATABASES_DEFAULT.iter().map(|s| (*s).to_owned()).collect());
        let mut databases = Vec::with_capacity(names.len());
        for name in names {
            let db = DbName::new(name).map_err(|err| ConfigError { key: "databases".into(), message: err.message })?;
            if !databases.contains(&db) {
                databases.push(db);
            }
        }
        if databases.len() > databases_max {
            return Err(ConfigError {
                key: "databases".into(),
                message: format!("{} databases listed, more than databases_max ({databases_max})", databases.len()),
            });
        }
        let snapshot_dir = match (overrides.no_snapshot, overrides.snapshot_dir.or(file.snapshot_dir)) {
            (true, _) => None,
            (false, Some(dir)) => Some(dir),
            (false, None) => Some(default_snapshot_dir(euid)),
        };
        let mut per_db = BTreeMap::new();
        for (name, table) in file.db.unwrap_or_default() {
            let key = format!("db.{name}");
            let db = DbName::new(name).map_err(|err| ConfigError { key: key.clone(), message: err.message })?;
            let max_age = match table.max_age {
                Some(text) => duration(&format!("{key}.max_age"), &text)?,
                None => max_age_default(db.as_str()),
            };
            let records_max = table.records_max.unwrap_or(RECORDS_MAX_DEFAULT);
            if !(1..=RECORDS_MAX_LIMIT).contains(&records_max) {
                return Err(ConfigError {
                    key: format!("{key}.records_max"),
                    message: format!("{records_max} is outside 1..={RECORDS_MAX_LIMIT}"),
                });
            }
            per_db.insert(db, DbLimits { max_age, records_max });
        }
        let snapshot_interval = match file.snapshot_interval {
            Some(text) => duration("snapshot_interval", &text)?,
            None => SNAPSHOT_INTERVAL_DEFAULT,
        };
        if snapshot_interval.is_zero() {
            return Err(ConfigError { key: "snapshot_interval".into(), message: "must be more than 0s".into() });
        }
        let serialize_max_age = match file.serialize_max_age {
            Some(text) => duration("serialize_max_age", &text)?,
            None => SERIALIZE_MAX_AGE_DEFAULT,
        };
        Ok(Config {
            text_socket,
            snapshot_dir,
            snapshot_interval,
            serialize_max_age,
            per_db,
            socket,
            socket_group,
            access: AccessPolicy { uids, gids },
            connections_max: bounded(
                "connections_max",
                file.connections_max,
                CONNECTIONS_MAX_DEFAULT,
                CONNECTIONS_MAX_LIMIT,
            )?,
            mailbox_capacity: bounded(
                "mailbox_capacity",
                file.mailbox_capacity,
                MAILBOX_CAPACITY_DEFAULT,
                MAILBOX_CAPACITY_LIMIT,
            )?,
            databases,
            databases_max,
            worker_threads: bounded(
                "worker_threads",
                file.worker_threads,
                WORKER_THREADS_DEFAULT,
                WORKER_THREADS_LIMIT,
            )?,
            connection_threads: bounded(
                "connection_threads",
                file.connection_threads,
                std::thread::available_parallelism().map_or(2, usize::from).min(CONNECTION_THREADS_LIMIT),
                CONNECTION_THREADS_LIMIT,
            )?,
            lane_spin: Duration::from_micros(match file.spin_micros.unwrap_or(SPIN_MICROS_DEFAULT) {
                micros if micros <= SPIN_MICROS_LIMIT => micros,
                micros => {
                    let message = format!("{micros} is outside 0..={SPIN_MICROS_LIMIT}");
                    return Err(ConfigError { key: "spin_micros".into(), message });
                }
            }),
            pin_lanes: file.pin_lanes.unwrap_or(true),
            ring_bytes: match file.ring_bytes.unwrap_or(RING_BYTES_DEFAULT) {
                0 => 0,
                bytes if bytes.is_power_of_two() && (SHM_RING_BYTES_MIN..=SHM_RING_BYTES_MAX).contains(&bytes) => bytes,
                bytes => {
                    let message = format!(
                        "{bytes} is neither 0 (no rings) nor a power of two from {SHM_RING_BYTES_MIN} to {SHM_RING_BYTES_MAX}"
                    );
                    return Err(ConfigError { key: "ring_bytes".into(), message });
                }
            },
            log_format: overrides.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            connection_placement: file.connection_placement.unwrap_or(ConnectionPlacement::Lanes),
            fault_panic_key: overrides.fault_panic_key,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let file_error = |message: String| ConfigError { key: path.display().to_string(), message };
    let meta = std::fs::metadata(path).map_err(|err| file_error(format!("cannot read the file: {err}")))?;
    if meta.len() > CONFIG_FILE_BYTES_MAX {
        return Err(file_error(format!("the file is over {CONFIG_FILE_BYTES_MAX} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|err| file_error(format!("cannot read the file: {err}")))?;
    parse_text(&text, &path.display().to_string())
}

fn parse_text(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|err: toml::de::Error| {
        let message = err.message().to_owned();
        let line = err.span().map(|span| line_at(text, span.start));
        // toml names an unknown key in backticks; for a bad value, the key is the one on the
        // line the error points at.
        let unknown_key = message.starts_with("unknown field").then(|| key_in_message(&message)).flatten();
        let key = unknown_key
            .or_else(|| line.and_then(|(_, line_text)| line_text.split_once('=')).map(|(key, _)| key.trim().to_owned()))
            .filter(|key| !key.is_empty())
            .unwrap_or_else(|| origin.to_owned());
        let at = line.map(|(number, _)| format!(" (line {number})")).unwrap_or_default();
        ConfigError { key, message: format!("{message}{at}") }
    })
}

fn key_in_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// The 1-based number and the text of the line holding byte `offset`.
fn line_at(text: &str, offset: usize) -> (usize, &str) {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |at| at + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |at| offset + at);
    (text[..offset].matches('\n').count() + 1, &text[start..end])
}

fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    hints_proto::duration::parse_duration_secs(text)
        .map(Duration::from_secs)
        .map_err(|err| ConfigError { key: key.into(), message: err.to_string() })
}

fn default_snapshot_dir(euid: u32) -> PathBuf {
    let non_empty = |name| std::env::var_os(name).filter(|value| !value.is_empty());
    if euid == 0 {
        return PathBuf::from(SNAPSHOT_DIR_ROOT);
    }
    if let Some(state) = non_empty("XDG_STATE_HOME") {
        return PathBuf::from(state).join("hintsd");
    }
    match non_empty("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/hintsd"),
        None => std::env::temp_dir().join(format!("hintsd-{euid}-state")),
    }
}

fn bounded(key: &str, value: Option<usize>, default: usize, max: usize) -> Result<usize, ConfigError> {
    let value = value.unwrap_or(default);
    if !(1..=max).contains(&value) {
        return Err(ConfigError { key: key.into(), message: format!("{value} is outside 1..={max}") });
    }
    Ok(value)
}

fn resolve_uid(key: &str, id: &Id) -> Result<u32, ConfigError> {
    match id {
        Id::Number(uid) => Ok(*uid),
        Id::Name(name) => match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Ok(user.uid.as_raw()),
            Ok(None) => Err(ConfigError { key: key.into(), message: format!("no user named {name:?}") }),
            Err(err) => Err(ConfigError { key: key.into(), message: format!("looking up user {name:?}: {err}") }),
        },
    }
}

fn resolve_gid(key: &str, id: &Id) -> Result<u32, ConfigError> {
    match id {
        Id::Number(gid) => Ok(*gid),
        Id::Name(name) => match nix::unistd::Group::from_name(name) {
            Ok(Some(group)) => Ok(group.gid.as_raw()),
            Ok(None) => Err(ConfigError { key: key.into(), message: format!("no group named {name:?}") }),
            Err(err) => Err(ConfigError { key: key.into(), message: format!("looking up group {name:?}: {err}") }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Overrides { socket: Some("/tmp/t.sock".into()), ..Overrides::default() })
    }

    #[test]
    fn an_empty_file_runs_on_the_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.connections_max, CONNECTIONS_MAX_DEFAULT);
        assert_eq!(config.databases.len(), DATABASES_DEFAULT.len());
        assert!(config.access.allows(Some(0), None));
        assert_eq!(config.socket, PathBuf::from("/tmp/t.sock"));
        assert_eq!(config.text_socket, PathBuf::from("/tmp/hintsd-text.sock"), "beside the main socket");
        assert!(config.pin_lanes);
    }

    #[test]
    fn every_key_is_read() {
        let config = parse(
            "socket = \"/x.sock\"\nsocket_group = 0\nallow_uids = [1234, \"root\"]\nallow_gids = [77]\nconnections_max = 10\n\
             mailbox_capacity = 20\ndatabases = [\"retry\", \"greylist\"]\ndatabases_max = 30\nworker_threads = 1\nconnection_threads = 3\nspin_micros = 0\npin_lanes = false\nlog_format = \"json\"\nconnection_placement = \"pool\"\n",
        )
        .unwrap();
        assert_eq!(config.socket, PathBuf::from("/tmp/t.sock"), "the command line wins");
        assert!(config.access.allows(Some(1234), None));
        assert!(config.access.allows(None, Some(77)));
        assert!(config.access.allows(None, Some(0)), "the socket group may connect");
        assert!(!config.access.allows(Some(4321), Some(4321)));
        assert_eq!((config.connections_max, config.mailbox_capacity, config.databases_max), (10, 20, 30));
        assert_eq!(config.databases.len(), 2);
        assert_eq!((config.worker_threads, config.log_format), (1, LogFormat::Json));
        assert_eq!(config.connection_threads, 3);
        assert_eq!(config.lane_spin, Duration::ZERO);
        assert!(!config.pin_lanes);
        assert_eq!(config.connection_placement, ConnectionPlacement::Pool);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        for (text, key) in [
            ("conections_max = 5", "conections_max"),
            ("connections_max = 0", "connections_max"),
            ("connections_max = \"many\"", "connections_max"),
            ("mailbox_capacity = 99999999999", "mailbox_capacity"),
            ("databases = [\"Bad Name\"]", "databases"),
            ("allow_uids = [\"no-such-user-hintsd\"]", "allow_uids"),
            ("socket_group = \"no-such-group-hintsd\"", "socket_group"),
            ("log_format = \"xml\"", "log_format"),
            ("worker_threads = 65", "worker_threads"),
            ("connection_threads = 0", "connection_threads"),
            ("connection_threads = 65", "connection_threads"),
            ("spin_micros = 1001", "spin_micros"),
            ("spin_micros = -1", "spin_micros"),
            ("pin_lanes = \"yes\"", "pin_lanes"),
            ("ring_bytes = 5000", "ring_bytes"),
            ("ring_bytes = 2048", "ring_bytes"),
            ("ring_bytes = 33554432", "ring_bytes"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.to_string().contains(key), "{text:?} gave {err}");
        }
    }

    #[test]
    fn per_database_limits_and_snapshots_are_read() {
        let config = parse(
            "snapshot_dir = \"/var/tmp/h\"\nsnapshot_interval = \"5m\"\nserialize_max_age = \"2h\"\n\
             [db.greylist]\nmax_age = \"7d\"\nrecords_max = 5000\n",
        )
        .unwrap();
        assert_eq!(config.snapshot_dir.as_deref(), Some(Path::new("/var/tmp/h")));
        assert_eq!(
            (config.snapshot_interval, config.serialize_max_age),
            (Duration::from_secs(300), Duration::from_secs(7200))
        );
        let greylist = config.limits_for(&DbName::new("greylist").unwrap());
        assert_eq!(greylist, DbLimits { max_age: Duration::from_secs(7 * 86_400), records_max: 5000 });
        let retry = config.limits_for(&DbName::new("retry").unwrap());
        assert_eq!(retry, DbLimits { max_age: Duration::from_secs(7 * 86_400), records_max: RECORDS_MAX_DEFAULT });
        let seen = config.limits_for(&DbName::new("seen").unwrap());
        assert_eq!(seen.max_age, Duration::from_secs(30 * 86_400));
        let off = Config::parse("", Overrides { no_snapshot: true, ..Overrides::default() }).unwrap();
        assert_eq!(off.snapshot_dir, None);
    }

    #[test]
    fn bad_per_database_values_name_their_key() {
        for (text, key) in [
            ("[db.greylist]\nmax_age = \"soon\"\n", "db.greylist.max_age"),
            ("[db.greylist]\nrecords_max = 0\n", "db.greylist.records_max"),
            ("[db.greylist]\nrecords_max = 2147483649\n", "db.greylist.records_max"),
            ("[db.Bad]\nrecords_max = 5\n", "db.Bad"),
            ("[db.greylist]\nmax_agee = \"1d\"\n", "max_agee"),
            ("snapshot_interval = \"0s\"\n", "snapshot_interval"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.to_string().contains(key), "{text:?} gave {err}");
        }
    }

    #[test]
    fn broken_toml_is_refused() {
        assert!(parse("socket = ").is_err());
    }
}
