//! The chat's own wire protocol, version 1: frames of bytes designed here
//! (docs/chat-wire-protocol.md is the specification). No protobuf, no
//! serde: every byte is written and read by this file.
//!
//! A frame: `len: u32` (big-endian; the bytes after it, 6 to
//! [`MAX_FRAME`]), `version: u8` (= 1), `op: u8`, `id: u32` (the request's
//! id, echoed by its response; 0 on pushes), then the op's fields. Fields:
//! `u8`, `u16`, `u32`, `u64` big-endian; `str` = `u16` length + UTF-8.

use super::service::Message;

pub const VERSION: u8 = 1;
/// Largest frame, counted after the length field.
pub const MAX_FRAME: usize = 64 * 1024;
/// Bytes of a frame's head after the length: version, op, id.
pub const HEAD: usize = 6;

pub mod op {
    pub const CREATE: u8 = 0x01;
    pub const LOGIN: u8 = 0x02;
    pub const LOGOUT: u8 = 0x03;
    pub const LIST: u8 = 0x04;
    pub const SEND: u8 = 0x05;
    pub const DELIVER: u8 = 0x06;
    pub const ACK: u8 = 0x07;
    pub const DELETE: u8 = 0x08;
    pub const PING: u8 = 0x09;

    pub const OK: u8 = 0x80;
    pub const ERROR: u8 = 0x81;
    pub const LOGGED_IN: u8 = 0x82;
    pub const ACCOUNTS: u8 = 0x83;
    pub const SENT: u8 = 0x84;
    pub const MESSAGES: u8 = 0x85;
    pub const PUSH: u8 = 0x86;
    pub const DELETED: u8 = 0x87;
    pub const ACKED: u8 = 0x88;
    pub const LOGGED_OUT: u8 = 0x89;
}

/// Error codes of the protocol itself (the connection is closed after
/// them); the service's own errors use `ChatError::code` (10 and up).
pub mod code {
    pub const MALFORMED: u16 = 1;
    pub const VERSION: u16 = 2;
    pub const UNKNOWN_OP: u16 = 3;
    pub const TOO_LARGE: u16 = 4;
    /// Every connection is logged in: a new one is turned away.
    pub const FULL: u16 = 5;
    /// Not logged in within the time a connection has for it.
    pub const LOGIN_TIMEOUT: u16 = 6;
    /// Sent nothing for the idle timeout.
    pub const IDLE: u16 = 7;
    /// Closed to make room for a new connection (it was not logged in).
    pub const EVICTED: u16 = 8;
    /// The server speaks TLS only (`--tls`) and the client sent plain bytes.
    pub const TLS_REQUIRED: u16 = 9;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Create {
        name: String,
        password: String,
    },
    Login {
        name: String,
        password: String,
    },
    Logout,
    List {
        pattern: String,
        offset: u32,
        limit: u16,
    },
    Send {
        to: String,
        text: String,
    },
    Deliver {
        max: u16,
    },
    Ack {
        ids: Vec<u64>,
    },
    Delete {
        password: String,
    },
    Ping,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Ok,
    Error {
        code: u16,
        message: String,
    },
    LoggedIn {
        queued: u32,
    },
    Accounts {
        total: u32,
        accounts: Vec<(String, bool)>,
    },
    Sent {
        id: u64,
        delivered: bool,
    },
    Messages {
        queued: u32,
        messages: Vec<Message>,
    },
    Push(Message),
    /// Pushed: the server logged this connection out (why, for people).
    LoggedOut(String),
    Deleted {
        dropped: u32,
    },
    Acked {
        removed: u32,
    },
}

/// A count for a `u32` field (counts past it are shown as its maximum).
pub fn count(n: u64) -> u32 {
    n.min(u32::MAX as u64) as u32
}

/// Why a frame could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    #[error("unsupported protocol version {0} (this server speaks {VERSION})")]
    Version(u8),
    #[error("unknown operation 0x{0:02x}")]
    UnknownOp(u8),
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
}

