//! Multicast's wire format: `proto/multicast.proto` (package
//! `dsys.multicast.v1`), mapped to and from `msg.rs`.

use prost::Message as _;

use super::msg::{Data, Msg, MsgId};
use crate::config::{Cluster, NodeId};
use crate::net::codec::{id, name};
use crate::net::{DecodeError, Wire};
use crate::seqset::SeqSet;

mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.multicast.v1");
}

use pb::msg::Kind;

fn data_to(c: &Cluster, d: &Data) -> pb::Data {
    pb::Data {
        sender: name(c, d.sender),
        inc: d.inc,
        seq: d.seq,
        lamport: d.lamport,
        text: d.text.clone(),
    }
}

fn data_from(c: &Cluster, d: pb::Data) -> Result<Data, DecodeError> {
    Ok(Data {
        sender: id(c, &d.sender)?,
        inc: d.inc,
        seq: d.seq,
        lamport: d.lamport,
        text: d.text,
    })
}

fn ids_to(c: &Cluster, ids: &[MsgId]) -> Vec<pb::MsgId> {
    ids.iter()
        .map(|&(s, inc, seq)| pb::MsgId {
            sender: name(c, s),
            inc,
            seq,
        })
        .collect()
}

fn ids_from(c: &Cluster, ids: Vec<pb::MsgId>) -> Result<Vec<MsgId>, DecodeError> {
    ids.into_iter()
        .map(|m| Ok((id(c, &m.sender)?, m.inc, m.seq)))
        .collect()
}

fn have_to(c: &Cluster, have: &[(NodeId, u64, SeqSet)]) -> Vec<pb::Have> {
    have.iter()
        .map(|(s, inc, set)| pb::Have {
            sender: name(c, *s),
            inc: *inc,
            ranges: set
                .ranges()
                .map(|(first, last)| pb::SeqRange { first, last })
                .collect(),
        })
        .collect()
}

fn have_from(c: &Cluster, have: Vec<pb::Have>) -> Result<Vec<(NodeId, u64, SeqSet)>, DecodeError> {
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

impl Wire for Msg {
    const ALGORITHM: &'static str = "multicast";

    fn kind(&self) -> &'static str {
        Msg::kind(self)
    }

    fn encode(&self, c: &Cluster, buf: &mut Vec<u8>) {
        let kind = match self {
            Msg::Data(d) => Kind::Data(data_to(c, d)),
            Msg::Relay(d) => Kind::Relay(data_to(c, d)),
            Msg::Ack {
                inc,
                clock,
                sent,
                have,
            } => Kind::Ack(pb::Ack {
                inc: *inc,
                clock: *clock,
                sent: *sent,
                have: have_to(c, have),
            }),
            Msg::SyncReq { inc } => Kind::SyncReq(pb::SyncReq { inc: *inc }),
            Msg::SyncReply {
                inc,
                clock,
                sent,
                delivered,
                relayed,
            } => Kind::SyncReply(pb::SyncReply {
                inc: *inc,
                clock: *clock,
                sent: *sent,
                delivered: *delivered,
                relayed: ids_to(c, relayed),
            }),
            Msg::Join { inc, cut } => Kind::Join(pb::Join {
                inc: *inc,
                cut: *cut,
            }),
            Msg::FlushDone { of, inc, relayed } => Kind::FlushDone(pb::FlushDone {
                of: name(c, *of),
                inc: *inc,
                relayed: ids_to(c, relayed),
            }),
            Msg::AckPlease => Kind::AckPlease(pb::AckPlease {}),
        };
        let _ = pb::Msg { kind: Some(kind) }.encode(buf);
    }

    fn decode(bytes: &[u8], c: &Cluster) -> Result<Self, DecodeError> {
        let m = pb::Msg::decode(bytes)?;
        Ok(match m.kind.ok_or(DecodeError::Empty)? {
            Kind::Data(d) => Msg::Data(data_from(c, d)?),
            Kind::Relay(d) => Msg::Relay(data_from(c, d)?),
            Kind::Ack(a) => Msg::Ack {
                inc: a.inc,
                clock: a.clock,
                sent: a.sent,
                have: have_from(c, a.have)?,
            },
            Kind::SyncReq(r) => Msg::SyncReq { inc: r.inc },
            Kind::SyncReply(r) => Msg::SyncReply {
                inc: r.inc,
                clock: r.clock,
                sent: r.sent,
                delivered: r.delivered,
                relayed: ids_from(c, r.relayed)?,
            },
            Kind::Join(j) => Msg::Join {
                inc: j.inc,
                cut: j.cut,
            },
            Kind::FlushDone(f) => Msg::FlushDone {
                of: id(c, &f.of)?,
                inc: f.inc,
                relayed: ids_from(c, f.relayed)?,
            },
            Kind::AckPlease(_) => Msg::AckPlease,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_survives_the_round_trip() {
        let c = Cluster::loopback(3, 40000);
        let d = Data {
            sender: NodeId(1),
            inc: 5,
            seq: 7,
            lamport: 42,
            text: "hi there".into(),
        };
        for m in [
            Msg::Data(d.clone()),
            Msg::Relay(d),
            Msg::Ack {
                inc: 5,
                clock: 9,
                sent: 6,
                have: vec![(NodeId(2), 1, SeqSet::from_ranges([(1, 4)]))],
            },
            Msg::SyncReq { inc: 3 },
            Msg::SyncReply {
                inc: 1,
                clock: 2,
                sent: 3,
                delivered: 4,
                relayed: vec![(NodeId(0), 1, 2)],
            },
            Msg::Join { inc: 1, cut: 2 },
            Msg::FlushDone {
                of: NodeId(2),
                inc: 8,
                relayed: vec![],
            },
            Msg::AckPlease,
        ] {
            let mut buf = Vec::new();
            m.encode(&c, &mut buf);
            assert_eq!(Msg::decode(&buf, &c).unwrap(), m);
        }
        assert!(Msg::decode(b"\x0a\x05junk", &c).is_err());
    }
}
