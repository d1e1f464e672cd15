//! Loading and validating `machines.txt` / `peers.json`.
//!
//! Both files are one JSON object mapping a node's name to its `host:port`,
//! exactly as the original Python toolkit wrote them. This module owns turning
//! such a file into a [`Cluster`] (whose indices are [`NodeId`]s) and saying
//! precisely what is wrong with a bad one (which file, which name, which
//! field); it knows nothing of algorithms, nodes or networks.

use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};

/// The 3-node loopback cluster embedded in the binary (used whenever no file
/// is given and the default file is absent). The shipped `machines.txt` and
/// `peers.json` are the same three nodes, so a new user's first cluster is
/// complete with three terminals.
pub const DEFAULT_MACHINES: &str = include_str!("../machines.txt");

/// A node's index in its [`Cluster`] (names sorted). Indices are local: the
/// wire carries names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{file}: not valid JSON: {detail} (expected an object like {{\"l1\": \"127.0.0.1:50051\"}})"
    )]
    Json { file: PathBuf, detail: String },
    #[error("{file}: no nodes listed (expected an object like {{\"l1\": \"127.0.0.1:50051\"}})")]
    Empty { file: PathBuf },
    #[error("{file}: node name {name:?} is listed twice")]
    DuplicateName { file: PathBuf, name: String },
    #[error("{file}: node {name:?}: the name must be non-empty and without spaces")]
    BadName { file: PathBuf, name: String },
    #[error("{file}: node {name:?}: address {addr:?} is not host:port ({detail})")]
    BadAddress {
        file: PathBuf,
        name: String,
        addr: String,
        detail: String,
    },
    #[error("{file}: nodes {first:?} and {second:?} both use {addr}")]
    DuplicateAddress {
        file: PathBuf,
        first: String,
        second: String,
        addr: SocketAddr,
    },
    #[error("{file}: no node named {name:?} (known: {known})")]
    UnknownName {
        file: PathBuf,
        name: String,
        known: String,
    },
}

/// The nodes of one config file, sorted by name; a [`NodeId`] is an index here.
#[derive(Clone, Debug)]
pub struct Cluster {
    source: PathBuf,
    names: Vec<String>,
    addrs: Vec<SocketAddr>,
    by_name: HashMap<String, NodeId>,
}

