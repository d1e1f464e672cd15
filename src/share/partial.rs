//! Partial downloads in `DIR/.dsys-share/partial/`: the data (`FILE.part`,
//! never under the final name), the record of the pieces done
//! (`FILE.json`), and the lock that keeps two downloads of one name into
//! one directory from sharing them (`FILE.lock`), and the check that the
//! disk can hold what is left to fetch.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::files::hex_hash;
use super::hash::{self, Hash};
use super::names::STATE_DIR;

/// A partial download's record, next to its data in `.dsys-share/partial/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    #[serde(with = "hex_hash")]
    pub hash: Hash,
    pub size: u64,
    pub piece_size: u64,
    /// Pieces written and checked, as a string of 0/1 (one per piece).
    pub done: String,
    pub updated: u64,
}

impl Partial {
    pub fn new(hash: Hash, size: u64, piece_size: u64) -> Partial {
        let n = hash::piece_count(size, piece_size) as usize;
        Partial {
            hash,
            size,
            piece_size,
            done: "0".repeat(n),
            updated: 0,
        }
    }
    pub fn is_done(&self, i: u64) -> bool {
        self.done.as_bytes().get(i as usize) == Some(&b'1')
    }
    pub fn mark(&mut self, i: u64, done: bool) {
        let mut b = std::mem::take(&mut self.done).into_bytes();
        if let Some(x) = b.get_mut(i as usize) {
            *x = if done { b'1' } else { b'0' };
        }
        self.done = String::from_utf8(b).unwrap_or_default();
        self.updated = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
    }
    pub fn count_done(&self) -> usize {
        self.done.bytes().filter(|&b| b == b'1').count()
    }
}

fn partial_dir(dir: &Path) -> PathBuf {
    dir.join(STATE_DIR).join("partial")
}

/// Paths of a partial download of `name`: (data, record).
pub fn partial_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let base = partial_dir(dir);
    (
        base.join(format!("{name}.part")),
        base.join(format!("{name}.json")),
    )
}

/// The locks this process holds (a lock file with this process's pid that
/// is not here was left by an earlier process with the same pid).
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn held(path: &Path) -> bool {
    HELD.lock().is_ok_and(|h| h.contains(path))
}

/// The download of one name into one directory, held while it runs: a
/// file made with `create_new` (so only one process can make it), holding
/// the owner's pid, removed when dropped. A lock whose pid is no longer
/// running (a download killed with -9) is taken over.
#[derive(Debug)]
pub struct DownloadLock {
    path: PathBuf,
}

impl DownloadLock {
    /// Takes the lock for `name` in `dir`, or says who holds it.
    pub fn take(dir: &Path, name: &str) -> Result<DownloadLock, String> {
        let path = partial_dir(dir).join(format!("{name}.lock"));
        // Twice at most: once, and once more after removing a stale lock.
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let me = std::process::id();
                    if let Ok(mut h) = HELD.lock() {
                        h.insert(path.clone());
                    }
                    let lock = DownloadLock { path };
                    f.write_all(me.to_string().as_bytes())
                        .map_err(|e| format!("cannot write {}: {e}", lock.path.display()))?;
                    return Ok(lock);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    let me = std::process::id();
                    match holder {
                        Some(pid) if pid == me && held(&path) => {
                            return Err(format!(
                                "download {name} is already running (by this peer); wait for it to finish"
                            ));
                        }
                        Some(pid) if pid != me && alive(pid) => {
                            let who = format!("by process {pid}, in the same directory");
                            return Err(format!(
                                "download {name} is already running ({who}); wait for it to finish"
                            ));
                        }
                        // A dead owner (or an earlier process that had this
                        // one's pid): taken over.
                        Some(_) => {
                            let _ = std::fs::remove_file(&path);
                        }
                        // No pid: left empty by a crash long ago (taken
                        // over), or being written this very moment.
                        None if stale_for(&path, Duration::from_secs(5)) => {
                            let _ = std::fs::remove_file(&path);
                        }
                        None => break,
                    }
                }
                Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
            }
        }
        Err(format!(
            "download {name} is already running (its lock {} is held); wait for it to finish",
            path.display()
        ))
    }
}

fn stale_for(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a > age)
}

impl Drop for DownloadLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Ok(mut h) = HELD.lock() {
            h.remove(&self.path);
        }
    }
}

/// Is process `pid` running? (Signal 0 checks without sending anything;
/// EPERM means it runs as someone else.)
fn alive(pid: u32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    !matches!(kill(Pid::from_raw(raw), None), Err(Errno::ESRCH))
}

/// Bytes free for this user on the file system holding `dir`.
pub fn free_space(dir: &Path) -> Result<u64, String> {
    let s = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| format!("cannot see the free space of {}: {e}", dir.display()))?;
    Ok((s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64))
}

/// Can `need` more bytes be written under `dir`? The message says how much
/// is missing.
pub fn check_room(dir: &Path, name: &str, need: u64) -> Result<(), String> {
    let free = free_space(dir)?;
    if need > free {
        return Err(format!(
            "{name} does not fit: {} ({need} bytes) still to fetch, {} free on the disk of {}",
            indicatif::HumanBytes(need),
            indicatif::HumanBytes(free),
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dsys-partial-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(partial_dir(&d)).expect("dir");
        d
    }

    #[test]
    fn one_download_per_name_and_a_dead_owners_lock_is_taken_over() {
        let d = dir("lock");
        let a = DownloadLock::take(&d, "doc.bin").expect("first");
        let e = DownloadLock::take(&d, "doc.bin").expect_err("second");
        assert!(e.contains("download doc.bin is already running"), "{e}");
        // Another name is another lock.
        let b = DownloadLock::take(&d, "other.bin").expect("other name");
        drop(a);
        let again = DownloadLock::take(&d, "doc.bin").expect("after the first ended");
        drop(again);
        drop(b);
        // A lock left by a process that is gone: taken over.
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let dead = child.id();
        child.wait().expect("wait");
        std::fs::write(partial_dir(&d).join("doc.bin.lock"), dead.to_string()).expect("stale");
        let taken = DownloadLock::take(&d, "doc.bin").expect("stale lock taken over");
        let held = std::fs::read_to_string(partial_dir(&d).join("doc.bin.lock")).expect("read");
        assert_eq!(held, std::process::id().to_string());
        drop(taken);
        assert!(!partial_dir(&d).join("doc.bin.lock").exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_file_larger_than_the_disk_does_not_fit() {
        let d = dir("room");
        assert!(free_space(&d).expect("statvfs") > 0);
        check_room(&d, "small.bin", 1).expect("one byte fits");
        let e = check_room(&d, "huge.bin", u64::MAX).expect_err("does not fit");
        assert!(e.starts_with("huge.bin does not fit:"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
