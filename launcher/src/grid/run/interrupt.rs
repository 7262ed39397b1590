//! What a person sees when they stop a grid with Ctrl-C or `kill`: one line saying how much is
//! done and that a rerun resumes, instead of silence. Finished cells are already on disk
//! (results are written atomically), so the process then ends as the signal asks.
//!
//! The signal handler only writes the signal number to a pipe (all a handler may safely do);
//! a thread reads it, prints the line with the counts the scheduler keeps here, restores the
//! default action and raises the signal again, so the exit status still says "killed by
//! SIGINT/SIGTERM" to shells and batch systems.
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

static DONE: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);
static PIPE: AtomicI32 = AtomicI32::new(-1);

/// The grid has `total` cells, `done` of them already done.
pub(crate) fn set_counts(done: usize, total: usize) {
    DONE.store(done, Ordering::Relaxed);
    TOTAL.store(total, Ordering::Relaxed);
}

/// One more cell finished.
pub(crate) fn cell_done() {
    DONE.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE.load(Ordering::Relaxed);
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; a failed write only loses the message.
    unsafe {
        libc::write(fd, (&b as *const u8).cast(), 1);
    }
}

/// Installs the handlers for SIGINT and SIGTERM (once per process).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) returns.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return;
        }
        PIPE.store(fds[1], Ordering::Relaxed);
        let reader = fds[0];
        std::thread::spawn(move || {
            let mut b = 0u8;
            // SAFETY: reads one byte into `b` from the pipe this thread owns.
            let n = unsafe { libc::read(reader, (&mut b as *mut u8).cast(), 1) };
            if n != 1 {
                return;
            }
            let sig = b as libc::c_int;
            let name = if sig == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            eprintln!(
                "\ninterrupted ({name}): {}/{} cells done and kept; rerun the same command to \
                 resume",
                DONE.load(Ordering::Relaxed),
                TOTAL.load(Ordering::Relaxed)
            );
            // SAFETY: restoring the default action and raising the signal ends the process
            // as the signal asked.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
        });
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: `on_signal` only calls write(2).
            unsafe {
                libc::signal(sig, on_signal as *const () as libc::sighandler_t);
            }
        }
    });
}
