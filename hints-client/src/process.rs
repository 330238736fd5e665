//! Which process this is, cheaply: every child of `fork()` bumps a counter (a `pthread_atfork`
//! handler), so the fork check a call makes is an atomic load, not a `getpid` system call.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// Forks this process's line has gone through: each child starts with its parent's count
/// plus one.
static FORKS: AtomicU64 = AtomicU64::new(0);
static WATCH_FORKS: Once = Once::new();

extern "C" fn count_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Names the process that took it: two marks are equal only in the same process. A child
/// forked after the mark was taken holds a different one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcessMark {
    forks: u64,
}

impl ProcessMark {
    /// This process's mark.
    pub(crate) fn current() -> ProcessMark {
        WATCH_FORKS.call_once(|| {
            // SAFETY: the handler only bumps an atomic, which is async-signal-safe as a
            // child's atfork handler must be.
            let failed = unsafe { libc::pthread_atfork(None, None, Some(count_fork_in_child)) };
            // Without the handler a child could write to its parent's socket; better to stop.
            assert_eq!(failed, 0, "pthread_atfork failed; the client cannot tell a forked child");
        });
        ProcessMark { forks: FORKS.load(Ordering::Relaxed) }
    }

    /// True in the process that took the mark.
    pub(crate) fn is_current(self) -> bool {
        self == ProcessMark::current()
    }
}

#[cfg(test)]
mod tests {
    use super::ProcessMark;

    #[test]
    fn a_forked_child_is_another_process() {
        let mark = ProcessMark::current();
        assert!(mark.is_current());
        // SAFETY: the child only computes and exits with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = if mark.is_current() { 1 } else { 0 };
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child saw its parent's mark");
        assert!(mark.is_current(), "the parent is still the same process");
    }
}
