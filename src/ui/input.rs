//! Standard input, read on a thread (it may be a terminal or a pipe).
//!
//! * A line that is not valid UTF-8 is reported as such; reading goes on.
//! * A line longer than [`MAX_LINE`] is reported as too long (and skipped)
//!   rather than held in memory.
//! * End of input (Ctrl-D on a terminal) is reported as [`Input::End`]. On a
//!   terminal, reading may go on after it (Ctrl-D ended one question, the
//!   next one is read); on a pipe the end is final.
//! * On a terminal a line is read only when one is asked for, so the
//!   terminal is free for a full-screen UI between questions; from a pipe,
//!   lines are read ahead (a bounded few).

use std::io::{BufRead, IsTerminal};

use tokio::sync::mpsc;

/// Longest line read whole (longer ones are reported and skipped).
pub const MAX_LINE: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Line(String),
    /// End of input (Ctrl-D on a terminal, or the pipe closed).
    End,
    /// A line with bytes that are not UTF-8.
    NotUtf8,
    /// A line of this many bytes, over [`MAX_LINE`].
    TooLong(usize),
}

pub struct Stdin {
    rx: mpsc::Receiver<Input>,
    /// On a terminal: asks the reader thread for one line.
    want: Option<std::sync::mpsc::Sender<()>>,
    /// A line was asked for and has not arrived yet.
    asked: bool,
    /// Is stdin a terminal (a person typing)?
    pub tty: bool,
    ended: bool,
}

impl Stdin {
    /// Starts the reader thread.
    pub fn start() -> Stdin {
        let tty = std::io::stdin().is_terminal();
        let (tx, rx) = mpsc::channel(64);
        let (want, want_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || read_lines(std::io::stdin().lock(), tx, tty.then_some(want_rx)))
            .ok();
        Stdin {
            rx,
            want: tty.then_some(want),
            asked: false,
            tty,
            ended: false,
        }
    }

    /// The next input. From a pipe, [`Input::End`] is final: after it this
    /// waits forever. On a terminal, the next call reads on.
    pub async fn next(&mut self) -> Input {
        if self.ended && !self.tty {
            return std::future::pending().await;
        }
        if let Some(want) = &self.want
            && !self.asked
        {
            self.asked = want.send(()).is_ok();
        }
        let got = self.rx.recv().await;
        self.asked = false;
        match got {
            Some(Input::End) | None => {
                self.ended = true;
                Input::End
            }
            Some(i) => {
                self.ended = false;
                i
            }
        }
    }
}

/// Reads lines into `tx`; on a terminal (`want` given) one per request.
fn read_lines(
    mut r: impl BufRead,
    tx: mpsc::Sender<Input>,
    want: Option<std::sync::mpsc::Receiver<()>>,
) {
    loop {
        if let Some(w) = &want
            && w.recv().is_err()
        {
            return;
        }
        let item = match read_line(&mut r) {
            Ok(Some(i)) => i,
            Ok(None) | Err(_) => {
                if tx.blocking_send(Input::End).is_err() || want.is_none() {
                    return;
                }
                continue;
            }
        };
        if tx.blocking_send(item).is_err() {
            return;
        }
    }
}

/// One line without its `\n` / `\r\n`; `None` at the end of input.
fn read_line(r: &mut impl BufRead) -> std::io::Result<Option<Input>> {
    let mut buf = Vec::new();
    let mut total = 0usize;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            // End of input: a last line without a newline still counts.
            return Ok((total > 0).then(|| finish(buf, total)));
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if total + take <= MAX_LINE + 2 {
            buf.extend_from_slice(&chunk[..take]);
        }
        total += take;
        r.consume(take);
        if done {
            return Ok(Some(finish(buf, total)));
        }
    }
}

fn finish(mut buf: Vec<u8>, total: usize) -> Input {
    if total > MAX_LINE + 2 {
        return Input::TooLong(total);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    match String::from_utf8(buf) {
        Ok(s) => Input::Line(s),
        Err(_) => Input::NotUtf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_bad_bytes_and_the_end_are_told_apart() {
        let data: &[u8] = b"lock\r\n\xff\xfe\nunlock\nlast";
        let mut r = std::io::BufReader::with_capacity(3, data);
        let got: Vec<Input> = std::iter::from_fn(|| read_line(&mut r).unwrap()).collect();
        assert_eq!(
            got,
            vec![
                Input::Line("lock".into()),
                Input::NotUtf8,
                Input::Line("unlock".into()),
                Input::Line("last".into()),
            ]
        );
        let long = vec![b'x'; MAX_LINE + 10];
        let mut data = long.clone();
        data.extend_from_slice(b"\nok\n");
        let mut r = std::io::BufReader::new(&data[..]);
        assert_eq!(
            read_line(&mut r).unwrap(),
            Some(Input::TooLong(MAX_LINE + 11))
        );
        assert_eq!(read_line(&mut r).unwrap(), Some(Input::Line("ok".into())));
        assert_eq!(read_line(&mut r).unwrap(), None);
    }
}
