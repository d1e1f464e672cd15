//! The terminal chat UI (ratatui on crossterm): a message pane, an input
//! line and a status bar. What the messages are, what the status bar says
//! and what the commands do belong to the application (`dsys multicast`,
//! the chat client); this module owns the screen.
//!
//! [`View`] is the UI's whole state and is pure: it takes entries and key
//! presses, and renders into any ratatui backend (tests use `TestBackend`).
//! [`Terminal`] wires it to a real terminal: raw mode, the alternate screen
//! (cleared at start), mouse wheel, resize; the terminal is restored on
//! quit and on a panic.
//!
//! Behaviour a person can rely on:
//! * long input scrolls sideways to keep the cursor in view (widths are
//!   display columns, so wide characters count double);
//! * long messages wrap (continuation rows indented);
//! * PgUp/PgDn and the mouse wheel scroll, never past the first message;
//! * Ctrl-D on an empty line quits; on a draft it deletes the character at
//!   the cursor (as in a shell), so a draft is never lost; Ctrl-C quits;
//! * Up/Down recall earlier lines; Home/End, Ctrl-A/Ctrl-E, Ctrl-U.

use std::io;

use crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEvent, KeyEventKind,
    KeyModifiers, MouseEventKind,
};
use crossterm::execute;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use tokio::sync::mpsc;
use unicode_width::UnicodeWidthChar;

/// Sender colours, by the sender's index.
pub const COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Green,
    Color::LightBlue,
    Color::LightRed,
];

/// One entry of the message pane.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// A message: when it was shown, a label (a stamp, an id), its sender
    /// (with a colour index) and its text.
    Message {
        time: String,
        label: String,
        sender: String,
        color: usize,
        text: String,
    },
    /// One of ours, sent but not delivered yet: shown greyed at the bottom,
    /// with what it waits for.
    Pending {
        label: String,
        sender: String,
        text: String,
        waits: String,
    },
    /// What the application says (help, joins, errors), dimmed.
    System(String),
}

/// What a key press asks the application to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    None,
    /// The user pressed Enter on this (non-empty) line.
    Submit(String),
    Quit,
}

/// The input line: text, cursor (in characters), history, and the display
/// columns scrolled off to the left.
#[derive(Default)]
struct Editor {
    text: String,
    cursor: usize,
    history: Vec<String>,
    history_at: Option<usize>,
    offset: usize,
}

impl Editor {
    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    fn delete_at_cursor(&mut self) {
        if self.cursor < self.len() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.delete_at_cursor();
        }
    }

    fn recall(&mut self, older: bool) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() - 1;
        self.history_at = match (self.history_at, older) {
            (None, true) => Some(last),
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i < last => Some(i + 1),
            _ => None,
        };
        self.text = self
            .history_at
            .map_or(String::new(), |i| self.history[i].clone());
        self.cursor = self.len();
    }

    fn take(&mut self) -> String {
        self.cursor = 0;
        self.offset = 0;
        self.history_at = None;
        let line = std::mem::take(&mut self.text);
        if !line.trim().is_empty() {
            self.history.push(line.clone());
        }
        line
    }

    /// The visible part of the text in `width` columns and the cursor's
    /// column in it, scrolling sideways so that the cursor stays in view.
    fn visible(&mut self, width: usize) -> (String, usize) {
        let width = width.max(1);
        let col = |s: &str| s.chars().map(|c| c.width().unwrap_or(0)).sum::<usize>();
        let cursor_col = col(&self.text[..self.byte_at(self.cursor)]);
        if cursor_col < self.offset {
            self.offset = cursor_col;
        } else if cursor_col >= self.offset + width {
            self.offset = cursor_col + 1 - width;
        }
        let mut shown = String::new();
        let mut at = 0;
        for c in self.text.chars() {
            let w = c.width().unwrap_or(0);
            if at >= self.offset && at + w <= self.offset + width {
                shown.push(c);
            }
            at += w;
        }
        (shown, cursor_col - self.offset)
    }
}

