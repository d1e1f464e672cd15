//! Conversions between each algorithm's plain messages and the protobuf
//! envelope. Node references travel as names and are resolved against the
//! receiver's own config; anything that does not resolve or is missing is a
//! [`DecodeError`] (the message is dropped, the node carries on).

use super::pb;
use crate::config::Cluster;
use crate::node::NodeId;
use crate::tokenring;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("envelope has no body")]
    Empty,
    #[error("message is for another algorithm ({0})")]
    WrongAlgorithm(&'static str),
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("names node {0:?}, which is not in this node's config")]
    UnknownNode(String),
}

/// A message type that can travel in an [`pb::Envelope`].
pub trait Wire: Sized + Send + 'static {
    /// The algorithm's name, exchanged in the link's hello.
    const ALGORITHM: &'static str;
    fn encode(&self, cluster: &Cluster) -> pb::Envelope;
    fn decode(envelope: pb::Envelope, cluster: &Cluster) -> Result<Self, DecodeError>;
}

fn name(c: &Cluster, id: NodeId) -> String {
    c.name(id).to_string()
}

fn id(c: &Cluster, name: &str) -> Result<NodeId, DecodeError> {
    c.id(name)
        .ok_or_else(|| DecodeError::UnknownNode(name.to_string()))
}

fn ids(c: &Cluster, names: &[String]) -> Result<Vec<NodeId>, DecodeError> {
    names.iter().map(|n| id(c, n)).collect()
}

mod tr {
    use super::*;
    use crate::tokenring::{Gen, Token};

    pub fn gen_to(c: &Cluster, g: Gen) -> pb::Gen {
        pb::Gen {
            counter: g.counter,
            minter: name(c, g.minter),
        }
    }

    pub fn gen_from(c: &Cluster, g: Option<pb::Gen>) -> Result<Gen, DecodeError> {
        let g = g.ok_or(DecodeError::Missing("generation"))?;
        Ok(Gen {
            counter: g.counter,
            minter: id(c, &g.minter)?,
        })
    }

    pub fn token_to(c: &Cluster, t: &Token) -> pb::Token {
        pb::Token {
            generation: Some(gen_to(c, t.generation)),
            hop: t.hop,
            ring: t.ring.iter().map(|&n| name(c, n)).collect(),
        }
    }

    pub fn token_from(c: &Cluster, t: pb::Token) -> Result<Token, DecodeError> {
        Ok(Token {
            generation: gen_from(c, t.generation)?,
            hop: t.hop,
            ring: ids(c, &t.ring)?,
        })
    }
}

impl Wire for tokenring::Msg {
    const ALGORITHM: &'static str = "tokenring";

    fn encode(&self, c: &Cluster) -> pb::Envelope {
        use pb::token_ring_msg::Kind;
        use tokenring::Msg;
        let kind = match self {
            Msg::Token(t) => Kind::Token(tr::token_to(c, t)),
            Msg::Beacon(t) => {
                let t = tr::token_to(c, t);
                Kind::Beacon(pb::Beacon {
                    generation: t.generation,
                    hop: t.hop,
                    ring: t.ring,
                })
            }
            Msg::TokenAck { generation, hop } => Kind::TokenAck(pb::TokenAck {
                generation: Some(tr::gen_to(c, *generation)),
                hop: *hop,
            }),
            Msg::Discover {
                origin,
                attempt,
                ring,
            } => Kind::Discover(pb::Discover {
                origin: name(c, *origin),
                attempt: *attempt,
                ring: ring.iter().map(|&n| name(c, n)).collect(),
            }),
            Msg::LeaseRequest { round } => Kind::LeaseRequest(pb::LeaseRequest { round: *round }),
            Msg::LeaseReply { round, granted } => Kind::LeaseReply(pb::LeaseReply {
                round: *round,
                granted: *granted,
            }),
            Msg::LeaseRelease { round } => Kind::LeaseRelease(pb::LeaseRelease { round: *round }),
            Msg::Rejoin => Kind::Rejoin(pb::Rejoin {}),
        };
        pb::Envelope {
            body: Some(pb::envelope::Body::Tokenring(pb::TokenRingMsg {
                kind: Some(kind),
            })),
        }
    }

    fn decode(envelope: pb::Envelope, c: &Cluster) -> Result<Self, DecodeError> {
        use pb::token_ring_msg::Kind;
        use tokenring::Msg;
        let pb::envelope::Body::Tokenring(m) = envelope.body.ok_or(DecodeError::Empty)?;
        Ok(match m.kind.ok_or(DecodeError::Empty)? {
            Kind::Token(t) => Msg::Token(tr::token_from(c, t)?),
            Kind::Beacon(b) => Msg::Beacon(tr::token_from(
                c,
                pb::Token {
                    generation: b.generation,
                    hop: b.hop,
                    ring: b.ring,
                },
            )?),
            Kind::TokenAck(a) => Msg::TokenAck {
                generation: tr::gen_from(c, a.generation)?,
                hop: a.hop,
            },
            Kind::Discover(d) => Msg::Discover {
                origin: id(c, &d.origin)?,
                attempt: d.attempt,
                ring: ids(c, &d.ring)?,
            },
            Kind::LeaseRequest(r) => Msg::LeaseRequest { round: r.round },
            Kind::LeaseReply(r) => Msg::LeaseReply {
                round: r.round,
                granted: r.granted,
            },
            Kind::LeaseRelease(r) => Msg::LeaseRelease { round: r.round },
            Kind::Rejoin(_) => Msg::Rejoin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenring::{Gen, Msg, Token};

    #[test]
    fn tokenring_messages_survive_the_round_trip() {
        let c = Cluster::loopback(3, 40000);
        let g = Gen {
            counter: 7,
            minter: NodeId(2),
        };
        let msgs = [
            Msg::Token(Token {
                generation: g,
                hop: 9,
                ring: vec![NodeId(0), NodeId(1), NodeId(2)],
            }),
            Msg::Beacon(Token {
                generation: g,
                hop: 1,
                ring: vec![NodeId(1)],
            }),
            Msg::TokenAck {
                generation: g,
                hop: 3,
            },
            Msg::Discover {
                origin: NodeId(1),
                attempt: 2,
                ring: vec![NodeId(1), NodeId(2)],
            },
            Msg::LeaseRequest { round: 4 },
            Msg::LeaseReply {
                round: 4,
                granted: true,
            },
            Msg::LeaseRelease { round: 4 },
            Msg::Rejoin,
        ];
        for m in msgs {
            let back = Msg::decode(m.encode(&c), &c).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn unknown_names_and_missing_fields_are_errors_not_panics() {
        let c = Cluster::loopback(2, 40000);
        let other = Cluster::loopback(5, 40000);
        let m = Msg::Token(Token {
            generation: Gen {
                counter: 1,
                minter: NodeId(4),
            },
            hop: 1,
            ring: vec![],
        });
        let err = Msg::decode(m.encode(&other), &c).unwrap_err();
        assert!(
            matches!(err, DecodeError::UnknownNode(ref n) if n == "l5"),
            "{err}"
        );
        let empty = pb::Envelope { body: None };
        assert!(Msg::decode(empty, &c).is_err());
        let no_gen = pb::Envelope {
            body: Some(pb::envelope::Body::Tokenring(pb::TokenRingMsg {
                kind: Some(pb::token_ring_msg::Kind::TokenAck(pb::TokenAck {
                    generation: None,
                    hop: 1,
                })),
            })),
        };
        assert!(matches!(
            Msg::decode(no_gen, &c),
            Err(DecodeError::Missing(_))
        ));
    }
}