impl Cluster {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Cluster, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Cluster::parse(path, &text)
    }

    /// Validates config text; `source` names the file in error messages.
    pub fn parse(source: &Path, text: &str) -> Result<Cluster, ConfigError> {
        let file = source.to_path_buf();
        let entries = parse_entries(text).map_err(|detail| ConfigError::Json {
            file: file.clone(),
            detail,
        })?;
        if entries.is_empty() {
            return Err(ConfigError::Empty { file });
        }
        let mut parsed: Vec<(String, SocketAddr)> = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return Err(ConfigError::BadName { file, name });
            }
            if parsed.iter().any(|(n, _)| *n == name) {
                return Err(ConfigError::DuplicateName { file, name });
            }
            let addr = match value {
                serde_json::Value::String(s) => {
                    resolve(&s).map_err(|detail| ConfigError::BadAddress {
                        file: file.clone(),
                        name: name.clone(),
                        addr: s.clone(),
                        detail,
                    })?
                }
                other => {
                    return Err(ConfigError::BadAddress {
                        file,
                        name,
                        addr: other.to_string(),
                        detail: "expected a string".into(),
                    });
                }
            };
            if let Some((first, _)) = parsed.iter().find(|(_, a)| *a == addr) {
                return Err(ConfigError::DuplicateAddress {
                    file,
                    first: first.clone(),
                    second: name,
                    addr,
                });
            }
            parsed.push((name, addr));
        }
        parsed.sort_by(|a, b| a.0.cmp(&b.0));
        let by_name = parsed
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), NodeId(i as u32)))
            .collect();
        let (names, addrs) = parsed.into_iter().unzip();
        Ok(Cluster {
            source: file,
            names,
            addrs,
            by_name,
        })
    }

    /// The config named by a `--machines`/`--peers` flag; without one,
    /// `./default_file` if it exists, else the built-in cluster (saying so
    /// on stderr).
    pub fn from_flag(path: Option<&Path>, default_file: &str) -> Result<Cluster, ConfigError> {
        match path {
            Some(p) => Cluster::load(p),
            None if Path::new(default_file).exists() => Cluster::load(Path::new(default_file)),
            None => {
                let c = Cluster::parse(
                    Path::new(&format!("<built-in {default_file}>")),
                    DEFAULT_MACHINES,
                )?;
                eprintln!(
                    "no {default_file} here: using the built-in {} on 127.0.0.1",
                    c.names().join(", ")
                );
                Ok(c)
            }
        }
    }

    /// A cluster of `n` nodes `l1..ln` on loopback, from `base_port` up.
    pub fn loopback(n: usize, base_port: u16) -> Cluster {
        let text = serde_json::Value::Object(
            (1..=n)
                .map(|i| {
                    (
                        format!("l{i}"),
                        format!("127.0.0.1:{}", base_port as usize + i - 1).into(),
                    )
                })
                .collect(),
        );
        Cluster::parse(Path::new("the simulated cluster"), &text.to_string())
            .expect("generated loopback config is valid")
    }

    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.names.len() as u32).map(NodeId)
    }

    pub fn name(&self, id: NodeId) -> &str {
        &self.names[id.index()]
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `l1, l2, l3`: the names of `ids`, for a line of text.
    pub fn list(&self, ids: &[NodeId]) -> String {
        ids.iter()
            .map(|&i| self.name(i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn addr(&self, id: NodeId) -> SocketAddr {
        self.addrs[id.index()]
    }

    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// Looks a name up, with an error that lists the names that do exist.
    pub fn require(&self, name: &str) -> Result<NodeId, ConfigError> {
        self.id(name).ok_or_else(|| ConfigError::UnknownName {
            file: self.source.clone(),
            name: name.to_string(),
            known: self.names.join(", "),
        })
    }
}

fn resolve(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return check_port(addr);
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| "missing :port".to_string())?;
    if host.is_empty() {
        return Err("missing host".into());
    }
    port.parse::<u16>()
        .map_err(|_| format!("port {port:?} is not a number from 1 to 65535"))?;
    let addr = (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("host {host:?} has no address"))?;
    let port = port.parse().unwrap_or(0);
    check_port(SocketAddr::new(addr.ip(), port))
}

fn check_port(addr: SocketAddr) -> Result<SocketAddr, String> {
    if addr.port() == 0 {
        return Err("port 0 is not allowed".into());
    }
    Ok(addr)
}

/// Parses a JSON object keeping every key, so duplicates can be reported
/// (serde_json's own map silently keeps the last one).
fn parse_entries(text: &str) -> Result<Vec<(String, serde_json::Value)>, String> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, serde_json::Value)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object of name -> \"host:port\"")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = de.deserialize_map(Entries).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Cluster, ConfigError> {
        Cluster::parse(Path::new("m.json"), text)
    }

    #[test]
    fn sorts_names_and_resolves_addresses() {
        let c = parse(r#"{"b": "127.0.0.1:2", "a": "localhost:1"}"#).unwrap();
        assert_eq!(c.names(), ["a", "b"]);
        assert_eq!(c.addr(NodeId(0)).port(), 1);
        assert_eq!(c.id("b"), Some(NodeId(1)));
    }

    #[test]
    fn every_bad_file_names_the_file_and_the_fault() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[1,2]", "not valid JSON"),
            ("{}", "no nodes"),
            (
                r#"{"a": "127.0.0.1:1", "a": "127.0.0.1:2"}"#,
                "listed twice",
            ),
            (r#"{"a": "127.0.0.1"}"#, "missing :port"),
            (r#"{"a": "127.0.0.1:99999"}"#, "not a number"),
            (r#"{"a": 5}"#, "expected a string"),
            (r#"{"a": "127.0.0.1:1", "b": "127.0.0.1:1"}"#, "both use"),
            (r#"{"a b": "127.0.0.1:1"}"#, "without spaces"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with("m.json: "), "{text}: {err}");
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_name_lists_known_ones() {
        let c = parse(r#"{"a": "127.0.0.1:1"}"#).unwrap();
        let err = c.require("zz").unwrap_err().to_string();
        assert!(err.contains("\"zz\"") && err.contains("known: a"), "{err}");
    }

    #[test]
    fn embedded_default_is_three_loopback_nodes() {
        let c = parse(DEFAULT_MACHINES).unwrap();
        assert_eq!(c.len(), 3);
        assert!(c.ids().all(|id| c.addr(id).ip().is_loopback()));
    }
}