/// The screen's state.
pub struct View {
    entries: Vec<Entry>,
    pending: Vec<(u64, Entry)>,
    /// Rows above the bottom the pane is scrolled.
    scroll: usize,
    /// Rows the pane had at the last draw (for scrolling).
    last_rows: usize,
    last_height: usize,
    editor: Editor,
    status: Line<'static>,
    prompt: String,
    title: String,
    /// A question whose answer is not shown (a password): its prompt.
    secret: Option<String>,
}

impl View {
    /// `prompt` titles the input box (`say something (Enter sends; /help)`).
    pub fn new(prompt: &str) -> View {
        View {
            entries: Vec::new(),
            pending: Vec::new(),
            scroll: 0,
            last_rows: 0,
            last_height: 0,
            editor: Editor::default(),
            status: Line::default(),
            prompt: prompt.to_string(),
            title: "messages, in total order".to_string(),
            secret: None,
        }
    }

    /// The message pane's title.
    pub fn set_title(&mut self, title: &str) {
        self.title = title.to_string();
    }

    /// Asks for a secret (a password): the input shows `*` per character
    /// under `prompt`, and the answer stays out of the history. `None`
    /// returns to normal input.
    pub fn set_secret(&mut self, prompt: Option<&str>) {
        self.secret = prompt.map(str::to_string);
    }

    pub fn push(&mut self, e: Entry) {
        self.entries.push(e);
        if self.scroll > 0 {
            // Keep the view where the reader left it.
            self.scroll += 1;
        }
    }

    pub fn system(&mut self, text: impl Into<String>) {
        for l in text.into().lines() {
            self.push(Entry::System(l.to_string()));
        }
    }

    /// One of ours is on its way (`key` finds it again).
    pub fn add_pending(&mut self, key: u64, e: Entry) {
        self.pending.push((key, e));
    }

    /// Says what pending entry `key` waits for now.
    pub fn pending_waits(&mut self, key: u64, what: String) {
        if let Some((_, Entry::Pending { waits, .. })) =
            self.pending.iter_mut().find(|(k, _)| *k == key)
        {
            *waits = what;
        }
    }

    pub fn pending_keys(&self) -> Vec<u64> {
        self.pending.iter().map(|(k, _)| *k).collect()
    }

    /// Pending entry `key` arrived (it is shown in its place now).
    pub fn remove_pending(&mut self, key: u64) {
        self.pending.retain(|(k, _)| *k != key);
    }

    pub fn set_status(&mut self, line: Line<'static>) {
        self.status = line;
    }

    pub fn input(&self) -> &str {
        &self.editor.text
    }

