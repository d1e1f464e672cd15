//! The gRPC transport shared by every algorithm: `transport` moves frames
//! over one FIFO stream per link direction, `codec` maps each algorithm's
//! plain messages to the protobuf envelope. Generated prost/tonic types stay
//! inside this module.

pub mod codec;
pub mod transport;

pub mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.v1");
}

pub use codec::{DecodeError, Wire};
pub use transport::{Inbound, LinkState, LinkTable, MAX_MESSAGE_BYTES, NetError, Transport};