impl FrameError {
    pub fn code(&self) -> u16 {
        match self {
            FrameError::Malformed(_) => code::MALFORMED,
            FrameError::Version(_) => code::VERSION,
            FrameError::UnknownOp(_) => code::UNKNOWN_OP,
            FrameError::TooLarge(_) => code::TOO_LARGE,
        }
    }
}

/// Appends fields to a frame under construction.
struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Strings longer than a u16 can say are cut at a character boundary
    /// (no field of the protocol may be that long: the frame limit is
    /// 64 KiB).
    fn str(&mut self, s: &str) -> &mut Self {
        let mut end = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.0.extend_from_slice(&s.as_bytes()[..end]);
        self
    }
    fn message(&mut self, m: &Message) -> &mut Self {
        self.u64(m.id)
            .str(&m.from)
            .u8(m.from_deleted as u8)
            .u64(m.sent_ms)
            .str(&m.text)
    }
}

/// Reads fields off a frame's body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Malformed(
                "a field runs past the end of the frame",
            ));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn str(&mut self) -> Result<String, FrameError> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| FrameError::Malformed("a string is not UTF-8"))
    }
    fn bool(&mut self) -> Result<bool, FrameError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(FrameError::Malformed("a flag is neither 0 nor 1")),
        }
    }
    fn message(&mut self, to: &str) -> Result<Message, FrameError> {
        Ok(Message {
            id: self.u64()?,
            from: self.str()?,
            from_deleted: self.bool()?,
            to: to.to_string(),
            sent_ms: self.u64()?,
            text: self.str()?,
        })
    }
    fn end(&self) -> Result<(), FrameError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Malformed("bytes left after the last field"))
        }
    }
}

/// Writes one frame: the length, the head, then `body`'s fields.
fn frame(buf: &mut Vec<u8>, op: u8, id: u32, body: impl FnOnce(&mut Writer)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    let mut w = Writer(buf);
    w.u8(VERSION).u8(op).u32(id);
    body(&mut w);
    let len = (buf.len() - start - 4) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

impl Request {
    pub fn encode(&self, id: u32, buf: &mut Vec<u8>) {
        match self {
            Request::Create { name, password } => frame(buf, op::CREATE, id, |w| {
                w.str(name).str(password);
            }),
            Request::Login { name, password } => frame(buf, op::LOGIN, id, |w| {
                w.str(name).str(password);
            }),
            Request::Logout => frame(buf, op::LOGOUT, id, |_| {}),
            Request::List {
                pattern,
                offset,
                limit,
            } => frame(buf, op::LIST, id, |w| {
                w.str(pattern).u32(*offset).u16(*limit);
            }),
            Request::Send { to, text } => frame(buf, op::SEND, id, |w| {
                w.str(to).str(text);
            }),
            Request::Deliver { max } => frame(buf, op::DELIVER, id, |w| {
                w.u16(*max);
            }),
            Request::Ack { ids } => frame(buf, op::ACK, id, |w| {
                w.u16(ids.len().min(u16::MAX as usize) as u16);
                for i in ids.iter().take(u16::MAX as usize) {
                    w.u64(*i);
                }
            }),
            Request::Delete { password } => frame(buf, op::DELETE, id, |w| {
                w.str(password);
            }),
            Request::Ping => frame(buf, op::PING, id, |_| {}),
        }
    }

    /// Decodes a frame's bytes after the length field: (id, request).
    pub fn decode(frame: &[u8]) -> Result<(u32, Request), FrameError> {
        let (op, id, mut r) = head(frame)?;
        // Checked in this order: length, version, operation, id, fields.
        if !(op::CREATE..=op::PING).contains(&op) {
            return Err(FrameError::UnknownOp(op));
        }
        if id == 0 {
            return Err(FrameError::Malformed("request id 0 (ids are 1 and up)"));
        }
        let req = match op {
            op::CREATE => Request::Create {
                name: r.str()?,
                password: r.str()?,
            },
            op::LOGIN => Request::Login {
                name: r.str()?,
                password: r.str()?,
            },
            op::LOGOUT => Request::Logout,
            op::LIST => Request::List {
                pattern: r.str()?,
                offset: r.u32()?,
                limit: r.u16()?,
            },
            op::SEND => Request::Send {
                to: r.str()?,
                text: r.str()?,
            },
            op::DELIVER => Request::Deliver { max: r.u16()? },
            op::ACK => {
                let n = r.u16()? as usize;
                let ids = (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?;
                Request::Ack { ids }
            }
            op::DELETE => Request::Delete { password: r.str()? },
            op::PING => Request::Ping,
            other => return Err(FrameError::UnknownOp(other)),
        };
        r.end()?;
        Ok((id, req))
    }
}

fn head(frame: &[u8]) -> Result<(u8, u32, Reader<'_>), FrameError> {
    if frame.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(frame.len()));
    }
    let mut r = Reader(frame);
    let version = r.u8()?;
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let op = r.u8()?;
    let id = r.u32()?;
    Ok((op, id, r))
}

