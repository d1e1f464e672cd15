//! A peer's directory: what is shared (scanned and hashed, with a cache so
//! a rescan only hashes what changed), and what is not: names that are not
//! plain (`names`), links out of DIR, hard links (unless
//! `--follow-hardlinks`), files too large to announce.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::hash::{self, Digest, Hash};
use super::names::shown;
pub use super::names::{STATE_DIR, check_name};
use super::tracker::MAX_PIECES_PER_FILE;

const INDEX: &str = "index.json";

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
    /// `--follow-hardlinks`: share regular files with more than one name.
    /// Off by default: a hard link made in DIR to a file outside it looks
    /// like any file of DIR, and would share what is outside.
    pub follow_hardlinks: bool,
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
            follow_hardlinks: false,
        })
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(STATE_DIR)
    }

    /// Is DIR/name a regular file that stays inside DIR (not a link out, not
    /// a hard link unless `follow_hardlinks`)?
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
                    shown(&target.display().to_string())
                ));
            }
        }
        let meta = std::fs::metadata(&path).map_err(|e| format!("{name}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("{name}: not a regular file"));
        }
        if meta.nlink() > 1 && !self.follow_hardlinks {
            return Err(format!(
                "{name}: a hard link (one file with {} names, which may be outside the directory); --follow-hardlinks shares such files",
                meta.nlink()
            ));
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
                None if too_large(meta.len()) => {
                    report.skipped.push((
                        name.clone(),
                        format!(
                            "{name}: too large to announce ({} bytes: more than {MAX_PIECES_PER_FILE} pieces)",
                            meta.len()
                        ),
                    ));
                    continue;
                }
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

/// Would the file have more pieces than the tracker takes?
fn too_large(size: u64) -> bool {
    hash::piece_count(size, hash::piece_size_for(size)) > MAX_PIECES_PER_FILE as u64
}

/// Writes a file whole or not at all (a temp file, then a rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

pub(super) mod hex_hash {
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

    #[test]
    fn hard_links_are_not_shared_unless_followed_and_eye_foolers_are_skipped() {
        let root = std::env::temp_dir().join(format!("dsys-lib-hard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("shared");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(root.join("outside.txt"), b"secret").expect("outside");
        std::fs::hard_link(root.join("outside.txt"), dir.join("in.txt")).expect("hard link");
        std::fs::write(dir.join("plain.txt"), b"plain").expect("plain");
        std::fs::write(dir.join("evil\u{202e}txt.exe"), b"x").expect("bidi name");
        let mut lib = Library::open(&dir).expect("open");
        let r = lib.scan(|_, _, _| {}).expect("scan");
        assert_eq!(r.added, vec!["plain.txt".to_string()], "{r:?}");
        assert!(
            r.skipped
                .iter()
                .any(|(n, why)| n == "in.txt" && why.contains("a hard link (one file with 2 names")),
            "{r:?}"
        );
        let bidi = r
            .skipped
            .iter()
            .find(|(n, _)| n.contains('\u{202e}'))
            .expect("the bidi name is skipped");
        assert!(bidi.1.contains("U+202E"), "{bidi:?}");
        // Serving checks too: a file linked after its scan is refused.
        std::fs::hard_link(dir.join("plain.txt"), root.join("plain-out.txt")).expect("link");
        let s = lib.files["plain.txt"].clone();
        assert!(lib.unchanged(&s).is_err());
        lib.follow_hardlinks = true;
        assert!(lib.unchanged(&s).is_ok());
        let r = lib.scan(|_, _, _| {}).expect("scan");
        assert_eq!(r.added, vec!["in.txt".to_string()], "{r:?}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
