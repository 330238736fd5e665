//! Where a socket client last ran, read from `/proc/<pid>/stat`: for connections on the socket,
//! the counterpart of the CPU word a ring client writes into its ring (`connection.rs` follows
//! either to the lane on that CPU).

/// The CPU process `pid` last ran on, or `None` when `/proc` does not say (the process is
/// gone, is in another PID namespace, or `/proc` is mounted with `hidepid`).
pub fn last_cpu(pid: i32) -> Option<usize> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    processor_field(&stat)
}

/// The `processor` field, the 39th of a `stat` line (proc(5)). Fields are counted from the
/// end of the command name, which is in parentheses and may itself hold spaces and
/// parentheses: the first field after the last `)` is the 3rd.
fn processor_field(stat: &[u8]) -> Option<usize> {
    const PROCESSOR: usize = 39;
    const FIRST_AFTER_NAME: usize = 3;
    let after_name = &stat[stat.iter().rposition(|&byte| byte == b')')? + 1..];
    let field = std::str::from_utf8(after_name).ok()?.split_ascii_whitespace().nth(PROCESSOR - FIRST_AFTER_NAME)?;
    field.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_processor_field_is_found_after_any_command_name() {
        let rest = (3..=52).map(|field| if field == 39 { "7".to_owned() } else { field.to_string() });
        let rest: Vec<String> = rest.collect();
        for name in ["exim4", "a b", "x) 1 2 (y", ")"] {
            let line = format!("1234 ({name}) {}\n", rest.join(" "));
            assert_eq!(processor_field(line.as_bytes()), Some(7), "{line}");
        }
        assert_eq!(processor_field(b"1234 (cut short) S 1 2"), None);
        assert_eq!(processor_field(b"no name at all"), None);
        assert_eq!(processor_field(b""), None);
    }

    #[test]
    fn this_process_is_found_on_a_cpu_and_a_missing_one_nowhere() {
        let cpu = last_cpu(std::process::id() as i32).expect("/proc says where this test runs");
        assert!(cpu < nix::sched::CpuSet::count(), "cpu {cpu}");
        assert_eq!(last_cpu(-1), None);
    }
}
