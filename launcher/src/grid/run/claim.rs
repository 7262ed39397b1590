//! Claims per cell, so several processes (array tasks, a second `mpirun`) can work in one
//! output directory at once and every cell runs once: `<output>/.claims/<cell id>` is taken
//! before a cell runs and given back when it ends. Two ways of holding one:
//!
//! - `flock` on the file (the default): the kernel drops it when the holder exits, however it
//!   dies, so a claim never outlives its process.
//! - Where `flock` is refused (NFS and Lustre mounts without lock support) or distrusted
//!   (`SUBPT_CLAIMS=create`: mounts where locks are only local to each client), the file is
//!   created with `O_EXCL` and holds its holder: host, pid, start time and, in an array job, the
//!   job and task. The holder refreshes its modification time every [`HEARTBEAT`]. A claim is
//!   stale, and taken over, when its holder is on this host and no longer running, when it names
//!   this very array task (a requeued task finds its own claims from before the preemption), or
//!   when it has not been refreshed for [`STALE_AFTER`] (its host died or was cut off).
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a process refreshes the claims it holds by exclusive creation.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A claim by exclusive creation not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(300);

/// The directory of a grid's claims.
pub fn claims_dir(output_dir: &Path) -> PathBuf {
    output_dir.join(subpt_trainer::store::CLAIMS)
}

/// A claim this process holds; dropping it gives the cell back.
pub struct Claim {
    path: PathBuf,
    /// Held open while the claim is held by `flock`.
    file: Option<File>,
}

/// Who holds a claim, as written into its file.
fn holder_line() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut line = format!("host {} pid {} since {since}", host(), std::process::id());
    if let Some(task) = array_task() {
        line.push_str(&format!(" task {task}"));
    }
    line
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// `<job>_<task>` of this SLURM array task, if it is one.
fn array_task() -> Option<String> {
    let job = std::env::var("SLURM_ARRAY_JOB_ID").ok()?;
    let task = std::env::var("SLURM_ARRAY_TASK_ID").ok()?;
    Some(format!("{job}_{task}"))
}

/// Whether claims are taken by exclusive creation (see the module docs).
fn exclusive_create() -> bool {
    std::env::var("SUBPT_CLAIMS").is_ok_and(|v| v == "create")
}

/// What a claim attempt came to.
pub enum Taken {
    Mine(Claim),
    /// Another process holds it (its holder line, as far as it could be read).
    Elsewhere(String),
}

/// Takes the claim on `cell_id` in `output_dir`'s claims, or says who holds it.
pub fn take(output_dir: &Path, cell_id: &str) -> Result<Taken, String> {
    take_with(output_dir, cell_id, exclusive_create())
}

fn take_with(output_dir: &Path, cell_id: &str, create: bool) -> Result<Taken, String> {
    let dir = claims_dir(output_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(cell_id);
    if !create {
        match by_flock(&path) {
            Ok(t) => return Ok(t),
            // The mount has no working flock: fall back to exclusive creation.
            Err(e) if unsupported(&e) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    by_creation(&path)
}

fn unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
    ) || e.kind() == std::io::ErrorKind::Unsupported
}

fn by_flock(path: &Path) -> std::io::Result<Taken> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        // A holder removes the file before it lets go: a lock on a file no longer at the path
        // was won on the old one, so it is not a claim; try again on the new file.
        Ok(()) if !same_file(&file, path) => by_flock(path),
        Ok(()) => {
            file.set_len(0)?;
            writeln!(file, "{}", holder_line())?;
            Ok(Taken::Mine(Claim {
                path: path.to_path_buf(),
                file: Some(file),
            }))
        }
        Err(TryLockError::WouldBlock) => Ok(Taken::Elsewhere(read_holder(path))),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata().ok().map(|m| (m.dev(), m.ino()));
    open.is_some() && open == file_id(path)
}

/// The file now at `path` (device, inode), if any: a file renamed over the path is another one.
pub(crate) fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn read_holder(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "holder unknown".into())
}

fn by_creation(path: &Path) -> Result<Taken, String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut f) => {
                writeln!(f, "{}", holder_line()).map_err(fail)?;
                heartbeat()
                    .lock()
                    .expect("heartbeat list")
                    .push(path.to_path_buf());
                return Ok(Taken::Mine(Claim {
                    path: path.to_path_buf(),
                    file: None,
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = read_holder(path);
                let age = std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if !stale(&holder, age) {
                    return Ok(Taken::Elsewhere(holder));
                }
                tracing::warn!("{}: stale claim ({holder}) taken over", path.display());
                // Only the stale holder's file is removed: a claim taken meanwhile reads
                // otherwise and stays.
                if read_holder(path) == holder {
                    let _ = std::fs::remove_file(path);
                }
            }
            Err(e) => return Err(fail(e)),
        }
    }
    Ok(Taken::Elsewhere(read_holder(path)))
}

