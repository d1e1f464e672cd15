//! The terminal chat UI of `dsys multicast` (ratatui on crossterm).
//!
//! `App` is the UI's whole state and is pure: it takes notes from the node
//! and key presses, and renders into any ratatui backend (tests use
//! `TestBackend`). `run` wires it to a real terminal: raw mode, the
//! alternate screen, mouse wheel, resize; `ratatui::init` restores the
//! terminal on a panic, and the caller logs to a file, never over the UI.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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

use super::{Cmd, Note};
use crate::config::Cluster;
use crate::node::NodeId;

const COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Green,
    Color::LightBlue,
    Color::LightRed,
];

/// What a key press asks the caller to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Send(String),
    Gen(bool),
    Quit,
}

pub struct App {
    cluster: Arc<Cluster>,
    me: NodeId,
    /// Delivered messages: (wall time HH:MM:SS, Lamport stamp, sender, text).
    messages: Vec<(String, u64, NodeId, String)>,
    /// What the head of the holdback queue waits for, if anything.
    waiting: String,
    /// Lines above the bottom the view is scrolled.
    scroll: usize,
    input: String,
    /// Cursor position in `input`, in characters.
    cursor: usize,
    history: Vec<String>,
    history_at: Option<usize>,
    clock: u64,
    holdback: usize,
    up: BTreeMap<NodeId, bool>,
    notice: String,
    generating: bool,
}

impl App {
    pub fn new(cluster: Arc<Cluster>, me: NodeId) -> App {
        App {
            cluster,
            me,
            messages: Vec::new(),
            scroll: 0,
            input: String::new(),
            cursor: 0,
            history: Vec::new(),
            history_at: None,
            clock: 0,
            holdback: 0,
            up: BTreeMap::new(),
            notice: "joining the group...".into(),
            waiting: String::new(),
            generating: false,
        }
    }

    pub fn note(&mut self, n: &Note) {
        let name = |id: NodeId| self.cluster.name(id).to_string();
        match n {
            Note::Deliver {
                origin,
                lamport,
                text,
                ..
            } => {
                self.messages
                    .push((clock_time(), *lamport, *origin, text.clone()));
                if self.scroll > 0 {
                    self.scroll += 1; // keep the view where the reader left it
                }
            }
            Note::Status {
                clock,
                holdback,
                waiting,
                ..
            } => {
                self.clock = *clock;
                self.holdback = *holdback;
                self.waiting = match waiting.first() {
                    Some((sender, stamp, _, missing)) if !missing.is_empty() => format!(
                        "[{stamp}] from {} waits for {}",
                        name(*sender),
                        missing
                            .iter()
                            .map(|&m| name(m))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => String::new(),
                };
            }
            Note::PeerUp { peer } => {
                self.up.insert(*peer, true);
            }
            Note::PeerDown { peer } => {
                self.up.insert(*peer, false);
                self.notice = format!("{} is down: messages wait for it", name(*peer));
            }
            Note::Joined { .. } => self.notice = "joined the group".into(),
            Note::PeerJoining { peer } => self.notice = format!("{} is joining", name(*peer)),
            Note::Queued { .. } => self.notice = "not joined yet: your message waits".into(),
            Note::Full { .. } | Note::Resumed => {
                if let Some(l) = crate::node::Note::line(n, &self.cluster) {
                    self.notice = l.trim_matches(['(', ')']).to_string();
                }
            }
            Note::Multicast { .. } => {}
        }
    }

    pub fn key(&mut self, k: KeyEvent) -> Action {
        if k.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('c') | KeyCode::Char('d') if ctrl => return Action::Quit,
            KeyCode::Char(ch) => {
                let at = self.byte_at(self.cursor);
                self.input.insert(at, ch);
                self.cursor += 1;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte_at(self.cursor);
                self.input.remove(at);
            }
            KeyCode::Delete if self.cursor < self.input.chars().count() => {
                let at = self.byte_at(self.cursor);
                self.input.remove(at);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.input.chars().count()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.input.chars().count(),
            KeyCode::Up => self.recall(true),
            KeyCode::Down => self.recall(false),
            KeyCode::PageUp => self.scroll_by(10),
            KeyCode::PageDown => self.scroll_by(-10),
            KeyCode::Enter => return self.submit(),
            _ => {}
        }
        Action::None
    }

    pub fn scroll_by(&mut self, lines: isize) {
        let max = self.messages.len().saturating_sub(1);
        self.scroll = (self.scroll as isize + lines).clamp(0, max as isize) as usize;
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.input
            .char_indices()
            .nth(chars)
            .map_or(self.input.len(), |(i, _)| i)
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
        self.input = self
            .history_at
            .map_or(String::new(), |i| self.history[i].clone());
        self.cursor = self.input.chars().count();
    }

    fn submit(&mut self) -> Action {
        let line = std::mem::take(&mut self.input);
        self.cursor = 0;
        self.history_at = None;
        let text = line.trim();
        if text.is_empty() {
            return Action::None;
        }
        self.history.push(line.clone());
        match text {
            "/quit" | "/exit" => Action::Quit,
            "/gen on" => {
                self.generating = true;
                self.notice = "sending random words".into();
                Action::Gen(true)
            }
            "/gen off" => {
                self.generating = false;
                self.notice = "not sending random words".into();
                Action::Gen(false)
            }
            "/help" => {
                self.notice = "type to chat; /gen on|off, /peers, /quit; PgUp/PgDn or the mouse wheel scroll; Up/Down recall".into();
                Action::None
            }
            "/peers" => {
                let list: Vec<String> = self
                    .cluster
                    .ids()
                    .filter(|&i| i != self.me)
                    .map(|i| format!("{} {}", self.cluster.name(i), self.peer_state(i)))
                    .collect();
                self.notice = list.join(", ");
                Action::None
            }
            cmd if cmd.starts_with('/') && !cmd.starts_with("//") => {
                self.notice = format!("unknown command {cmd}; /help lists them");
                Action::None
            }
            _ => Action::Send(
                text.strip_prefix('/')
                    .filter(|t| t.starts_with('/'))
                    .unwrap_or(text)
                    .to_string(),
            ),
        }
    }

    fn peer_state(&self, p: NodeId) -> &'static str {
        match self.up.get(&p) {
            Some(true) => "up",
            Some(false) => "DOWN",
            None => "?",
        }
    }

