//! What the `dsys chat` end-to-end tests share: a server on loopback ports.

use std::path::Path;

use super::{Proc, free_port};

pub struct Server {
    pub proc: Proc,
    pub wire: String,
    pub grpc: String,
}

/// A chat server in `dir` (database `chat.db`), on `ports` (wire, gRPC) or
/// free ones, with `extra` flags.
pub fn server(dir: &Path, ports: Option<(u16, u16)>, extra: &[&str]) -> Server {
    let (w, g) = ports.unwrap_or_else(|| (free_port(), free_port()));
    let (wire, grpc) = (format!("127.0.0.1:{w}"), format!("127.0.0.1:{g}"));
    let mut args = vec![
        "chat",
        "server",
        "--listen",
        &wire,
        "--grpc-listen",
        &grpc,
        "--db",
        "chat.db",
    ];
    args.extend_from_slice(extra);
    let proc = Proc::spawn("server", &args, dir);
    proc.expect("chat server: wire protocol on", 20);
    Server { proc, wire, grpc }
}

impl Server {
    pub fn addr(&self, protocol: &str) -> &str {
        if protocol == "grpc" {
            &self.grpc
        } else {
            &self.wire
        }
    }

    pub fn ports(&self) -> (u16, u16) {
        let p = |a: &str| {
            a.rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a port")
        };
        (p(&self.wire), p(&self.grpc))
    }
}
