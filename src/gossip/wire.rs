//! Gossip's wire format: `proto/gossip.proto` (package `dsys.gossip.v1`),
//! mapped to and from `msg.rs`.

use prost::Message as _;

use super::msg::{Digest, Msg, Word, WordId};
use crate::config::Cluster;
use crate::net::codec::{id, name};
use crate::net::{DecodeError, Wire};
use crate::seqset::SeqSet;

mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.gossip.v1");
}

use pb::msg::Kind;

fn word_to(c: &Cluster, w: &Word) -> pb::Word {
    pb::Word {
        origin: name(c, w.id.origin),
        seq: w.id.seq,
        text: w.text.clone(),
    }
}

fn word_from(c: &Cluster, w: pb::Word) -> Result<Word, DecodeError> {
    Ok(Word {
        id: WordId {
            origin: id(c, &w.origin)?,
            seq: w.seq,
        },
        text: w.text,
    })
}

fn digest_to(c: &Cluster, d: &Digest) -> Vec<pb::OriginRanges> {
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

fn digest_from(c: &Cluster, d: Vec<pb::OriginRanges>) -> Result<Digest, DecodeError> {
    let mut out = Digest::new();
    for o in d {
        let origin = id(c, &o.origin)?;
        let set = SeqSet::from_ranges(o.ranges.iter().map(|r| (r.first, r.last)));
        out.insert(origin, set);
    }
    Ok(out)
}

fn words_from(c: &Cluster, w: Vec<pb::Word>) -> Result<Vec<Word>, DecodeError> {
    w.into_iter().map(|w| word_from(c, w)).collect()
}

impl Wire for Msg {
    const ALGORITHM: &'static str = "gossip";

    fn kind(&self) -> &'static str {
        Msg::kind(self)
    }

    fn encode(&self, c: &Cluster, buf: &mut Vec<u8>) {
        let kind = match self {
            Msg::Rumors { words, known } => Kind::Rumors(pb::Rumors {
                words: words.iter().map(|w| word_to(c, w)).collect(),
                known: known
                    .iter()
                    .map(|k| pb::WordRef {
                        origin: name(c, k.origin),
                        seq: k.seq,
                    })
                    .collect(),
            }),
            Msg::Digest { have, reply } => Kind::Digest(pb::Digest {
                have: digest_to(c, have),
                reply: *reply,
            }),
            Msg::Repair { words, have } => Kind::Repair(pb::Repair {
                words: words.iter().map(|w| word_to(c, w)).collect(),
                has_digest: have.is_some(),
                have: have.as_ref().map(|d| digest_to(c, d)).unwrap_or_default(),
            }),
            Msg::Link => Kind::Link(pb::Link {}),
            Msg::LinkAck => Kind::LinkAck(pb::LinkAck {}),
            Msg::Unlink => Kind::Unlink(pb::Unlink {}),
        };
        let _ = pb::Msg { kind: Some(kind) }.encode(buf);
    }

    fn decode(bytes: &[u8], c: &Cluster) -> Result<Self, DecodeError> {
        let m = pb::Msg::decode(bytes)?;
        Ok(match m.kind.ok_or(DecodeError::Empty)? {
            Kind::Rumors(r) => Msg::Rumors {
                words: words_from(c, r.words)?,
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
                have: digest_from(c, d.have)?,
                reply: d.reply,
            },
            Kind::Repair(r) => Msg::Repair {
                words: words_from(c, r.words)?,
                have: if r.has_digest {
                    Some(digest_from(c, r.have)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeId;

    #[test]
    fn every_message_survives_the_round_trip() {
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
            Msg::Rumors {
                words: vec![w.clone()],
                known: vec![w.id],
            },
            Msg::Digest {
                have: d.clone(),
                reply: true,
            },
            Msg::Repair {
                words: vec![w.clone()],
                have: Some(d),
            },
            Msg::Repair {
                words: vec![],
                have: None,
            },
            Msg::Link,
            Msg::LinkAck,
            Msg::Unlink,
        ] {
            let mut buf = Vec::new();
            m.encode(&c, &mut buf);
            assert_eq!(Msg::decode(&buf, &c).unwrap(), m);
        }
        // Another algorithm's bytes (a message field gossip does not have,
        // number 15, empty), or garbage, are an error, not a panic.
        assert!(Msg::decode(&[0x7a, 0x00], &c).is_err());
        assert!(Msg::decode(&[0x0a, 0xff], &c).is_err());
    }
}
