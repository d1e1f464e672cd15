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
        let m = match envelope.body.ok_or(DecodeError::Empty)? {
            pb::envelope::Body::Tokenring(m) => m,
            pb::envelope::Body::Gossip(_) => return Err(DecodeError::WrongAlgorithm("gossip")),
            pb::envelope::Body::Multicast(_) => {
                return Err(DecodeError::WrongAlgorithm("multicast"));
            }
        };
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

mod gs {
    use super::*;
    use crate::gossip::known::{Digest, SeqSet};
    use crate::gossip::{Word, WordId};

    pub fn word_to(c: &Cluster, w: &Word) -> pb::GossipWord {
        pb::GossipWord {
            origin: name(c, w.id.origin),
            seq: w.id.seq,
            text: w.text.clone(),
        }
    }

    pub fn word_from(c: &Cluster, w: pb::GossipWord) -> Result<Word, DecodeError> {
        Ok(Word {
            id: WordId {
                origin: id(c, &w.origin)?,
                seq: w.seq,
            },
            text: w.text,
        })
    }

    pub fn digest_to(c: &Cluster, d: &Digest) -> Vec<pb::OriginRanges> {
        d.iter()
            .map(|(&o, set)| pb::OriginRanges {
                origin: name(c, o),
                ranges: set
                    .ranges()
                    .map(|(first, last)| pb::SeqRange { first, last })
                    .collect(),
            })
            .collect()
    }

    pub fn digest_from(c: &Cluster, d: Vec<pb::OriginRanges>) -> Result<Digest, DecodeError> {
        let mut out = Digest::new();
        for o in d {
            let origin = id(c, &o.origin)?;
            let set = SeqSet::from_ranges(o.ranges.iter().map(|r| (r.first, r.last)));
            out.insert(origin, set);
        }
        Ok(out)
    }
}

impl Wire for crate::gossip::Msg {
    const ALGORITHM: &'static str = "gossip";

    fn encode(&self, c: &Cluster) -> pb::Envelope {
        use crate::gossip::Msg;
        use pb::gossip_msg::Kind;
        let kind = match self {
            Msg::Rumors { words, known } => Kind::Rumors(pb::Rumors {
                words: words.iter().map(|w| gs::word_to(c, w)).collect(),
                known: known
                    .iter()
                    .map(|k| pb::WordRef {
                        origin: name(c, k.origin),
                        seq: k.seq,
                    })
                    .collect(),
            }),
            Msg::Digest { have, reply } => Kind::Digest(pb::Digest {
                have: gs::digest_to(c, have),
                reply: *reply,
            }),
            Msg::Repair { words, have } => Kind::Repair(pb::Repair {
                words: words.iter().map(|w| gs::word_to(c, w)).collect(),
                has_digest: have.is_some(),
                have: have
                    .as_ref()
                    .map(|d| gs::digest_to(c, d))
                    .unwrap_or_default(),
            }),
            Msg::Link => Kind::Link(pb::GossipLink {}),
            Msg::LinkAck => Kind::LinkAck(pb::GossipLinkAck {}),
            Msg::Unlink => Kind::Unlink(pb::GossipUnlink {}),
        };
        pb::Envelope {
            body: Some(pb::envelope::Body::Gossip(pb::GossipMsg {
                kind: Some(kind),
            })),
        }
    }

