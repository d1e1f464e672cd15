//! File and piece hashes, with BLAKE3's tree.
//!
//! A file is cut into pieces of a power-of-two size. Each piece's value is
//! its BLAKE3 chaining value as a subtree of the whole file's hash tree, so
//! the pieces' values combine (merge by merge, as BLAKE3 itself would) into
//! the file's hash: the `b3sum` of the file. A downloader checks every
//! piece against its value, and checks before it starts that the values
//! combine into the file's hash, so a file whose pieces all check is the
//! file the owner hashed — each byte is hashed once. A file of one piece
//! (or none) has the file's hash as its piece value.

use std::io::Read;
use std::path::Path;

use blake3::hazmat::{
    HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};

pub type Hash = [u8; 32];

/// The smallest piece BLAKE3's tree allows us (one chunk).
pub const MIN_PIECE: u64 = 1024;
/// The largest piece anyone may announce.
pub const MAX_PIECE: u64 = 16 * 1024 * 1024;

/// The piece size an owner uses for a file of `size` bytes: 1 MiB, 4 MiB
/// past 256 MiB (fewer values to announce, less overhead per piece), 16 MiB
/// past 512 GiB (so a file up to 2 TiB stays within the tracker's
/// `MAX_PIECES_PER_FILE`).
pub fn piece_size_for(size: u64) -> u64 {
    if size > 512 * 1024 * 1024 * 1024 {
        16 * 1024 * 1024
    } else if size > 256 * 1024 * 1024 {
        4 * 1024 * 1024
    } else {
        1024 * 1024
    }
}

/// How many pieces a file of `size` bytes has.
pub fn piece_count(size: u64, piece_size: u64) -> u64 {
    size.div_ceil(piece_size.max(1))
}

/// Byte range of piece `i`.
pub fn piece_range(size: u64, piece_size: u64, i: u64) -> (u64, u64) {
    let start = i.saturating_mul(piece_size).min(size);
    (start, start.saturating_add(piece_size).min(size))
}

/// The value of piece `index` holding `data`, in a file of `count` pieces.
pub fn piece_value(data: &[u8], index: u64, piece_size: u64, count: u64) -> Hash {
    piece_value_of_parts([data], index, piece_size, count)
}

/// The same, for a piece that arrived in parts (hashed in order, not joined).
pub fn piece_value_of_parts<'a>(
    parts: impl IntoIterator<Item = &'a [u8]>,
    index: u64,
    piece_size: u64,
    count: u64,
) -> Hash {
    let mut h = blake3::Hasher::new();
    if count <= 1 {
        for p in parts {
            h.update(p);
        }
        return *h.finalize().as_bytes();
    }
    h.set_input_offset(index * piece_size);
    for p in parts {
        h.update(p);
    }
    h.finalize_non_root()
}

/// The file's hash from its pieces' values, or None if the number of
/// values does not fit the size.
pub fn combine(pieces: &[Hash], piece_size: u64, size: u64) -> Option<Hash> {
    if !valid_piece_size(piece_size) || pieces.len() as u64 != piece_count(size, piece_size) {
        return None;
    }
    match pieces.len() {
        0 => Some(*blake3::hash(b"").as_bytes()),
        1 => Some(pieces[0]),
        _ => {
            let left = left_subtree_len(size);
            let l = subtree(pieces, piece_size, 0, left);
            let r = subtree(pieces, piece_size, left, size);
            Some(*merge_subtrees_root(&l, &r, Mode::Hash).as_bytes())
        }
    }
}

/// The chaining value of bytes `start..end`, which begins on a piece
/// boundary and is either one piece or splits on piece boundaries (a left
/// subtree is a power of two at least a piece long).
fn subtree(pieces: &[Hash], piece_size: u64, start: u64, end: u64) -> Hash {
    if end - start <= piece_size {
        return pieces[(start / piece_size) as usize];
    }
    let left = left_subtree_len(end - start);
    let l = subtree(pieces, piece_size, start, start + left);
    let r = subtree(pieces, piece_size, start + left, end);
    merge_subtrees_non_root(&l, &r, Mode::Hash)
}

