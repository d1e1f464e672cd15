//! A node's lines on stdout. While a question is open at the prompt, the
//! node's own lines (words arriving, tokens passing) are held back so the
//! question stays on the last line; they are printed when it is answered.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Lines held at most while a question is open (older ones are dropped).
const HELD_MAX: usize = 10_000;

#[derive(Default)]
struct State {
    held: bool,
    pending: VecDeque<String>,
    dropped: u64,
}

#[derive(Default)]
pub struct Console {
    state: Mutex<State>,
}

impl Console {
    pub fn new() -> Arc<Console> {
        Arc::new(Console::default())
    }

    /// From now on, hold the node's lines back.
    pub fn hold(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.held = true;
        }
    }

    /// Are lines being held back (a question is open)?
    pub fn is_held(&self) -> bool {
        self.state.lock().is_ok_and(|s| s.held)
    }

    /// Prints what was held back, and stops holding.
    pub fn release(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        let mut out = std::io::stdout().lock();
        if s.dropped > 0 {
            let _ = writeln!(out, "({} earlier lines not shown)", s.dropped);
        }
        for l in s.pending.drain(..) {
            let _ = writeln!(out, "{l}");
        }
        let _ = out.flush();
        s.dropped = 0;
        s.held = false;
    }

    /// Writes one of the node's lines to `out` (the writer thread's stdout),
    /// or holds it.
    pub fn line(&self, out: &mut dyn Write, text: &str) {
        if let Ok(mut s) = self.state.lock()
            && s.held
        {
            if s.pending.len() >= HELD_MAX {
                s.pending.pop_front();
                s.dropped += 1;
            }
            s.pending.push_back(text.to_string());
            return;
        }
        let _ = writeln!(out, "{text}");
    }
}
