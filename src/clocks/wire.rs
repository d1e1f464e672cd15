//! The model's wire format: `proto/clocks.proto` (package `dsys.clocks.v1`),
//! mapped to and from `msg.rs`. A clock message names its sender; a name
//! that is not in the receiver's config is refused like any bad message.

use prost::Message as _;

use super::msg::Msg;
use crate::config::Cluster;
use crate::net::{DecodeError, Wire, codec};

mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.clocks.v1");
}

use pb::msg::Kind;

impl Wire for Msg {
    const ALGORITHM: &'static str = "clocks";

    fn kind(&self) -> &'static str {
        Msg::kind(self)
    }

    fn encode(&self, c: &Cluster, buf: &mut Vec<u8>) {
        let kind = match self {
            Msg::Clock { clock, sender } => Kind::Clock(pb::Clock {
                clock: *clock,
                sender: codec::name(c, *sender),
            }),
            Msg::Hello { heard_you } => Kind::Hello(pb::Hello {
                heard_you: *heard_you,
            }),
        };
        let _ = pb::Msg { kind: Some(kind) }.encode(buf);
    }

    fn decode(bytes: &[u8], c: &Cluster) -> Result<Self, DecodeError> {
        let m = pb::Msg::decode(bytes)?;
        Ok(match m.kind.ok_or(DecodeError::Empty)? {
            Kind::Clock(k) => Msg::Clock {
                clock: k.clock,
                sender: codec::id(c, &k.sender)?,
            },
            Kind::Hello(h) => Msg::Hello {
                heard_you: h.heard_you,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeId;

    #[test]
    fn messages_survive_the_round_trip_and_garbage_or_strangers_are_errors() {
        let c = Cluster::loopback(3, 40000);
        for m in [
            Msg::Clock {
                clock: u64::MAX,
                sender: NodeId(2),
            },
            Msg::Clock {
                clock: 0,
                sender: NodeId(0),
            },
            Msg::Hello { heard_you: true },
            Msg::Hello { heard_you: false },
        ] {
            let mut buf = Vec::new();
            m.encode(&c, &mut buf);
            assert_eq!(Msg::decode(&buf, &c).unwrap(), m);
        }
        assert!(Msg::decode(&[], &c).is_err());
        assert!(Msg::decode(&[0xff, 0xff, 0xff], &c).is_err());
        let stranger = pb::Msg {
            kind: Some(Kind::Clock(pb::Clock {
                clock: 3,
                sender: "stranger".into(),
            })),
        }
        .encode_to_vec();
        assert!(matches!(
            Msg::decode(&stranger, &c),
            Err(DecodeError::UnknownNode(_))
        ));
    }
}
