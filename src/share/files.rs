//! A peer's directory: which names are allowed, what is shared (scanned and
//! hashed, with a cache so a rescan only hashes what changed), and the
//! partial downloads kept in `DIR/.dsys-share/` (never under a final name).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::hash::{self, Digest, Hash};

/// Where a peer keeps its own state inside DIR; never shared.
pub const STATE_DIR: &str = ".dsys-share";
const INDEX: &str = "index.json";
const MAX_NAME: usize = 255;

/// Is `name` a plain file name inside a directory? Names come from the
/// network and from commands; anything that could reach outside DIR (or
/// into the peer's own state) is refused, with the reason.
pub fn check_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "an empty name"
    } else if name.len() > MAX_NAME {
        "longer than 255 bytes"
    } else if name == "." || name == ".." {
        "not a file name"
    } else if name.contains('/') || name.contains('\\') {
        "a path, not a plain file name in the directory"
    } else if name.chars().any(|c| c.is_control()) {
        "a name with control characters"
    } else if name == STATE_DIR || name.starts_with(".dsys-share") {
        "the peer's own state"
    } else {
        return Ok(());
    };
    Err(format!("{:?} is refused: {why}", truncate(name)))
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// One shared file as scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    pub name: String,
    pub size: u64,
    /// Modification time (ns since the epoch): a changed file is rehashed.
    pub mtime: u128,
    #[serde(with = "hex_hash")]
    pub hash: Hash,
    pub piece_size: u64,
    #[serde(with = "hex_hashes")]
    pub pieces: Vec<Hash>,
}

impl Shared {
    fn from_digest(name: String, mtime: u128, d: Digest) -> Shared {
        Shared {
            name,
            size: d.size,
            mtime,
            hash: d.hash,
            piece_size: d.piece_size,
            pieces: d.pieces,
        }
    }
}

/// What a scan found, for the user.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Entries not shared, with why.
    pub skipped: Vec<(String, String)>,
    /// Bytes hashed (files new or changed since the last scan).
    pub hashed: u64,
}

/// The files a peer shares.
#[derive(Clone)]
pub struct Library {
    pub dir: PathBuf,
    /// DIR, with links resolved: a shared file must resolve inside it.
    real_dir: PathBuf,
    pub files: BTreeMap<String, Shared>,
}

pub fn mtime_of(m: &std::fs::Metadata) -> u128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

