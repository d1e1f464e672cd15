//! The token ring's wire format: `proto/tokenring.proto` (package
//! `dsys.tokenring.v1`), mapped to and from `msg.rs`.

use prost::Message as _;

use super::msg::{Gen, Msg, Token};
use crate::config::Cluster;
use crate::net::codec::{id, ids, name, names};
use crate::net::{DecodeError, Wire};

mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.tokenring.v1");
}

use pb::msg::Kind;

fn gen_to(c: &Cluster, g: Gen) -> pb::Gen {
    pb::Gen {
        counter: g.counter,
        minter: name(c, g.minter),
    }
}

fn gen_from(c: &Cluster, g: Option<pb::Gen>) -> Result<Gen, DecodeError> {
    let g = g.ok_or(DecodeError::Missing("generation"))?;
    Ok(Gen {
        counter: g.counter,
        minter: id(c, &g.minter)?,
    })
}

fn token_to(c: &Cluster, t: &Token, ack: bool) -> pb::Token {
    pb::Token {
        generation: Some(gen_to(c, t.generation)),
        hop: t.hop,
        ring: names(c, &t.ring),
        ack,
    }
}

fn token_from(c: &Cluster, t: pb::Token) -> Result<Token, DecodeError> {
    Ok(Token {
        generation: gen_from(c, t.generation)?,
        hop: t.hop,
        ring: ids(c, &t.ring)?,
    })
}

impl Wire for Msg {
    const ALGORITHM: &'static str = "tokenring";

    fn kind(&self) -> &'static str {
        Msg::kind(self)
    }

    fn encode(&self, c: &Cluster, buf: &mut Vec<u8>) {
        let kind = match self {
            Msg::Token { token, ack } => Kind::Token(token_to(c, token, *ack)),
            Msg::Beacon(t) => Kind::Beacon(token_to(c, t, false)),
            Msg::TokenAck { generation, hop } => Kind::TokenAck(pb::TokenAck {
                generation: Some(gen_to(c, *generation)),
                hop: *hop,
            }),
            Msg::Discover {
                origin,
                attempt,
                walk,
                ring,
                newest,
            } => Kind::Discover(pb::Discover {
                origin: name(c, *origin),
                attempt: *attempt,
                ring: names(c, ring),
                walk: *walk,
                newest: newest.map(|g| gen_to(c, g)),
            }),
            Msg::Walked {
                attempt,
                hops,
                at,
                next,
            } => Kind::Walked(pb::Walked {
                attempt: *attempt,
                hops: *hops,
                at: name(c, *at),
                next: name(c, *next),
            }),
            Msg::Probe => Kind::Probe(pb::Probe {}),
            Msg::LeaseRequest { round } => Kind::LeaseRequest(pb::LeaseRequest { round: *round }),
            Msg::LeaseReply { round, granted } => Kind::LeaseReply(pb::LeaseReply {
                round: *round,
                granted: *granted,
            }),
            Msg::LeaseRelease { round } => Kind::LeaseRelease(pb::LeaseRelease { round: *round }),
            Msg::Rejoin => Kind::Rejoin(pb::Rejoin {}),
        };
        let _ = pb::Msg { kind: Some(kind) }.encode(buf);
    }

    fn decode(bytes: &[u8], c: &Cluster) -> Result<Self, DecodeError> {
        let m = pb::Msg::decode(bytes)?;
        Ok(match m.kind.ok_or(DecodeError::Empty)? {
            Kind::Token(t) => Msg::Token {
                ack: t.ack,
                token: token_from(c, t)?,
            },
            Kind::Beacon(t) => Msg::Beacon(token_from(c, t)?),
            Kind::TokenAck(a) => Msg::TokenAck {
                generation: gen_from(c, a.generation)?,
                hop: a.hop,
            },
            Kind::Discover(d) => Msg::Discover {
                origin: id(c, &d.origin)?,
                attempt: d.attempt,
                walk: d.walk,
                ring: ids(c, &d.ring)?,
                newest: match d.newest {
                    Some(g) => Some(gen_from(c, Some(g))?),
                    None => None,
                },
            },
            Kind::Walked(w) => Msg::Walked {
                attempt: w.attempt,
                hops: w.hops,
                at: id(c, &w.at)?,
                next: id(c, &w.next)?,
            },
            Kind::Probe(_) => Msg::Probe,
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
    use crate::node::NodeId;

    #[test]
    fn every_message_survives_the_round_trip() {
        let c = Cluster::loopback(3, 40000);
        let g = Gen {
            counter: 7,
            minter: NodeId(2),
        };
        let msgs = [
            Msg::Token {
                token: Token {
                    generation: g,
                    hop: 9,
                    ring: vec![NodeId(0), NodeId(1), NodeId(2)],
                },
                ack: false,
            },
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
                walk: 1,
                ring: vec![NodeId(1), NodeId(2)],
                newest: Some(g),
            },
            Msg::Walked {
                attempt: 2,
                hops: 2,
                at: NodeId(0),
                next: NodeId(2),
            },
            Msg::Probe,
            Msg::LeaseRequest { round: 4 },
            Msg::LeaseReply {
                round: 4,
                granted: true,
            },
            Msg::LeaseRelease { round: 4 },
            Msg::Rejoin,
        ];
        for m in msgs {
            let mut buf = Vec::new();
            m.encode(&c, &mut buf);
            assert_eq!(Msg::decode(&buf, &c).unwrap(), m);
            assert_eq!(m.encoded_len(&c), buf.len());
        }
    }

    #[test]
    fn unknown_names_garbage_and_missing_fields_are_errors_not_panics() {
        let c = Cluster::loopback(2, 40000);
        let other = Cluster::loopback(5, 40000);
        let m = Msg::Token {
            token: Token {
                generation: Gen {
                    counter: 1,
                    minter: NodeId(4),
                },
                hop: 1,
                ring: vec![],
            },
            ack: true,
        };
        let mut buf = Vec::new();
        m.encode(&other, &mut buf);
        let err = Msg::decode(&buf, &c).unwrap_err();
        assert!(
            matches!(err, DecodeError::UnknownNode(ref n) if n == "l5"),
            "{err}"
        );
        assert!(Msg::decode(&[], &c).is_err());
        assert!(Msg::decode(&[0xff, 0xff, 0xff], &c).is_err());
        let no_gen = pb::Msg {
            kind: Some(Kind::TokenAck(pb::TokenAck {
                generation: None,
                hop: 1,
            })),
        }
        .encode_to_vec();
        assert!(matches!(
            Msg::decode(&no_gen, &c),
            Err(DecodeError::Missing(_))
        ));
    }
}
