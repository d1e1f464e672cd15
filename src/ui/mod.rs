//! What interactive nodes share: reading the terminal (or a pipe), the
//! command table behind every prompt, questions, the console, the command
//! loop and a node's session, and the chat terminal UI.
//!
//! * `input`    — stdin on a thread: lines, end of input, bad bytes.
//! * `commands` — a table of commands: parsing, hints, generated `help`.
//! * `prompt`   — questions with answers checked (a node's name...).
//! * `console`  — a node's lines on stdout, held back while a question is open.
//! * `shell`    — the command loop and a running node's session.
//! * `chat`     — the terminal chat UI (message pane, input line, status bar).

pub mod chat;
pub mod commands;
pub mod console;
pub mod input;
pub mod prompt;
pub mod shell;
