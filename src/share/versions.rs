//! The versions of a name on the network. Holders are announcements: how
//! many peers list a content says nothing about which one is right (a
//! forger can list as many as it has addresses), so no version is ever
//! chosen by count. `download FILE` takes a version only when it is the
//! only one, or the only one with a holder that answers; otherwise the
//! user picks one by its hash (`--hash PREFIX`), from what `find` shows.

use indicatif::HumanBytes;

use super::hash::{self, Hash};
use super::names::shown;
use super::pb;
use super::tracker::check_entry;

/// One content under a name, and who says they have it.
#[derive(Debug, Clone)]
pub struct Version {
    pub hash: Hash,
    /// The entry with its piece hashes, checked (they make the hash).
    pub entry: pb::FileEntry,
    /// Holders of this content (same size and piece size as `entry`).
    pub holders: Vec<pb::Holder>,
}

impl Version {
    /// `blake3 1a2b3c4d5e6f: 3.00 MiB (3145745 bytes)`.
    pub fn title(&self) -> String {
        format!(
            "blake3 {}: {} ({} bytes)",
            hash::short(&self.hash),
            HumanBytes(self.entry.size),
            self.entry.size
        )
    }
}

/// `p1 at 127.0.0.1:7301 (seen 0.4 s ago)`.
pub fn holder_line(h: &pb::Holder) -> String {
    format!(
        "{} at {} (seen {:.1} s ago)",
        shown(&h.peer),
        shown(&h.addr),
        h.last_seen_ms as f64 / 1000.0
    )
}

/// Groups a tracker's answer by content, in the tracker's order (oldest
/// records first). The tracker sends each content's piece hashes once; an
/// entry that does not check, or a holder whose entry fits no checked one,
/// is left out, with a line saying so.
pub fn group(holders: Vec<pb::Holder>) -> (Vec<Version>, Vec<String>) {
    let mut versions: Vec<Version> = Vec::new();
    let mut problems = Vec::new();
    // Entries with their pieces first: they say what each content is.
    for h in &holders {
        let Some(f) = &h.file else { continue };
        if f.pieces.is_empty() && hash::piece_count(f.size, f.piece_size) > 0 {
            continue;
        }
        let Ok(hash) = check_entry(f) else {
            problems.push(format!(
                "{}: its entry does not check: left out",
                holder_line(h)
            ));
            continue;
        };
        if !versions.iter().any(|v| v.hash == hash) {
            versions.push(Version {
                hash,
                entry: f.clone(),
                holders: Vec::new(),
            });
        }
    }
    for h in holders {
        let Some(f) = &h.file else { continue };
        let fits = versions.iter_mut().find(|v| {
            v.entry.hash == f.hash && v.entry.size == f.size && v.entry.piece_size == f.piece_size
        });
        match fits {
            Some(v) => v.holders.push(h),
            None => {
                if !problems.iter().any(|p| p.starts_with(&holder_line(&h))) {
                    problems.push(format!(
                        "{}: no checked entry for its content: left out",
                        holder_line(&h)
                    ));
                }
            }
        }
    }
    (versions, problems)
}

/// The version whose hash starts with `prefix` (hex digits, any case).
pub fn pick<'a>(name: &str, versions: &'a [Version], prefix: &str) -> Result<&'a Version, String> {
    let p = prefix.to_ascii_lowercase();
    if p.is_empty() || p.len() > 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "--hash {:?}: a hash prefix is 1-64 hex digits (0-9, a-f), as `find {name}` shows them",
            shown(prefix)
        ));
    }
    let hits: Vec<&Version> = versions
        .iter()
        .filter(|v| hash::hex(&v.hash).starts_with(&p))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "no version of {name} has a hash starting with {p} (the network has {}: `find {name}` shows them)",
            list(versions)
        )),
        many => Err(format!(
            "--hash {p} fits {} versions of {name} ({}): give more digits",
            many.len(),
            many.iter()
                .map(|v| hash::short(&v.hash))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn list(versions: &[Version]) -> String {
    if versions.is_empty() {
        return "none".into();
    }
    versions
        .iter()
        .map(|v| hash::short(&v.hash))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(content: u8, pieces: bool) -> pb::FileEntry {
        let ps = 1024u64;
        let values: Vec<Hash> = (0..2).map(|i| [content ^ i; 32]).collect();
        let size = 2 * ps;
        let h = hash::combine(&values, ps, size).expect("combine");
        pb::FileEntry {
            name: "doc.bin".into(),
            size,
            hash: bytes::Bytes::copy_from_slice(&h),
            piece_size: ps,
            pieces: if pieces {
                values
                    .iter()
                    .map(|v| bytes::Bytes::copy_from_slice(v))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    fn holder(peer: &str, content: u8, pieces: bool) -> pb::Holder {
        pb::Holder {
            peer: peer.into(),
            addr: format!("127.0.0.1:{}", 7000 + u16::from(content)),
            file: Some(entry(content, pieces)),
            last_seen_ms: 400,
        }
    }

    #[test]
    fn holders_group_by_content_and_pieces_come_once_per_content() {
        let (v, problems) = group(vec![
            holder("honest1", 1, true),
            holder("evil1", 2, true),
            holder("honest2", 1, false),
            holder("evil2", 2, false),
            holder("evil3", 2, false),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].holders.len(), 2);
        assert_eq!(v[1].holders.len(), 3);
        assert_eq!(v[0].entry.pieces.len(), 2);
        // A holder whose content has no piece list anywhere is left out.
        let (v, problems) = group(vec![holder("a", 1, true), holder("b", 3, false)]);
        assert_eq!(v.len(), 1);
        assert!(problems[0].contains("b at"), "{problems:?}");
        // An entry that does not check is left out, never trusted.
        let mut bad = holder("liar", 4, true);
        if let Some(f) = bad.file.as_mut() {
            f.pieces[0] = bytes::Bytes::from_static(&[9u8; 32]);
        }
        let (v, problems) = group(vec![bad]);
        assert!(v.is_empty());
        assert!(problems[0].contains("does not check"), "{problems:?}");
    }

    #[test]
    fn a_hash_prefix_picks_one_version_or_says_why_not() {
        let (v, _) = group(vec![holder("a", 1, true), holder("b", 2, true)]);
        let full = hash::hex(&v[1].hash);
        assert_eq!(
            pick("doc.bin", &v, &full[..8]).expect("unique").hash,
            v[1].hash
        );
        assert_eq!(
            pick("doc.bin", &v, &full[..8].to_uppercase())
                .expect("any case")
                .hash,
            v[1].hash
        );
        let e = pick("doc.bin", &v, "xyz").expect_err("not hex");
        assert!(e.contains("hex digits"), "{e}");
        let e = pick("doc.bin", &v, "").expect_err("empty");
        assert!(e.contains("hex digits"), "{e}");
        // A prefix neither starts with.
        let other = (0..16u8)
            .map(|d| format!("{d:x}"))
            .find(|d| {
                v.iter()
                    .all(|x| !hash::hex(&x.hash).starts_with(d.as_str()))
            })
            .expect("a digit neither starts with");
        let e = pick("doc.bin", &v, &other).expect_err("no match");
        assert!(e.contains("no version of doc.bin"), "{e}");
        // The same version twice under one prefix is ambiguous only if two differ.
        let mut twins = v.clone();
        twins[1].hash = v[0].hash;
        twins[1].hash[31] ^= 1;
        let e = pick("doc.bin", &twins, &hash::hex(&v[0].hash)[..10]).expect_err("ambiguous");
        assert!(e.contains("fits 2 versions"), "{e}");
    }
}