    fn decode(envelope: pb::Envelope, c: &Cluster) -> Result<Self, DecodeError> {
        use crate::gossip::{Msg, WordId};
        use pb::gossip_msg::Kind;
        let m = match envelope.body.ok_or(DecodeError::Empty)? {
            pb::envelope::Body::Gossip(m) => m,
            pb::envelope::Body::Tokenring(_) => {
                return Err(DecodeError::WrongAlgorithm("tokenring"));
            }
            pb::envelope::Body::Multicast(_) => {
                return Err(DecodeError::WrongAlgorithm("multicast"));
            }
        };
        Ok(match m.kind.ok_or(DecodeError::Empty)? {
            Kind::Rumors(r) => Msg::Rumors {
                words: r
                    .words
                    .into_iter()
                    .map(|w| gs::word_from(c, w))
                    .collect::<Result<_, _>>()?,
                known: r
                    .known
                    .into_iter()
                    .map(|k| {
                        Ok(WordId {
                            origin: id(c, &k.origin)?,
                            seq: k.seq,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?,
            },
            Kind::Digest(d) => Msg::Digest {
                have: gs::digest_from(c, d.have)?,
                reply: d.reply,
            },
            Kind::Repair(r) => Msg::Repair {
                words: r
                    .words
                    .into_iter()
                    .map(|w| gs::word_from(c, w))
                    .collect::<Result<_, _>>()?,
                have: if r.has_digest {
                    Some(gs::digest_from(c, r.have)?)
                } else {
                    None
                },
            },
            Kind::Link(_) => Msg::Link,
            Kind::LinkAck(_) => Msg::LinkAck,
            Kind::Unlink(_) => Msg::Unlink,
        })
    }
}

mod mc {
    use super::*;
    use crate::gossip::known::SeqSet;
    use crate::multicast::Data;
    use crate::multicast::msg::MsgId;

    pub fn data_to(c: &Cluster, d: &Data) -> pb::McData {
        pb::McData {
            sender: name(c, d.sender),
            inc: d.inc,
            seq: d.seq,
            lamport: d.lamport,
            text: d.text.clone(),
        }
    }

    pub fn data_from(c: &Cluster, d: pb::McData) -> Result<Data, DecodeError> {
        Ok(Data {
            sender: id(c, &d.sender)?,
            inc: d.inc,
            seq: d.seq,
            lamport: d.lamport,
            text: d.text,
        })
    }

    pub fn ids_to(c: &Cluster, ids: &[MsgId]) -> Vec<pb::McMsgId> {
        ids.iter()
            .map(|&(s, inc, seq)| pb::McMsgId {
                sender: name(c, s),
                inc,
                seq,
            })
            .collect()
    }

    pub fn ids_from(c: &Cluster, ids: Vec<pb::McMsgId>) -> Result<Vec<MsgId>, DecodeError> {
        ids.into_iter()
            .map(|m| Ok((id(c, &m.sender)?, m.inc, m.seq)))
            .collect()
    }

    pub fn have_to(c: &Cluster, have: &[(NodeId, u64, SeqSet)]) -> Vec<pb::McHave> {
        have.iter()
            .map(|(s, inc, set)| pb::McHave {
                sender: name(c, *s),
                inc: *inc,
                ranges: set
                    .ranges()
                    .map(|(first, last)| pb::SeqRange { first, last })
                    .collect(),
            })
            .collect()
    }

    pub fn have_from(
        c: &Cluster,
        have: Vec<pb::McHave>,
    ) -> Result<Vec<(NodeId, u64, SeqSet)>, DecodeError> {
        have.into_iter()
            .map(|h| {
                Ok((
                    id(c, &h.sender)?,
                    h.inc,
                    SeqSet::from_ranges(h.ranges.iter().map(|r| (r.first, r.last))),
                ))
            })
            .collect()
    }
}

impl Wire for crate::multicast::Msg {
    const ALGORITHM: &'static str = "multicast";

    fn encode(&self, c: &Cluster) -> pb::Envelope {
        use crate::multicast::Msg;
        use pb::multicast_msg::Kind;
        let kind = match self {
            Msg::Data(d) => Kind::Data(mc::data_to(c, d)),
            Msg::Relay(d) => Kind::Relay(mc::data_to(c, d)),
            Msg::Ack {
                inc,
                clock,
                sent,
                have,
            } => Kind::Ack(pb::McAck {
                inc: *inc,
                clock: *clock,
                sent: *sent,
                have: mc::have_to(c, have),
            }),
            Msg::SyncReq { inc } => Kind::SyncReq(pb::McSyncReq { inc: *inc }),
            Msg::SyncReply {
                inc,
                clock,
                sent,
                delivered,
                relayed,
            } => Kind::SyncReply(pb::McSyncReply {
                inc: *inc,
                clock: *clock,
                sent: *sent,
                delivered: *delivered,
                relayed: mc::ids_to(c, relayed),
            }),
            Msg::Join { inc, cut } => Kind::Join(pb::McJoin {
                inc: *inc,
                cut: *cut,
            }),
            Msg::FlushDone { of, inc, relayed } => Kind::FlushDone(pb::McFlushDone {
                of: name(c, *of),
                inc: *inc,
                relayed: mc::ids_to(c, relayed),
            }),
            Msg::AckPlease => Kind::AckPlease(pb::McAckPlease {}),
        };
        pb::Envelope {
            body: Some(pb::envelope::Body::Multicast(pb::MulticastMsg {
                kind: Some(kind),
            })),
        }
    }

    fn decode(envelope: pb::Envelope, c: &Cluster) -> Result<Self, DecodeError> {
        use crate::multicast::Msg;
        use pb::multicast_msg::Kind;
        let m = match envelope.body.ok_or(DecodeError::Empty)? {
            pb::envelope::Body::Multicast(m) => m,
            pb::envelope::Body::Tokenring(_) => {
                return Err(DecodeError::WrongAlgorithm("tokenring"));
            }
            pb::envelope::Body::Gossip(_) => return Err(DecodeError::WrongAlgorithm("gossip")),
        };
        Ok(match m.kind.ok_or(DecodeError::Empty)? {
            Kind::Data(d) => Msg::Data(mc::data_from(c, d)?),
            Kind::Relay(d) => Msg::Relay(mc::data_from(c, d)?),
            Kind::Ack(a) => Msg::Ack {
                inc: a.inc,
                clock: a.clock,
                sent: a.sent,
                have: mc::have_from(c, a.have)?,
            },
            Kind::SyncReq(r) => Msg::SyncReq { inc: r.inc },
            Kind::SyncReply(r) => Msg::SyncReply {
                inc: r.inc,
                clock: r.clock,
                sent: r.sent,
                delivered: r.delivered,
                relayed: mc::ids_from(c, r.relayed)?,
            },
            Kind::Join(j) => Msg::Join {
                inc: j.inc,
                cut: j.cut,
            },
            Kind::FlushDone(f) => Msg::FlushDone {
                of: id(c, &f.of)?,
                inc: f.inc,
                relayed: mc::ids_from(c, f.relayed)?,
            },
            Kind::AckPlease(_) => Msg::AckPlease,
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
    fn gossip_messages_survive_the_round_trip() {
        use crate::gossip::known::{Digest, SeqSet};
        use crate::gossip::{Msg as G, Word, WordId};
        let c = Cluster::loopback(3, 40000);
        let w = Word {
            id: WordId {
                origin: NodeId(2),
                seq: 1_700_000_000_000_001,
            },
            text: "otter".into(),
        };
        let mut d = Digest::new();
        d.insert(NodeId(1), SeqSet::from_ranges([(1, 5), (9, 9)]));
        for m in [
            G::Rumors {
                words: vec![w.clone()],
                known: vec![w.id],
            },
            G::Digest {
                have: d.clone(),
                reply: true,
            },
            G::Repair {
                words: vec![w],
                have: Some(d),
            },
            G::Repair {
                words: vec![],
                have: None,
            },
            G::Link,
            G::LinkAck,
            G::Unlink,
        ] {
            assert_eq!(G::decode(m.encode(&c), &c).unwrap(), m);
        }
        // A token-ring message reaching a gossip node is an error, not a panic.
        let t = Msg::Rejoin.encode(&c);
        assert!(matches!(
            G::decode(t, &c),
            Err(DecodeError::WrongAlgorithm(_))
        ));
    }

    #[test]
    fn multicast_messages_survive_the_round_trip() {
        use crate::gossip::known::SeqSet;
        use crate::multicast::{Data, Msg as M};
        let c = Cluster::loopback(3, 40000);
        let d = Data {
            sender: NodeId(1),
            inc: 5,
            seq: 7,
            lamport: 42,
            text: "hi there".into(),
        };
        for m in [
            M::Data(d.clone()),
            M::Relay(d),
            M::Ack {
                inc: 5,
                clock: 9,
                sent: 6,
                have: vec![(NodeId(2), 1, SeqSet::from_ranges([(1, 4)]))],
            },
            M::SyncReq { inc: 3 },
            M::SyncReply {
                inc: 1,
                clock: 2,
                sent: 3,
                delivered: 4,
                relayed: vec![(NodeId(0), 1, 2)],
            },
            M::Join { inc: 1, cut: 2 },
            M::FlushDone {
                of: NodeId(2),
                inc: 8,
                relayed: vec![],
            },
            M::AckPlease,
        ] {
            assert_eq!(M::decode(m.encode(&c), &c).unwrap(), m);
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