impl Response {
    pub fn encode(&self, id: u32, buf: &mut Vec<u8>) {
        match self {
            Response::Ok => frame(buf, op::OK, id, |_| {}),
            Response::Error { code, message } => frame(buf, op::ERROR, id, |w| {
                w.u16(*code).str(message);
            }),
            Response::LoggedIn { queued } => frame(buf, op::LOGGED_IN, id, |w| {
                w.u32(*queued);
            }),
            Response::Accounts { total, accounts } => frame(buf, op::ACCOUNTS, id, |w| {
                w.u32(*total).u16(accounts.len() as u16);
                for (name, online) in accounts {
                    w.str(name).u8(*online as u8);
                }
            }),
            Response::Sent { id: mid, delivered } => frame(buf, op::SENT, id, |w| {
                w.u64(*mid).u8(*delivered as u8);
            }),
            Response::Messages { queued, messages } => frame(buf, op::MESSAGES, id, |w| {
                w.u32(*queued).u16(messages.len() as u16);
                for m in messages {
                    w.message(m);
                }
            }),
            Response::Push(m) => frame(buf, op::PUSH, id, |w| {
                w.message(m);
            }),
            Response::LoggedOut(why) => frame(buf, op::LOGGED_OUT, id, |w| {
                w.str(why);
            }),
            Response::Deleted { dropped } => frame(buf, op::DELETED, id, |w| {
                w.u32(*dropped);
            }),
            Response::Acked { removed } => frame(buf, op::ACKED, id, |w| {
                w.u32(*removed);
            }),
        }
    }

    /// Decodes a frame's bytes after the length: (id, response). `me` names
    /// the recipient of the messages it carries (the client's account).
    pub fn decode(frame: &[u8], me: &str) -> Result<(u32, Response), FrameError> {
        let (op, id, mut r) = head(frame)?;
        let resp = match op {
            op::OK => Response::Ok,
            op::ERROR => Response::Error {
                code: r.u16()?,
                message: r.str()?,
            },
            op::LOGGED_IN => Response::LoggedIn { queued: r.u32()? },
            op::ACCOUNTS => {
                let total = r.u32()?;
                let n = r.u16()? as usize;
                let accounts = (0..n)
                    .map(|_| Ok((r.str()?, r.bool()?)))
                    .collect::<Result<_, FrameError>>()?;
                Response::Accounts { total, accounts }
            }
            op::SENT => Response::Sent {
                id: r.u64()?,
                delivered: r.bool()?,
            },
            op::MESSAGES => {
                let queued = r.u32()?;
                let n = r.u16()? as usize;
                let messages = (0..n).map(|_| r.message(me)).collect::<Result<_, _>>()?;
                Response::Messages { queued, messages }
            }
            op::PUSH => Response::Push(r.message(me)?),
            op::LOGGED_OUT => Response::LoggedOut(r.str()?),
            op::DELETED => Response::Deleted { dropped: r.u32()? },
            op::ACKED => Response::Acked { removed: r.u32()? },
            other => return Err(FrameError::UnknownOp(other)),
        };
        r.end()?;
        Ok((id, resp))
    }
}

