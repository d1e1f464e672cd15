//! Names a person reads: file names and peer names, from the network, from
//! disk or from a command. A name must be plain (it stays inside DIR) and
//! must read as what it is: characters that reorder, hide or break the text
//! around them (bidi controls, zero-width characters, line separators and
//! other format or control characters) are refused wherever a name enters,
//! and escaped (`\u{202e}`) wherever one is printed, so a name that got
//! past a check elsewhere (a hostile tracker's answer, a file on disk)
//! still cannot fool the eye.

/// Where a peer keeps its own state inside DIR; never shared.
pub const STATE_DIR: &str = ".dsys-share";
/// The longest file name, in bytes (what most file systems allow). A longer
/// name is refused: `longer than 255 bytes`.
pub const MAX_NAME: usize = 255;
/// The longest peer name, in characters. A longer `--name` or announced
/// name is refused: `a peer name is 1-64 characters`.
pub const MAX_PEER_NAME: usize = 64;

/// Is `c` a character that changes how the text around it reads, or hides
/// itself? Control characters (Cc), Unicode's format characters (Cf: bidi
/// controls and isolates, zero-width characters, the BOM, invisible
/// operators, tags...), and the line and paragraph separators (Zl, Zp).
pub fn deceptive(c: char) -> bool {
    if c.is_control() {
        return true;
    }
    matches!(
        c as u32,
        0x00AD                      // soft hyphen
        | 0x0600..=0x0605           // Arabic number signs
        | 0x061C                    // Arabic letter mark
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x180E                    // Mongolian vowel separator
        | 0x200B..=0x200F           // zero-width space, non-joiner, joiner; LRM, RLM
        | 0x2028..=0x2029           // line and paragraph separators
        | 0x202A..=0x202E           // bidi embeddings and overrides
        | 0x2060..=0x2064           // word joiner, invisible operators
        | 0x2066..=0x206F           // bidi isolates, deprecated format characters
        | 0xFEFF                    // zero-width no-break space (BOM)
        | 0xFFF9..=0xFFFB           // interlinear annotation
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F // tags
    )
}

/// `name` as it may be printed: every [`deceptive`] character (and the
/// backslash that starts an escape) written as an escape, `\u{202e}`.
pub fn shown(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if deceptive(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The name quoted for a message, at most 80 characters of it.
fn quoted(name: &str) -> String {
    let cut: String = name.chars().take(80).collect();
    let more = if cut.len() < name.len() { "…" } else { "" };
    format!("\"{}{more}\"", shown(&cut))
}

/// The first deceptive character of `s`, named for a message.
fn first_deceptive(s: &str) -> Option<String> {
    s.chars().find(|&c| deceptive(c)).map(|c| {
        let what = match c as u32 {
            0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C => {
                "a bidirectional-text control"
            }
            0x2028 | 0x2029 => "a line or paragraph separator",
            0x200B..=0x200D | 0x2060 | 0xFEFF => "a zero-width character",
            _ if c.is_control() => "a control character",
            _ => "an invisible format character",
        };
        format!("{what} (U+{:04X})", c as u32)
    })
}

/// Is `name` a plain file name inside a directory, that reads as what it
/// is? Names come from the network and from commands; anything that could
/// reach outside DIR (or into the peer's own state), or fool the eye, is
/// refused, with the reason.
pub fn check_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "an empty name".to_string()
    } else if name.len() > MAX_NAME {
        format!("longer than {MAX_NAME} bytes")
    } else if name == "." || name == ".." {
        "not a file name".to_string()
    } else if name.contains('/') || name.contains('\\') {
        "a path, not a plain file name in the directory".to_string()
    } else if let Some(c) = first_deceptive(name) {
        format!("a name with {c}")
    } else if name == STATE_DIR || name.starts_with(STATE_DIR) {
        "the peer's own state".to_string()
    } else {
        return Ok(());
    };
    Err(format!("{} is refused: {why}", quoted(name)))
}

/// Is `name` a peer name: 1 to [`MAX_PEER_NAME`] characters, none of them
/// [`deceptive`]?
pub fn check_peer_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > MAX_PEER_NAME {
        return Err(format!(
            "peer name {} is refused: a peer name is 1-{MAX_PEER_NAME} characters ({n} given)",
            quoted(name)
        ));
    }
    match first_deceptive(name) {
        Some(c) => Err(format!("peer name {} is refused: it has {c}", quoted(name))),
        None => Ok(()),
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
        for good in [
            "a.txt",
            "big file.bin",
            "..hidden",
            "ünï",
            "日本語.txt",
            "😀.png",
        ] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
        assert!(check_name(&"a".repeat(MAX_NAME)).is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn names_that_fool_the_eye_are_refused_and_say_which_character() {
        let cases = [
            (
                "invoice\u{202e}fdp.exe",
                "bidirectional-text control (U+202E)",
            ),
            ("a\u{202a}b", "U+202A"),
            ("a\u{2066}b", "U+2066"),
            ("a\u{2069}b", "U+2069"),
            ("a\u{200e}b", "U+200E"),
            ("a\u{200f}b", "U+200F"),
            ("a\u{061c}b", "U+061C"),
            ("one\u{2028}two", "line or paragraph separator (U+2028)"),
            ("one\u{2029}two", "U+2029"),
            ("doc\u{200b}.bin", "zero-width character (U+200B)"),
            ("a\u{200c}b", "U+200C"),
            ("a\u{200d}b", "U+200D"),
            ("a\u{2060}b", "U+2060"),
            ("\u{feff}a", "U+FEFF"),
            ("a\u{00ad}b", "invisible format character (U+00AD)"),
            ("a\u{e0041}b", "U+E0041"),
            ("a\u{7f}b", "control character (U+007F)"),
            ("a\u{85}b", "control character (U+0085)"),
            ("a\tb", "control character (U+0009)"),
        ];
        for (name, why) in cases {
            let e = check_name(name).expect_err(name);
            assert!(e.contains(why), "{name:?}: {e}");
            // The message itself shows the name escaped, never the raw character.
            assert!(!e.chars().any(deceptive), "{e:?}");
            let e = check_peer_name(name).expect_err(name);
            assert!(e.contains(why), "{name:?}: {e}");
        }
    }

    #[test]
    fn printed_names_escape_what_they_hide() {
        assert_eq!(shown("plain name.txt"), "plain name.txt");
        assert_eq!(shown("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(shown("x\u{2028}y\u{200b}"), "x\\u{2028}y\\u{200b}");
        assert_eq!(shown("a\nb"), "a\\u{a}b");
        // A backslash is escaped too, so `\u{202e}` typed as text cannot
        // pass for an escape.
        assert_eq!(shown("a\\u{202e}"), "a\\\\u{202e}");
        assert_eq!(shown("ünï 😀"), "ünï 😀");
    }

    #[test]
    fn peer_names_are_short_and_plain() {
        assert!(check_peer_name("p1").is_ok());
        assert!(check_peer_name("peer with spaces").is_ok());
        assert!(check_peer_name(&"é".repeat(MAX_PEER_NAME)).is_ok());
        assert!(check_peer_name(&"é".repeat(MAX_PEER_NAME + 1)).is_err());
        assert!(check_peer_name("").is_err());
        assert!(check_peer_name("mallory\u{202e}").is_err());
    }
}