/// The stale rule (module docs): `holder` as its file reads, `age` since its last refresh.
pub fn stale(holder: &str, age: Option<Duration>) -> bool {
    let field = |name: &str| {
        let mut words = holder.split_whitespace();
        words.find(|w| *w == name).and(words.next())
    };
    if age.is_some_and(|a| a > STALE_AFTER) {
        return true;
    }
    if let (Some(task), Some(mine)) = (field("task"), array_task()) {
        if task == mine {
            return true;
        }
    }
    let same_host = field("host") == Some(host().as_str());
    let pid = field("pid").and_then(|p| p.parse::<i32>().ok());
    match (same_host, pid) {
        // SAFETY: signal 0 only asks whether the process exists.
        (true, Some(pid)) => {
            pid != std::process::id() as i32
                && unsafe { libc::kill(pid, 0) } != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        }
        _ => false,
    }
}

/// The claims this process holds by exclusive creation, refreshed by one thread.
fn heartbeat() -> &'static Arc<Mutex<Vec<PathBuf>>> {
    static HELD: OnceLock<Arc<Mutex<Vec<PathBuf>>>> = OnceLock::new();
    HELD.get_or_init(|| {
        let held = Arc::new(Mutex::new(Vec::<PathBuf>::new()));
        let list = held.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(HEARTBEAT);
            let paths = list.lock().map(|l| l.clone()).unwrap_or_default();
            for p in paths {
                if let Ok(f) = OpenOptions::new().write(true).open(&p) {
                    let _ = f.set_modified(SystemTime::now());
                }
            }
        });
        held
    })
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.file.is_none() {
            if let Ok(mut held) = heartbeat().lock() {
                held.retain(|p| *p != self.path);
            }
        }
        // Removed while still held, so no process takes the claim between the release and the
        // removal and then loses its file.
        let _ = std::fs::remove_file(&self.path);
        self.file.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(t: Taken) -> Option<Claim> {
        match t {
            Taken::Mine(c) => Some(c),
            Taken::Elsewhere(_) => None,
        }
    }

    #[test]
    fn a_claim_is_held_once_and_given_back() {
        // Both ways: flock, and exclusive creation.
        for create in [false, true] {
            let d = tempfile::tempdir().unwrap();
            let out = d.path();
            let held = taken(take_with(out, "cell", create).unwrap()).expect("free");
            // The same process asking again (another worker of it) is refused too: flock
            // locks belong to open files.
            match take_with(out, "cell", create).unwrap() {
                Taken::Elsewhere(h) => {
                    assert!(h.contains(&format!("pid {}", std::process::id())), "{h}")
                }
                Taken::Mine(_) => panic!("taken twice ({create})"),
            }
            assert!(taken(take_with(out, "other", create).unwrap()).is_some());
            drop(held);
            assert!(!claims_dir(out).join("cell").exists());
            assert!(taken(take_with(out, "cell", create).unwrap()).is_some());
        }
    }

    #[test]
    fn a_dead_holders_claim_is_taken_over_by_creation() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        std::fs::create_dir_all(claims_dir(out)).unwrap();
        let dead = format!("host {} pid {} since 0\n", host(), i32::MAX - 7);
        std::fs::write(claims_dir(out).join("cell"), dead).unwrap();
        let c = taken(take_with(out, "cell", true).unwrap()).expect("stale, so taken over");
        let now = std::fs::read_to_string(claims_dir(out).join("cell")).unwrap();
        assert!(
            now.contains(&format!("pid {}", std::process::id())),
            "{now}"
        );
        drop(c);
    }

    #[test]
    fn stale_claims_are_the_dead_the_silent_and_this_tasks_own() {
        let me = host();
        // A live holder on this host (this process) is not stale; a dead one is.
        let live = format!("host {me} pid {} since 0", std::process::id());
        assert!(!stale(&live, Some(Duration::from_secs(1))));
        let dead = format!("host {me} pid {} since 0", i32::MAX - 7);
        assert!(stale(&dead, Some(Duration::from_secs(1))));
        // Another host: only silence makes it stale.
        let far = "host elsewhere pid 1 since 0";
        assert!(!stale(far, Some(Duration::from_secs(60))));
        assert!(stale(far, Some(STALE_AFTER + Duration::from_secs(1))));
    }
}