/// Splits complete frames off the front of `buf`: `Ok(Some(len))` when a
/// whole frame of `len` bytes (after the length field) starts at 4.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if len < HEAD {
        return Err(FrameError::Malformed("a frame shorter than its head"));
    }
    Ok((buf.len() >= 4 + len).then_some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            id: 77,
            from: "bob".into(),
            from_deleted: true,
            to: "al".into(),
            sent_ms: 1_700_000_000_000,
            text: "héllo".into(),
        }
    }

    #[test]
    fn every_frame_survives_the_round_trip() {
        let reqs = [
            Request::Create {
                name: "al".into(),
                password: "pw".into(),
            },
            Request::Login {
                name: "al".into(),
                password: "".into(),
            },
            Request::Logout,
            Request::List {
                pattern: "a*".into(),
                offset: 3,
                limit: 20,
            },
            Request::Send {
                to: "bob".into(),
                text: "hi ✓".into(),
            },
            Request::Deliver { max: 10 },
            Request::Ack {
                ids: vec![1, u64::MAX],
            },
            Request::Delete {
                password: "pw".into(),
            },
            Request::Ping,
        ];
        for (i, r) in reqs.iter().enumerate() {
            let mut buf = Vec::new();
            r.encode(i as u32 + 1, &mut buf);
            assert_eq!(frame_len(&buf).unwrap(), Some(buf.len() - 4));
            assert_eq!(
                Request::decode(&buf[4..]).unwrap(),
                (i as u32 + 1, r.clone())
            );
        }
        let resps = [
            Response::Ok,
            Response::Error {
                code: 12,
                message: "no".into(),
            },
            Response::LoggedIn { queued: 5 },
            Response::Accounts {
                total: 9,
                accounts: vec![("al".into(), true), ("bo".into(), false)],
            },
            Response::Sent {
                id: 4,
                delivered: true,
            },
            Response::Messages {
                queued: 2,
                messages: vec![msg(), msg()],
            },
            Response::Push(msg()),
            Response::Deleted { dropped: 3 },
            Response::Acked { removed: 1 },
        ];
        for r in resps {
            let mut buf = Vec::new();
            r.encode(9, &mut buf);
            assert_eq!(Response::decode(&buf[4..], "al").unwrap(), (9, r));
        }
    }

    #[test]
    fn the_specifications_example_is_these_bytes() {
        let mut buf = Vec::new();
        Request::Login {
            name: "al".into(),
            password: "pw".into(),
        }
        .encode(7, &mut buf);
        assert_eq!(
            buf,
            [
                0, 0, 0, 0x0e, 1, 0x02, 0, 0, 0, 7, 0, 2, b'a', b'l', 0, 2, b'p', b'w'
            ]
        );
        let mut buf = Vec::new();
        Response::LoggedIn { queued: 3 }.encode(7, &mut buf);
        assert_eq!(buf, [0, 0, 0, 0x0a, 1, 0x82, 0, 0, 0, 7, 0, 0, 0, 3]);
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let mut buf = Vec::new();
        Request::Ping.encode(1, &mut buf);
        let mut v2 = buf.clone();
        v2[4] = 2;
        assert_eq!(Request::decode(&v2[4..]), Err(FrameError::Version(2)));
        let mut unknown = buf.clone();
        unknown[5] = 0x3f;
        assert_eq!(
            Request::decode(&unknown[4..]),
            Err(FrameError::UnknownOp(0x3f))
        );
        let mut sent = Vec::new();
        Request::Send {
            to: "b".into(),
            text: "hello".into(),
        }
        .encode(1, &mut sent);
        assert!(matches!(
            Request::decode(&sent[4..sent.len() - 2]),
            Err(FrameError::Malformed(_))
        ));
        let mut extra = sent.clone();
        extra.push(0);
        assert!(matches!(
            Request::decode(&extra[4..]),
            Err(FrameError::Malformed(_))
        ));
        assert_eq!(frame_len(&[0, 1, 0, 1]), Err(FrameError::TooLarge(65537)));
        assert!(frame_len(&[0, 0, 0, 2]).is_err());
        assert_eq!(frame_len(&[0, 0]), Ok(None));
    }
}
