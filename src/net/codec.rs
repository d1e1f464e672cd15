//! The [`Wire`] trait: how an algorithm's plain messages become bytes and
//! back. Each algorithm implements it next to its `msg.rs` (usually with its
//! own prost messages from `proto/<algorithm>.proto`). Node references
//! travel as names and are resolved against the receiver's own config;
//! anything that does not resolve or decode is a [`DecodeError`] (the message
//! is dropped, the node carries on).

use crate::config::{Cluster, NodeId};

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a valid message: {0}")]
    Malformed(#[from] prost::DecodeError),
    #[error("message has no body")]
    Empty,
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("names node {0:?}, which is not in this node's config")]
    UnknownNode(String),
    #[error("{0}")]
    Invalid(String),
}

/// A message type that can travel between nodes.
pub trait Wire: Sized + Send + 'static {
    /// The algorithm's name, exchanged in the link's hello.
    const ALGORITHM: &'static str;
    /// A short stable name of the message kind (`token`, `lease_request`...),
    /// for `send` events and traffic counts.
    fn kind(&self) -> &'static str;
    /// Appends the encoded message to `buf`.
    fn encode(&self, cluster: &Cluster, buf: &mut Vec<u8>);
    fn decode(bytes: &[u8], cluster: &Cluster) -> Result<Self, DecodeError>;
    /// The encoded size (what the size limit applies to).
    fn encoded_len(&self, cluster: &Cluster) -> usize {
        let mut buf = Vec::new();
        self.encode(cluster, &mut buf);
        buf.len()
    }
}

/// A node's name for the wire.
pub fn name(c: &Cluster, id: NodeId) -> String {
    c.name(id).to_string()
}

/// A name from the wire, resolved against this node's config.
pub fn id(c: &Cluster, name: &str) -> Result<NodeId, DecodeError> {
    c.id(name)
        .ok_or_else(|| DecodeError::UnknownNode(name.to_string()))
}

pub fn names(c: &Cluster, ids: &[NodeId]) -> Vec<String> {
    ids.iter().map(|&i| name(c, i)).collect()
}

pub fn ids(c: &Cluster, names: &[String]) -> Result<Vec<NodeId>, DecodeError> {
    names.iter().map(|n| id(c, n)).collect()
}