    pub fn key(&mut self, k: KeyEvent) -> Key {
        if k.kind == KeyEventKind::Release {
            return Key::None;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let e = &mut self.editor;
        match k.code {
            KeyCode::Char('c') if ctrl => return Key::Quit,
            KeyCode::Char('d') if ctrl => {
                if e.text.is_empty() {
                    return Key::Quit;
                }
                e.delete_at_cursor();
            }
            KeyCode::Char('a') if ctrl => e.cursor = 0,
            KeyCode::Char('e') if ctrl => e.cursor = e.len(),
            KeyCode::Char('u') if ctrl => {
                let at = e.byte_at(e.cursor);
                e.text.replace_range(..at, "");
                e.cursor = 0;
            }
            KeyCode::Char(_) if ctrl => {}
            KeyCode::Char(c) => e.insert(c),
            KeyCode::Backspace => e.backspace(),
            KeyCode::Delete => e.delete_at_cursor(),
            KeyCode::Left => e.cursor = e.cursor.saturating_sub(1),
            KeyCode::Right => e.cursor = (e.cursor + 1).min(e.len()),
            KeyCode::Home => e.cursor = 0,
            KeyCode::End => e.cursor = e.len(),
            KeyCode::Up if self.secret.is_none() => e.recall(true),
            KeyCode::Down if self.secret.is_none() => e.recall(false),
            KeyCode::PageUp => self.scroll_by(self.page() as isize),
            KeyCode::PageDown => self.scroll_by(-(self.page() as isize)),
            KeyCode::Enter => {
                if self.secret.is_some() {
                    let line = std::mem::take(&mut e.text);
                    e.cursor = 0;
                    e.offset = 0;
                    return Key::Submit(line);
                }
                let line = e.take();
                if !line.trim().is_empty() {
                    return Key::Submit(line);
                }
            }
            _ => {}
        }
        Key::None
    }

    fn page(&self) -> usize {
        self.last_height.saturating_sub(1).max(1)
    }

    /// Scrolls up (positive) or down, never past the first message.
    pub fn scroll_by(&mut self, rows: isize) {
        let max = self.last_rows.saturating_sub(self.last_height);
        self.scroll = (self.scroll as isize + rows).clamp(0, max as isize) as usize;
    }

    fn spans(e: &Entry) -> Vec<Span<'static>> {
        let dim = Style::default().fg(Color::DarkGray);
        match e {
            Entry::Message {
                time,
                label,
                sender,
                color,
                text,
            } => vec![
                Span::styled(format!("{time} {label} "), dim),
                Span::styled(
                    format!("{sender}: "),
                    Style::default()
                        .fg(COLORS[color % COLORS.len()])
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(text.clone()),
            ],
            Entry::Pending {
                label,
                sender,
                text,
                waits,
            } => vec![Span::styled(
                format!("         {label} {sender}: {text}  ({waits})"),
                dim.add_modifier(Modifier::ITALIC),
            )],
            Entry::System(t) => vec![Span::styled(format!("-- {t}"), dim)],
        }
    }

    /// Cuts spans into rows of `width` display columns, breaking after a
    /// space where there is one (else inside the word); continuation rows
    /// are indented by two.
    fn wrap(spans: Vec<Span<'static>>, width: usize) -> Vec<Line<'static>> {
        let width = width.max(4);
        let chars: Vec<(char, Style)> = spans
            .iter()
            .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
            .collect();
        let mut rows: Vec<Vec<(char, Style)>> = vec![Vec::new()];
        let mut used = 0;
        for (c, style) in chars {
            let w = c.width().unwrap_or(0);
            if used + w > width {
                let row = rows.last_mut().expect("a row");
                // Carry the word begun on this row over, if a space ends
                // an earlier word on it.
                let carry = match row.iter().rposition(|(c, _)| *c == ' ') {
                    Some(i) if i + 1 < row.len() && i > 2 => row.split_off(i + 1),
                    _ => Vec::new(),
                };
                let mut next = vec![(' ', Style::default()), (' ', Style::default())];
                next.extend(carry);
                used = next.iter().map(|(c, _)| c.width().unwrap_or(0)).sum();
                rows.push(next);
            }
            rows.last_mut().expect("a row").push((c, style));
            used += w;
        }
        rows.into_iter()
            .map(|row| {
                let mut spans: Vec<Span<'static>> = Vec::new();
                for (c, style) in row {
                    match spans.last_mut() {
                        Some(s) if s.style == style => s.content.to_mut().push(c),
                        _ => spans.push(Span::styled(c.to_string(), style)),
                    }
                }
                Line::from(spans)
            })
            .collect()
    }

    pub fn draw(&mut self, f: &mut Frame) {
        let [msgs, input, status] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(3),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let inner_w = msgs.width.saturating_sub(2) as usize;
        let height = msgs.height.saturating_sub(2) as usize;
        let rows: Vec<Line> = self
            .entries
            .iter()
            .chain(self.pending.iter().map(|(_, e)| e))
            .flat_map(|e| Self::wrap(Self::spans(e), inner_w))
            .collect();
        self.last_rows = rows.len();
        self.last_height = height;
        self.scroll = self.scroll.min(rows.len().saturating_sub(height));
        let bottom = rows.len() - self.scroll;
        let top = bottom.saturating_sub(height);
        let title = if self.scroll > 0 {
            format!(
                " messages (scrolled up {} rows; PgDn returns) ",
                self.scroll
            )
        } else {
            format!(" {} ", self.title)
        };
        f.render_widget(
            Paragraph::new(rows[top..bottom].to_vec()).block(Block::bordered().title(title)),
            msgs,
        );
        let (shown, cursor) = self.editor.visible(input.width.saturating_sub(2) as usize);
        let (shown, prompt) = match &self.secret {
            Some(p) => ("*".repeat(shown.chars().count()), p),
            None => (shown, &self.prompt),
        };
        f.render_widget(
            Paragraph::new(shown).block(Block::bordered().title(format!(" {prompt} "))),
            input,
        );
        f.set_cursor_position((input.x + 1 + cursor as u16, input.y + 1));
        f.render_widget(Paragraph::new(self.status.clone()), status);
    }
}

/// A real terminal running a [`View`]: raw mode and the alternate screen
/// until it is dropped (also on a panic).
pub struct Terminal {
    term: ratatui::DefaultTerminal,
    /// Key presses, mouse and resize events, read on a thread.
    pub events: mpsc::Receiver<Event>,
}

impl Terminal {
    pub fn start() -> io::Result<Terminal> {
        let mut term = ratatui::init();
        term.clear()?;
        let _ = execute!(io::stdout(), EnableMouseCapture);
        let (tx, events) = mpsc::channel::<Event>(256);
        std::thread::Builder::new()
            .name("terminal".into())
            .spawn(move || {
                while let Ok(ev) = event::read() {
                    if tx.blocking_send(ev).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Terminal { term, events })
    }

    pub fn draw(&mut self, view: &mut View) -> io::Result<()> {
        self.term.draw(|f| view.draw(f)).map(|_| ())
    }

    /// Applies a terminal event to `view`: scrolling here, keys returned.
    pub fn handle(view: &mut View, ev: Event) -> Key {
        match ev {
            Event::Key(k) => view.key(k),
            Event::Mouse(m) => {
                match m.kind {
                    MouseEventKind::ScrollUp => view.scroll_by(3),
                    MouseEventKind::ScrollDown => view.scroll_by(-3),
                    _ => {}
                }
                Key::None
            }
            // A resize: the next draw uses the new size.
            _ => Key::None,
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = execute!(io::stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// The chat UI runs when both ends of the terminal are a terminal and
/// `--plain` was not given.
pub fn use_tui(plain: bool) -> bool {
    use std::io::IsTerminal;
    !plain && io::stdin().is_terminal() && io::stdout().is_terminal()
}

/// The time of day (UTC), HH:MM:SS.
pub fn clock_time() -> String {
    time_of_day(std::time::SystemTime::now())
}

/// `t`'s time of day (UTC), HH:MM:SS.
pub fn time_of_day(t: std::time::SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(11..19).unwrap_or("--:--:--").to_string()
}

/// Rendering a view to text, for tests of applications built on it.
#[cfg(test)]
pub mod tests_support {
    use super::View;
    use ratatui::backend::TestBackend;

    pub fn screen(view: &mut View, w: u16, h: u16) -> String {
        let mut t = ratatui::Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        let _ = t.draw(|f| view.draw(f));
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::screen;
    use super::*;
    use crossterm::event::KeyEventState;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent {
            modifiers: KeyModifiers::CONTROL,
            ..key(KeyCode::Char(c))
        }
    }

    fn msg(i: usize, text: &str) -> Entry {
        Entry::Message {
            time: "12:00:00".into(),
            label: format!("[{i}]"),
            sender: "l1".into(),
            color: 0,
            text: text.into(),
        }
    }

    #[test]
    fn long_input_scrolls_to_keep_the_cursor_in_view() {
        let mut v = View::new("say");
        for c in "abcdefghijklmnopqrstuvwxyz0123456789".chars() {
            v.key(key(KeyCode::Char(c)));
        }
        let s = screen(&mut v, 20, 8);
        // 18 columns inside the box: the end of the text is visible, with
        // the cursor after it.
        assert!(s.contains("│tuvwxyz0123456789 │"), "{s}");
        v.key(key(KeyCode::Home));
        let s = screen(&mut v, 20, 8);
        assert!(s.contains("│abcdef"), "{s}");
        // Wide characters count two columns.
        let mut v = View::new("say");
        for c in "日本語のテキストです".chars() {
            v.key(key(KeyCode::Char(c)));
        }
        let s = screen(&mut v, 12, 8);
        assert!(s.contains('す') && !s.contains('日'), "{s}");
    }

    #[test]
    fn long_messages_wrap_and_paging_stops_at_the_first_message() {
        let mut v = View::new("say");
        v.push(msg(1, &"word ".repeat(30)));
        for i in 2..30 {
            v.push(msg(i, "short"));
        }
        let s = screen(&mut v, 40, 10);
        assert!(s.contains("short") && !s.contains("[1]"), "{s}");
        for _ in 0..20 {
            v.key(key(KeyCode::PageUp));
        }
        let s = screen(&mut v, 40, 10);
        let first = s.lines().nth(1).unwrap_or("");
        assert!(
            first.contains("[1]"),
            "the top is the first message, not blank rows:\n{s}"
        );
        assert!(
            s.lines().nth(2).unwrap_or("").contains("  word"),
            "wrapped:\n{s}"
        );
        for _ in 0..20 {
            v.key(key(KeyCode::PageDown));
        }
        let s = screen(&mut v, 40, 10);
        assert!(s.contains("[29]") && s.contains("in total order"), "{s}");
    }

    #[test]
    fn ctrl_d_quits_only_on_an_empty_line_and_never_drops_a_draft() {
        let mut v = View::new("say");
        for c in "draft".chars() {
            v.key(key(KeyCode::Char(c)));
        }
        v.key(key(KeyCode::Home));
        assert_eq!(v.key(ctrl('d')), Key::None);
        assert_eq!(v.input(), "raft");
        v.key(ctrl('u'));
        v.key(key(KeyCode::End));
        for _ in 0..4 {
            v.key(key(KeyCode::Backspace));
        }
        assert_eq!(v.input(), "");
        assert_eq!(v.key(ctrl('d')), Key::Quit);
        assert_eq!(v.key(ctrl('c')), Key::Quit);
    }

    #[test]
    fn editing_history_and_submit() {
        let mut v = View::new("say");
        for c in "helo".chars() {
            v.key(key(KeyCode::Char(c)));
        }
        v.key(key(KeyCode::Left));
        v.key(key(KeyCode::Char('l')));
        assert_eq!(v.key(key(KeyCode::Enter)), Key::Submit("hello".into()));
        assert_eq!(
            v.key(key(KeyCode::Enter)),
            Key::None,
            "an empty line sends nothing"
        );
        v.key(key(KeyCode::Up));
        assert_eq!(v.input(), "hello");
        v.key(key(KeyCode::Down));
        assert_eq!(v.input(), "");
    }

    #[test]
    fn pending_entries_show_greyed_with_what_they_wait_for_until_delivered() {
        let mut v = View::new("say");
        v.add_pending(
            7,
            Entry::Pending {
                label: "[ 12]".into(),
                sender: "l1".into(),
                text: "on its way".into(),
                waits: "waiting".into(),
            },
        );
        v.pending_waits(7, "waits for l3".into());
        let s = screen(&mut v, 60, 8);
        assert!(s.contains("on its way  (waits for l3)"), "{s}");
        v.remove_pending(7);
        v.push(msg(12, "on its way"));
        let s = screen(&mut v, 60, 8);
        assert!(
            !s.contains("waits for") && s.contains("l1: on its way"),
            "{s}"
        );
    }
}