impl Library {
    /// Opens DIR (which must be a directory) and its cached index.
    pub fn open(dir: &Path) -> Result<Library, String> {
        let meta =
            std::fs::metadata(dir).map_err(|e| format!("cannot share {}: {e}", dir.display()))?;
        if !meta.is_dir() {
            return Err(format!("cannot share {}: not a directory", dir.display()));
        }
        let real_dir = dir
            .canonicalize()
            .map_err(|e| format!("cannot share {}: {e}", dir.display()))?;
        let state = dir.join(STATE_DIR);
        std::fs::create_dir_all(state.join("partial"))
            .map_err(|e| format!("cannot write {}: {e}", state.display()))?;
        let files = std::fs::read(state.join(INDEX))
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<Shared>>(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        Ok(Library {
            dir: dir.to_path_buf(),
            real_dir,
            files,
        })
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(STATE_DIR)
    }

    /// Is DIR/name a regular file that stays inside DIR?
    pub fn inside(&self, name: &str) -> Result<std::fs::Metadata, String> {
        check_name(name)?;
        let path = self.dir.join(name);
        let link = std::fs::symlink_metadata(&path).map_err(|e| format!("{name}: {e}"))?;
        if link.file_type().is_symlink() {
            let target = path
                .canonicalize()
                .map_err(|e| format!("{name}: a link that leads nowhere ({e})"))?;
            if !target.starts_with(&self.real_dir) {
                return Err(format!(
                    "{name}: a link to {} outside the directory",
                    target.display()
                ));
            }
        }
        let meta = std::fs::metadata(&path).map_err(|e| format!("{name}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("{name}: not a regular file"));
        }
        Ok(meta)
    }

    /// Scans DIR: hashes new and changed files, forgets removed ones.
    /// `progress(name, bytes_done, bytes_total)` is told while hashing.
    pub fn scan(&mut self, mut progress: impl FnMut(&str, u64, u64)) -> Result<ScanReport, String> {
        let mut report = ScanReport::default();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("cannot read {}: {e}", self.dir.display()))?;
        let mut found = BTreeMap::new();
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                report.skipped.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    "not UTF-8".into(),
                ));
                continue;
            };
            if name == STATE_DIR {
                continue;
            }
            let meta = match self.inside(&name) {
                Ok(m) => m,
                Err(e) => {
                    if !std::fs::symlink_metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                        report.skipped.push((name, e));
                    }
                    continue;
                }
            };
            let mtime = mtime_of(&meta);
            let known = self
                .files
                .get(&name)
                .filter(|s| s.size == meta.len() && s.mtime == mtime);
            let shared = match known {
                Some(s) => s.clone(),
                None => {
                    let total = meta.len();
                    let d = hash::digest_file(&self.dir.join(&name), |done| {
                        progress(&name, done, total)
                    })
                    .map_err(|e| format!("cannot read {}: {e}", self.dir.join(&name).display()));
                    match d {
                        Ok(d) => {
                            report.hashed += d.size;
                            if self.files.contains_key(&name) {
                                report.changed.push(name.clone());
                            } else {
                                report.added.push(name.clone());
                            }
                            Shared::from_digest(name.clone(), mtime, d)
                        }
                        Err(e) => {
                            report.skipped.push((name, e));
                            continue;
                        }
                    }
                }
            };
            found.insert(name, shared);
        }
        report.removed = self
            .files
            .keys()
            .filter(|k| !found.contains_key(*k))
            .cloned()
            .collect();
        self.files = found;
        self.save();
        Ok(report)
    }

    /// Adds a file just downloaded (already verified) without rehashing.
    pub fn add_verified(&mut self, s: Shared) {
        self.files.insert(s.name.clone(), s);
        self.save();
    }

    /// Is the shared file still what was scanned (size and time)?
    pub fn unchanged(&self, s: &Shared) -> Result<(), String> {
        let meta = self
            .inside(&s.name)
            .map_err(|e| format!("{e} (gone since the last updatelist)"))?;
        if meta.len() != s.size || mtime_of(&meta) != s.mtime {
            return Err(format!(
                "{} changed on disk since the last updatelist (its hash no longer holds)",
                s.name
            ));
        }
        Ok(())
    }

    fn save(&self) {
        let list: Vec<&Shared> = self.files.values().collect();
        if let Ok(bytes) = serde_json::to_vec(&list) {
            let _ = write_atomic(&self.state_dir().join(INDEX), &bytes);
        }
    }
}

/// Writes a file whole or not at all (a temp file, then a rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

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

/// Paths of a partial download of `name`: (data, record).
pub fn partial_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let base = dir.join(STATE_DIR).join("partial");
    (
        base.join(format!("{name}.part")),
        base.join(format!("{name}.json")),
    )
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hash::hex(h))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        super::hash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("not a hash"))
    }
}

mod hex_hashes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(v.len() * 64);
        for h in v {
            out.push_str(&super::hash::hex(h));
        }
        s.serialize_str(&out)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 64 != 0 {
            return Err(serde::de::Error::custom("not a list of hashes"));
        }
        (0..s.len() / 64)
            .map(|i| {
                s.get(i * 64..(i + 1) * 64)
                    .and_then(super::hash::from_hex)
                    .ok_or_else(|| serde::de::Error::custom("not a hash"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_directory_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc/passwd",
            "a/b",
            "a\\b",
            "x\ny",
            ".dsys-share",
            ".dsys-share-x",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a.txt", "big file.bin", "..hidden", "ünï"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn scan_hashes_new_files_keeps_unchanged_ones_and_skips_links_out() {
        let dir = std::env::temp_dir().join(format!("dsys-lib-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("a"), b"hello").expect("a");
        std::os::unix::fs::symlink("/etc/hostname", dir.join("out")).expect("link");
        std::fs::create_dir_all(dir.join("sub")).expect("sub");
        let mut lib = Library::open(&dir).expect("open");
        let r = lib.scan(|_, _, _| {}).expect("scan");
        assert_eq!(r.added, vec!["a".to_string()]);
        assert_eq!(r.hashed, 5);
        assert!(
            r.skipped
                .iter()
                .any(|(n, why)| n == "out" && why.contains("outside")),
            "{r:?}"
        );
        assert_eq!(lib.files["a"].hash, *blake3::hash(b"hello").as_bytes());
        // A second scan hashes nothing; the index survives a reopen.
        let mut again = Library::open(&dir).expect("reopen");
        let r = again.scan(|_, _, _| {}).expect("scan");
        assert_eq!((r.hashed, r.added.len()), (0, 0));
        std::fs::remove_file(dir.join("a")).expect("rm");
        let r = again.scan(|_, _, _| {}).expect("scan");
        assert_eq!(r.removed, vec!["a".to_string()]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
