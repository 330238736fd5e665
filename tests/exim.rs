//! Debian's real exim4 (4.96) talking to hintsd through `${readsocket}`: string expansion with
//! `exim4 -be`, and ACLs in a throwaway configuration run by `exim4 -bh`, which defer a sender
//! at its rate limit and a greylisted triplet until its delay has passed.
//! `.ci/run` installs exim4-daemon-light.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Daemon, stderr, stdout};

/// The Exim binary Debian installs.
const EXIM: &str = "exim4";
/// The user Exim drops to when run with `-C` (its receiving processes run as it too).
const EXIM_USER: &str = "Debian-exim";

/// A daemon that lets Exim's user in, in a directory Exim's user can reach.
fn daemon_for_exim() -> (Daemon, tempfile::TempDir) {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("hintsd.toml");
    std::fs::write(&config, format!("allow_uids = [\"{EXIM_USER}\"]\nsocket_group = \"{EXIM_USER}\"\n")).unwrap();
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    std::fs::set_permissions(daemon.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    (daemon, config_dir)
}

fn text_socket(daemon: &Daemon) -> PathBuf {
    daemon.socket.with_file_name("hintsd-text.sock")
}

fn exim(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(EXIM)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {EXIM} ({err}); .ci/run installs exim4-daemon-light"));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `exim4 -be` expanding `${readsocket{<text socket>}{request}{2s}{}{FAILED}}`.
fn expand(socket: &Path, request: &str) -> String {
    let expansion = format!("${{readsocket{{{}}}{{{request}}}{{2s}}{{}}{{FAILED}}}}", socket.display());
    let output = exim(&["-be", &expansion], "");
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output).trim_end_matches('\n').to_owned()
}

#[test]
fn exim_be_reaches_every_text_command_through_readsocket() {
    let (daemon, _config) = daemon_for_exim();
    let socket = text_socket(&daemon);
    assert_eq!(expand(&socket, "ratelimit 2 / 1h / per_rcpt / 192.0.2.1"), "under 1");
    assert!(expand(&socket, "ratelimit 2 / 1h / per_rcpt / 192.0.2.1").starts_with("under 1.9"));
    assert!(expand(&socket, "ratelimit 2 / 1h / per_rcpt / 192.0.2.1").starts_with("over 2.9"));
    assert_eq!(expand(&socket, "seen -5m / key=conn-192.0.2.1"), "false");
    assert_eq!(expand(&socket, "seen 5m / key=conn-192.0.2.1"), "true");
    assert_eq!(expand(&socket, "greylist 192.0.2.1_a@example.net_b@example.org 5m"), "defer 300");
    assert_eq!(expand(&socket, "put misc exim-note written by exim"), "ok");
    assert_eq!(expand(&socket, "get misc exim-note"), "found written by exim");
    assert_eq!(expand(&socket, "del misc exim-note"), "deleted");
    assert!(expand(&socket, "ratelimit 10 / 1h / strict / leaky / k").starts_with("error conflicting update modes"));
    // An ACL can test a reply directly: no trailing newline spoils `eq`.
    let test = format!("${{if eq{{${{readsocket{{{}}}{{ping}}{{2s}}}}}}{{pong}}{{yes}}{{no}}}}", socket.display());
    assert_eq!(stdout(&exim(&["-be", &test], "")).trim(), "yes");
    // With hintsd down, the fifth argument decides (fail open or closed).
    let gone = daemon.socket.with_file_name("no-such.sock");
    assert_eq!(expand(&gone, "ping"), "FAILED");
}

#[test]
fn exim_bh_acls_defer_at_the_rate_limit_and_greylist_until_the_delay() {
    let (daemon, _config) = daemon_for_exim();
    let spool = daemon.dir.path().join("exim-spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = text_socket(&daemon);
    let conf = daemon.dir.path().join("exim.conf");
    std::fs::write(
        &conf,
        format!(
            "primary_hostname = relay.test\n\
             spool_directory = {spool}\n\
             log_file_path = {spool}/%slog\n\
             acl_smtp_rcpt = acl_rcpt\n\
             begin acl\n\
             acl_rcpt:\n  \
               defer message = sender rate limited by hintsd\n        \
                     condition = ${{if match{{${{readsocket{{{socket}}}{{ratelimit 2 / 1h / strict / per_rcpt / $sender_host_address}}{{2s}}{{}}{{error}}}}}}{{^over}}}}\n  \
               defer message = greylisted by hintsd\n        \
                     condition = ${{if match{{${{readsocket{{{socket}}}{{greylist ${{sender_host_address}}_${{sender_address}}_${{local_part}}@${{domain}} 2s}}{{2s}}{{}}{{error}}}}}}{{^defer}}}}\n  \
               accept\n\
             begin routers\n\
             begin transports\n",
            spool = spool.display(),
            socket = socket.display(),
        ),
    )
    .unwrap();
    let session = |rcpts: &[&str]| {
        let mut smtp = String::from("EHLO client.test\r\nMAIL FROM:<alice@example.net>\r\n");
        for rcpt in rcpts {
            smtp.push_str(&format!("RCPT TO:<{rcpt}>\r\n"));
        }
        smtp.push_str("QUIT\r\n");
        let output = exim(&["-C", conf.to_str().unwrap(), "-bh", "192.0.2.9"], &smtp);
        // The EHLO reply ends with "250 HELP", MAIL's is "250 OK", then one line per RCPT.
        stdout(&output)
            .lines()
            .filter(|line| line.starts_with("250 ") || line.starts_with("451 "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    // First attempt: under the rate limit, but a new triplet is greylisted.
    assert_eq!(session(&["bob@example.org"]), ["250 HELP", "250 OK", "451 greylisted by hintsd"]);
    // After the delay the triplet passes; the next recipient reaches the limit of 2.
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(
        session(&["bob@example.org", "carol@example.org"]),
        ["250 HELP", "250 OK", "250 Accepted", "451 sender rate limited by hintsd"],
    );
}

#[test]
fn the_exim_session_bench_runs_every_variant() {
    let output = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/exim_session.sh"))
        .env("RCPTS", "5")
        .env("RUNS", "1")
        .env("HINTSD", common::hintsd_bin())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    let rows: Vec<_> = stdout(&output)
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| hints"))
        .map(str::to_owned)
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[2].starts_with("| ${readsocket} to hintsd |"), "{rows:?}");
}
