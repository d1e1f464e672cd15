//! The mutex's wire format: `proto/mutex.proto` (package `dsys.mutex.v1`),
//! mapped to and from `msg.rs`.

use prost::Message as _;

use super::msg::{Msg, ReqId};
use crate::config::Cluster;
use crate::net::{DecodeError, Wire};

mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.mutex.v1");
}

use pb::msg::Kind;

impl Wire for Msg {
    const ALGORITHM: &'static str = "mutex";

    fn kind(&self) -> &'static str {
        Msg::kind(self)
    }

    fn encode(&self, _c: &Cluster, buf: &mut Vec<u8>) {
        let kind = match self {
            Msg::Request(r) => Kind::Request(pb::Request {
                ts: r.ts,
                incarnation: r.incarnation,
                seq: r.seq,
            }),
            Msg::Reply(r) => Kind::Reply(pb::Reply {
                ts: r.ts,
                incarnation: r.incarnation,
                seq: r.seq,
            }),
            Msg::Hello { incarnation } => Kind::Hello(pb::Hello {
                incarnation: *incarnation,
            }),
        };
        let _ = pb::Msg { kind: Some(kind) }.encode(buf);
    }

    fn decode(bytes: &[u8], _c: &Cluster) -> Result<Self, DecodeError> {
        let m = pb::Msg::decode(bytes)?;
        Ok(match m.kind.ok_or(DecodeError::Empty)? {
            Kind::Request(r) => Msg::Request(ReqId {
                ts: r.ts,
                incarnation: r.incarnation,
                seq: r.seq,
            }),
            Kind::Reply(r) => Msg::Reply(ReqId {
                ts: r.ts,
                incarnation: r.incarnation,
                seq: r.seq,
            }),
            Kind::Hello(h) => Msg::Hello {
                incarnation: h.incarnation,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_survives_the_round_trip_and_garbage_is_an_error() {
        let c = Cluster::loopback(3, 40000);
        let r = ReqId {
            ts: 12,
            incarnation: u64::MAX,
            seq: 3,
        };
        for m in [
            Msg::Request(r),
            Msg::Reply(r),
            Msg::Hello { incarnation: 7 },
        ] {
            let mut buf = Vec::new();
            m.encode(&c, &mut buf);
            assert_eq!(Msg::decode(&buf, &c).unwrap(), m);
            assert_eq!(m.encoded_len(&c), buf.len());
        }
        assert!(Msg::decode(&[], &c).is_err());
        assert!(Msg::decode(&[0xff, 0xff, 0xff], &c).is_err());
    }
}