    pub fn draw(&self, f: &mut Frame) {
        let [msgs, input, status] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(3),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let lines: Vec<Line> = self
            .messages
            .iter()
            .map(|(time, stamp, sender, text)| {
                let color = COLORS[sender.index() % COLORS.len()];
                Line::from(vec![
                    Span::styled(format!("{time} "), Style::default().fg(Color::DarkGray)),
                    Span::styled(
                        format!("[{stamp:>5}] "),
                        Style::default().fg(Color::DarkGray),
                    ),
                    Span::styled(
                        format!("{}: ", self.cluster.name(*sender)),
                        Style::default().fg(color).add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(text.clone()),
                ])
            })
            .collect();
        let height = msgs.height.saturating_sub(2) as usize;
        let bottom = lines.len().saturating_sub(self.scroll);
        let top = bottom.saturating_sub(height);
        let title = if self.scroll > 0 {
            format!(" messages (scrolled up {}; PgDn to return) ", self.scroll)
        } else {
            " messages, in total order ".to_string()
        };
        f.render_widget(
            Paragraph::new(lines[top..bottom].to_vec()).block(Block::bordered().title(title)),
            msgs,
        );
        f.render_widget(
            Paragraph::new(self.input.as_str())
                .block(Block::bordered().title(" say something (Enter sends; /help) ")),
            input,
        );
        f.set_cursor_position((input.x + 1 + self.cursor as u16, input.y + 1));
        let mut spans = vec![
            Span::styled(
                format!(" {} ", self.cluster.name(self.me)),
                Style::default().fg(Color::Black).bg(Color::White),
            ),
            Span::raw(format!(
                " lamport {}  holdback {}  ",
                self.clock, self.holdback
            )),
        ];
        for p in self.cluster.ids().filter(|&i| i != self.me) {
            let (s, c) = match self.up.get(&p) {
                Some(true) => ("up", Color::Green),
                Some(false) => ("DOWN", Color::Red),
                None => ("?", Color::DarkGray),
            };
            spans.push(Span::styled(
                format!("{} {s}  ", self.cluster.name(p)),
                Style::default().fg(c),
            ));
        }
        if self.generating {
            spans.push(Span::raw("gen on  "));
        }
        if !self.waiting.is_empty() {
            spans.push(Span::styled(
                format!("{}  ", self.waiting),
                Style::default().fg(Color::Yellow),
            ));
        }
        spans.push(Span::styled(
            self.notice.clone(),
            Style::default().fg(Color::DarkGray),
        ));
        f.render_widget(Paragraph::new(Line::from(spans)), status);
    }
}

/// The time of day (UTC), HH:MM:SS.
fn clock_time() -> String {
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    t.get(11..19).unwrap_or("--:--:--").to_string()
}

/// Runs the UI until the user quits. `notes` are the node's notes,
/// `commands` reach the node, `gen` switches the word generator.
pub async fn run(
    cluster: Arc<Cluster>,
    me: NodeId,
    mut notes: mpsc::Receiver<Note>,
    commands: mpsc::Sender<Cmd>,
    gen_switch: tokio::sync::watch::Sender<bool>,
    generating: bool,
) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let (tx, mut input) = mpsc::channel::<Event>(256);
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });
    let mut app = App::new(cluster, me);
    app.generating = generating;
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    let result = loop {
        if let Err(e) = terminal.draw(|f| app.draw(f)) {
            break Err(e);
        }
        tokio::select! {
            Some(n) = notes.recv() => {
                app.note(&n);
                while let Ok(n) = notes.try_recv() {
                    app.note(&n);
                }
            }
            Some(ev) = input.recv() => match ev {
                Event::Key(k) => match app.key(k) {
                    Action::Quit => break Ok(()),
                    Action::Send(text) => {
                        if commands.try_send(Cmd::Send(text)).is_err() {
                            app.notice = "the node is not taking messages right now (a peer is slow or down): not sent".into();
                        }
                    }
                    Action::Gen(on) => {
                        let _ = gen_switch.send(on);
                    }
                    Action::None => {}
                },
                Event::Mouse(m) => match m.kind {
                    MouseEventKind::ScrollUp => app.scroll_by(3),
                    MouseEventKind::ScrollDown => app.scroll_by(-3),
                    _ => {}
                },
                _ => {} // resize: the next draw uses the new size
            },
            _ = tick.tick() => {
                let _ = commands.try_send(Cmd::Status);
            }
        }
    };
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventState;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    fn screen(app: &App) -> String {
        let mut t = Terminal::new(TestBackend::new(100, 10)).unwrap();
        t.draw(|f| app.draw(f)).unwrap();
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

    #[test]
    fn renders_deliveries_status_and_input() {
        let c = Arc::new(Cluster::loopback(3, 40000));
        let mut app = App::new(c, NodeId(0));
        for i in 0..8u64 {
            app.note(&Note::Deliver {
                origin: NodeId((i % 3) as u32),
                seq: i,
                lamport: 10 + i,
                text: format!("hello {i}"),
            });
        }
        app.note(&Note::Status {
            clock: 42,
            holdback: 3,
            delivered: 8,
            joined: true,
            waiting: vec![(NodeId(1), 50, "x".into(), vec![NodeId(2)])],
        });
        app.note(&Note::PeerUp { peer: NodeId(1) });
        app.note(&Note::PeerDown { peer: NodeId(2) });
        for ch in "hi".chars() {
            app.key(key(KeyCode::Char(ch)));
        }
        let s = screen(&app);
        // The newest messages fill the pane; the oldest scrolled away.
        assert!(
            s.contains("l3: hello 7") || s.contains("l2: hello 7"),
            "{s}"
        );
        assert!(s.contains("hello 7") && !s.contains("hello 0"), "{s}");
        assert!(s.contains("lamport 42  holdback 3"), "{s}");
        assert!(s.contains("l2 up") && s.contains("l3 DOWN"), "{s}");
        assert!(s.contains("[50] from l2 waits for l3"), "{s}");
        assert!(s.contains("│hi"), "{s}");
        // PgUp scrolls back to the oldest.
        app.key(key(KeyCode::PageUp));
        let s = screen(&app);
        assert!(s.contains("hello 0") && s.contains("scrolled up"), "{s}");
    }

    #[test]
    fn editing_history_and_commands() {
        let c = Arc::new(Cluster::loopback(2, 40000));
        let mut app = App::new(c, NodeId(0));
        for ch in "helo".chars() {
            app.key(key(KeyCode::Char(ch)));
        }
        app.key(key(KeyCode::Left));
        app.key(key(KeyCode::Char('l')));
        assert_eq!(app.key(key(KeyCode::Enter)), Action::Send("hello".into()));
        assert_eq!(app.key(key(KeyCode::Up)), Action::None);
        assert_eq!(app.input, "hello");
        app.key(key(KeyCode::Down));
        assert_eq!(app.input, "");
        for ch in "/gen on".chars() {
            app.key(key(KeyCode::Char(ch)));
        }
        assert_eq!(app.key(key(KeyCode::Enter)), Action::Gen(true));
        for ch in "/nonsense".chars() {
            app.key(key(KeyCode::Char(ch)));
        }
        assert_eq!(app.key(key(KeyCode::Enter)), Action::None);
        assert!(app.notice.contains("unknown command"));
        let ctrl_c = KeyEvent {
            modifiers: KeyModifiers::CONTROL,
            ..key(KeyCode::Char('c'))
        };
        assert_eq!(app.key(ctrl_c), Action::Quit);
    }
}
