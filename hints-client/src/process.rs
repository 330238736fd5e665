//! Which process this is, cheaply: a token in a page the kernel wipes in every child
//! (`MADV_WIPEONFORK`), so the fork check a call makes is one load, not a `getpid` system
//! call, and it holds whatever made the child (`fork`, `_Fork`, a raw `clone`).
//!
//! A process takes its token on first use; a child finds the page zeroed and takes a new one,
//! different from every token its parent's memory holds. On a kernel without
//! `MADV_WIPEONFORK` (before Linux 4.14) the mark falls back to the process id.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The page holding this process's token; `None` where the kernel cannot wipe it on fork.
static TOKEN_PAGE: OnceLock<Option<&'static AtomicU64>> = OnceLock::new();
/// Tokens handed out in this process's line; a child continues from its parent's count, so
/// its token is new to every mark it inherited.
static TOKENS_TAKEN: AtomicU64 = AtomicU64::new(0);

/// Names the process that took it: two marks are equal only in the same process. A child,
/// however it was forked, holds a different one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProcessMark {
    Token(u64),
    Pid(u32),
}

impl ProcessMark {
    /// This process's mark.
    pub(crate) fn current() -> ProcessMark {
        let Some(token) = *TOKEN_PAGE.get_or_init(wiped_on_fork_page) else {
            return ProcessMark::Pid(std::process::id());
        };
        match token.load(Ordering::Acquire) {
            0 => {
                let fresh = TOKENS_TAKEN.fetch_add(1, Ordering::Relaxed) + 1;
                // Two threads taking the first token at once agree on one.
                match token.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => ProcessMark::Token(fresh),
                    Err(taken) => ProcessMark::Token(taken),
                }
            }
            taken => ProcessMark::Token(taken),
        }
    }

    /// True in the process that took the mark.
    pub(crate) fn is_current(self) -> bool {
        self == ProcessMark::current()
    }
}

/// A zeroed page the kernel zeroes again in every child; `None` if it cannot.
fn wiped_on_fork_page() -> Option<&'static AtomicU64> {
    const PAGE_BYTES: usize = 4096;
    // SAFETY: a fresh private anonymous mapping, never unmapped once it is handed out; an
    // AtomicU64 at its (page-aligned) start is in bounds and aligned.
    unsafe {
        let page = libc::mmap(
            std::ptr::null_mut(),
            PAGE_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if page == libc::MAP_FAILED {
            return None;
        }
        if libc::madvise(page, PAGE_BYTES, libc::MADV_WIPEONFORK) != 0 {
            libc::munmap(page, PAGE_BYTES);
            return None;
        }
        Some(&*page.cast::<AtomicU64>())
    }
}

#[cfg(test)]
mod tests {
    use super::ProcessMark;

    /// Runs `make_child` (a fork of some kind); in the child, exits 0 if the parent's mark is
    /// not the child's; in the parent, checks the child's verdict and that its own mark holds.
    fn check_child(make_child: impl FnOnce() -> libc::pid_t) {
        let mark = ProcessMark::current();
        assert!(mark.is_current());
        let pid = make_child();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = if mark.is_current() { 1 } else { 0 };
            // SAFETY: the child exits at once, without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child saw its parent's mark");
        assert!(mark.is_current(), "the parent is still the same process");
    }

    #[test]
    fn a_child_of_fork_is_another_process() {
        // SAFETY: the child only compares marks and exits.
        check_child(|| unsafe { libc::fork() });
    }

    #[test]
    fn a_child_of_a_raw_fork_system_call_is_another_process() {
        // No atfork handlers run for this child, as for `_Fork` or a raw `clone`.
        // SAFETY: as above; SYS_fork exists on x86_64, the platform this crate is built for.
        #[cfg(target_arch = "x86_64")]
        check_child(|| unsafe { libc::syscall(libc::SYS_fork) as libc::pid_t });
    }
}