pub fn valid_piece_size(p: u64) -> bool {
    p.is_power_of_two() && (MIN_PIECE..=MAX_PIECE).contains(&p)
}

/// A file's size, hash and piece values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub size: u64,
    pub hash: Hash,
    pub piece_size: u64,
    pub pieces: Vec<Hash>,
}

/// Reads and hashes a file; `progress` gets the bytes done so far.
pub fn digest_file(path: &Path, mut progress: impl FnMut(u64)) -> std::io::Result<Digest> {
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    let piece_size = piece_size_for(size);
    let count = piece_count(size, piece_size);
    let mut buf = vec![0u8; piece_size as usize];
    let mut pieces = Vec::with_capacity(count as usize);
    for i in 0..count {
        let (s, e) = piece_range(size, piece_size, i);
        let n = (e - s) as usize;
        f.read_exact(&mut buf[..n]).map_err(|e| {
            std::io::Error::new(e.kind(), format!("the file changed while it was read: {e}"))
        })?;
        pieces.push(piece_value(&buf[..n], i, piece_size, count));
        progress(e);
    }
    let hash = combine(&pieces, piece_size, size).ok_or_else(|| std::io::Error::other("pieces"))?;
    Ok(Digest {
        size,
        hash,
        piece_size,
        pieces,
    })
}

/// Lowercase hex.
pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 12 hex digits, for screens.
pub fn short(h: &[u8]) -> String {
    hex(&h[..h.len().min(6)])
}

pub fn from_hex(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn values(d: &[u8], ps: u64) -> Vec<Hash> {
        let count = piece_count(d.len() as u64, ps);
        (0..count)
            .map(|i| {
                let (s, e) = piece_range(d.len() as u64, ps, i);
                piece_value(&d[s as usize..e as usize], i, ps, count)
            })
            .collect()
    }

    #[test]
    fn pieces_combine_into_the_plain_blake3_hash_for_every_shape() {
        for ps in [1024u64, 2048, 8192] {
            for n in [
                0usize, 1, 1023, 1024, 1025, 2047, 2048, 2049, 3000, 4096, 5000, 8191, 8192, 8193,
                12288, 20000, 65536, 65537, 100_000,
            ] {
                let d = data(n);
                let got = combine(&values(&d, ps), ps, n as u64).expect("fits");
                assert_eq!(got, *blake3::hash(&d).as_bytes(), "size {n}, piece {ps}");
            }
        }
    }

    #[test]
    fn a_changed_byte_changes_exactly_its_piece_and_the_file_hash() {
        let ps = 1024;
        let d = data(5000);
        let mut bad = d.clone();
        bad[2100] ^= 1;
        let (a, b) = (values(&d, ps), values(&bad, ps));
        let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert_eq!(differ, vec![2]);
        assert_ne!(combine(&a, ps, 5000), combine(&b, ps, 5000));
    }

    #[test]
    fn a_piece_in_parts_hashes_like_the_piece_whole() {
        let d = data(8192);
        for count in [1u64, 4] {
            let whole = piece_value(&d[..2048], 1, 2048, count);
            let parts =
                piece_value_of_parts([&d[..100], &d[100..1500], &d[1500..2048]], 1, 2048, count);
            assert_eq!(whole, parts);
        }
    }

    #[test]
    fn wrong_counts_and_piece_sizes_do_not_combine() {
        let v = values(&data(5000), 1024);
        assert!(combine(&v, 1024, 4000).is_none());
        assert!(combine(&v, 1000, 5000).is_none());
        assert!(combine(&v[..4], 1024, 5000).is_none());
    }

    #[test]
    fn digest_file_matches_and_hex_round_trips() {
        let dir = std::env::temp_dir().join(format!("dsys-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("f");
        let d = data(3 * 1024 * 1024 + 5);
        std::fs::write(&p, &d).expect("write");
        let dg = digest_file(&p, |_| {}).expect("digest");
        assert_eq!(dg.hash, *blake3::hash(&d).as_bytes());
        assert_eq!(dg.pieces.len(), 4);
        assert_eq!(from_hex(&hex(&dg.hash)), Some(dg.hash));
        assert_eq!(from_hex("zz"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
