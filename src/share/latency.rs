//! `--latency-file`: the original's table of delays between peers. One
//! pair per line, `PEER PEER MS` (spaces, tabs or commas between them), a
//! peer named by its name, its address (`127.0.0.1:7001`, or
//! `localhost:7001`) or its port alone; `#` starts a comment. A pair not
//! in the table has the default delay, 100 ms. Delays are symmetric.

use std::collections::HashMap;
use std::path::Path;

pub const DEFAULT_MS: f64 = 100.0;

#[derive(Debug, Clone, Default)]
pub struct Latencies {
    pairs: HashMap<(String, String), f64>,
}

impl Latencies {
    pub fn load(path: &Path) -> Result<Latencies, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the latency file {}: {e}", path.display()))?;
        Latencies::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Latencies, String> {
        let mut pairs = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let words: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|w| !w.is_empty())
                .collect();
            let [a, b, ms] = words[..] else {
                return Err(format!(
                    "line {}: {line:?} is not `PEER PEER MILLISECONDS`",
                    n + 1
                ));
            };
            let ms: f64 = ms
                .trim_end_matches("ms")
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v <= 600_000.0)
                .ok_or_else(|| {
                    format!(
                        "line {}: {ms:?} is not a delay in milliseconds (0..600000)",
                        n + 1
                    )
                })?;
            pairs.insert((a.to_string(), b.to_string()), ms);
            pairs.insert((b.to_string(), a.to_string()), ms);
        }
        Ok(Latencies { pairs })
    }

    /// The delay between two peers, each known by any of its names (see
    /// [`aliases`]); the default if the table does not list them.
    pub fn between<S: AsRef<str>>(&self, a: &[S], b: &[S]) -> (f64, bool) {
        for x in a {
            for y in b {
                if let Some(ms) = self
                    .pairs
                    .get(&(x.as_ref().to_string(), y.as_ref().to_string()))
                {
                    return (*ms, true);
                }
            }
        }
        (DEFAULT_MS, false)
    }
}

/// The names a peer may go by in the table: its name, its address, its
/// port, and `localhost:PORT` for a loopback address.
pub fn aliases(name: &str, addr: &str) -> Vec<String> {
    let mut v = vec![name.to_string(), addr.to_string()];
    if let Ok(a) = addr.parse::<std::net::SocketAddr>() {
        v.push(a.port().to_string());
        if a.ip().is_loopback() {
            v.push(format!("localhost:{}", a.port()));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_by_name_or_address_symmetric_with_a_default() {
        let l =
            Latencies::parse("# delays\np1 p2 20\np1, 127.0.0.1:7003, 250ms\n\n").expect("parse");
        assert_eq!(l.between(&["p2"], &["p1"]), (20.0, true));
        assert_eq!(
            l.between(&["p1", "127.0.0.1:7001"], &["p3", "127.0.0.1:7003"]),
            (250.0, true)
        );
        assert_eq!(l.between(&["p2"], &["p3"]), (DEFAULT_MS, false));
        let by_port = Latencies::parse("7001 localhost:7002 40").expect("parse");
        assert_eq!(
            by_port.between(
                &aliases("a", "127.0.0.1:7001"),
                &aliases("b", "127.0.0.1:7002")
            ),
            (40.0, true)
        );
    }

    #[test]
    fn bad_lines_name_their_line() {
        let e = Latencies::parse("p1 p2 20\np1 p3\n").expect_err("short line");
        assert!(e.contains("line 2"), "{e}");
        let e = Latencies::parse("p1 p2 fast").expect_err("not a number");
        assert!(e.contains("line 1") && e.contains("fast"), "{e}");
    }
}
