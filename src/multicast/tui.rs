//! The chat UI of `dsys multicast`: the shared terminal chat UI
//! (`ui::chat`) with what multicast knows: deliveries in total order, our
//! own messages shown at once as pending (with what they wait for) until
//! they are delivered in their place, members joining and going down, and
//! a status bar with the Lamport clock, the holdback queue and each peer.
//! Commands are the same table as plain mode's (`cli::commands`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use tokio::sync::{mpsc, watch};

use super::cli::{Line as Cmdline, commands};
use super::{Cmd, Note};
use crate::config::{Cluster, NodeId};
use crate::net::{LinkState, LinkTable};
use crate::ui::chat::{Entry, Key, Terminal, View, clock_time};
use crate::ui::commands::{Commands, Parsed};

/// What a line typed in the UI asks the caller to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Send(String),
    Gen(bool),
    Status,
    Quit,
}

pub struct App {
    cluster: Arc<Cluster>,
    me: NodeId,
    pub view: View,
    table: Commands<Cmdline>,
    links: Option<Arc<LinkTable>>,
    clock: u64,
    holdback: usize,
    up: BTreeMap<NodeId, bool>,
    generating: bool,
    /// The next status note answers the user's `/status`.
    status_asked: bool,
    /// Members we said messages wait for (said once per outage).
    told_waiting: BTreeSet<NodeId>,
    /// Members seen up at least once ("up again" only after that).
    seen_up: BTreeSet<NodeId>,
}

impl App {
    pub fn new(cluster: Arc<Cluster>, me: NodeId, links: Option<Arc<LinkTable>>) -> App {
        let mut view = View::new("say something (Enter sends; /help)");
        view.system(format!(
            "{} in a group of {}: a message is delivered, in the same order everywhere, once every member has it",
            cluster.name(me),
            cluster.names().join(", ")
        ));
        let mut app = App {
            cluster,
            me,
            view,
            table: commands(),
            links,
            clock: 0,
            holdback: 0,
            up: BTreeMap::new(),
            generating: false,
            status_asked: false,
            told_waiting: BTreeSet::new(),
            seen_up: BTreeSet::new(),
        };
        app.view.system("joining the group...");
        app.refresh_status();
        app
    }

    fn name(&self, id: NodeId) -> String {
        self.cluster.name(id).to_string()
    }

    fn names(&self, ids: &[NodeId]) -> String {
        ids.iter()
            .map(|&i| self.name(i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn set_generating(&mut self, on: bool) {
        self.generating = on;
        self.refresh_status();
    }

    pub fn note(&mut self, n: &Note) {
        match n {
            Note::Multicast { seq, lamport, text } => self.view.add_pending(
                *seq,
                Entry::Pending {
                    label: format!("[{lamport:>5}]"),
                    sender: self.name(self.me),
                    text: text.clone(),
                    waits: "on its way".into(),
                },
            ),
            Note::Deliver {
                origin,
                seq,
                lamport,
                text,
            } => {
                if *origin == self.me {
                    self.view.remove_pending(*seq);
                }
                self.view.push(Entry::Message {
                    time: clock_time(),
                    label: format!("[{lamport:>5}]"),
                    sender: self.name(*origin),
                    color: origin.index(),
                    text: text.clone(),
                });
            }
            Note::Status {
                clock,
                holdback,
                delivered,
                joined,
                waiting,
            } => {
                self.clock = *clock;
                self.holdback = *holdback;
                let missing: Vec<NodeId> = waiting
                    .first()
                    .map(|(_, _, _, m)| m.clone())
                    .unwrap_or_default();
                let waits = if missing.is_empty() {
                    "on its way".to_string()
                } else {
                    format!("waits for {}", self.names(&missing))
                };
                for key in self.view.pending_keys() {
                    self.view.pending_waits(key, waits.clone());
                }
                self.tell_waiting(&missing);
                if std::mem::take(&mut self.status_asked) {
                    let mut s = format!(
                        "Lamport clock {clock}; delivered {delivered}; holdback queue {holdback}{}",
                        if *joined { "" } else { "; not joined yet" }
                    );
                    for (sender, stamp, text, missing) in waiting {
                        s.push_str(&format!(
                            "\n  [{stamp}] {}: {text:?} waits for acks from {}",
                            self.name(*sender),
                            self.names(missing)
                        ));
                    }
                    self.view.system(s);
                }
            }
            Note::PeerUp { peer } => {
                let first = self.seen_up.insert(*peer);
                if self.up.insert(*peer, true) == Some(false) {
                    let again = if first { "" } else { " again" };
                    self.view
                        .system(format!("{} is up{again}", self.name(*peer)));
                }
                self.told_waiting.remove(peer);
            }
            Note::PeerDown { peer } => {
                if self.up.insert(*peer, false) != Some(false) {
                    self.view.system(format!(
                        "{} is DOWN: messages wait for it (nothing is lost; they are delivered when it is back)",
                        self.name(*peer)
                    ));
                    self.told_waiting.insert(*peer);
                }
            }
            Note::Joined { .. } => self.view.system("joined the group"),
            Note::PeerJoining { peer } => {
                self.view.system(format!("{} is joining", self.name(*peer)))
            }
            Note::PeerJoined { peer } => self.view.system(format!("{} joined", self.name(*peer))),
            Note::Queued { .. } | Note::Full { .. } | Note::Resumed => {
                if let Some(l) = crate::node::Note::line(n, &self.cluster) {
                    self.view.system(l.trim_matches(['(', ')']));
                }
            }
        }
        self.refresh_status();
    }

    /// Says once, plainly, that messages wait for members that are missing.
    fn tell_waiting(&mut self, missing: &[NodeId]) {
        let new: Vec<NodeId> = missing
            .iter()
            .copied()
            .filter(|m| self.up.get(m) != Some(&true) && !self.told_waiting.contains(m))
            .collect();
        if new.is_empty() {
            return;
        }
        self.told_waiting.extend(&new);
        self.view.system(format!(
            "messages are waiting for {} (not running, or not reachable): every member in {} must have a message before anyone delivers it",
            self.names(&new),
            self.cluster.source().display()
        ));
    }

    fn link(&self, p: NodeId) -> LinkState {
        // A refusal is news the machine's notes do not carry.
        if let Some(l) = &self.links
            && let r @ LinkState::Refused(_) = l.get(p)
        {
            return r;
        }
        match (&self.links, self.up.get(&p)) {
            (_, Some(true)) => LinkState::Up,
            (_, Some(false)) => LinkState::Down,
            (Some(l), None) => l.get(p),
            (None, None) => LinkState::Unused,
        }
    }

    fn refresh_status(&mut self) {
        let mut spans = vec![
            Span::styled(
                format!(" {} ", self.name(self.me)),
                Style::default().fg(Color::Black).bg(Color::White),
            ),
            Span::raw(format!(
                " lamport {}  holdback {}  ",
                self.clock, self.holdback
            )),
        ];
        for p in self.cluster.ids().filter(|&i| i != self.me) {
            let (s, c) = match self.link(p) {
                LinkState::Up => ("up", Color::Green),
                LinkState::Down => ("DOWN", Color::Red),
                LinkState::Unused => ("?", Color::DarkGray),
                LinkState::Refused(r) => (r.words(), Color::Magenta),
            };
            spans.push(Span::styled(
                format!("{} {s}  ", self.name(p)),
                Style::default().fg(c),
            ));
        }
        if self.generating {
            spans.push(Span::raw("gen on"));
        }
        self.view.set_status(Line::from(spans));
    }

    /// A line typed and submitted.
    pub fn submit(&mut self, line: &str) -> Action {
        match self.table.parse(line) {
            Parsed::Empty => Action::None,
            Parsed::Run(Cmdline::Send(text)) => Action::Send(text),
            Parsed::Run(Cmdline::Gen(on)) => {
                self.generating = on;
                self.view.system(if on {
                    "sending random words"
                } else {
                    "not sending random words"
                });
                self.refresh_status();
                Action::Gen(on)
            }
            Parsed::Run(Cmdline::Status) => {
                self.status_asked = true;
                Action::Status
            }
            Parsed::Run(Cmdline::Peers) => {
                let list: Vec<String> = self
                    .cluster
                    .ids()
                    .filter(|&i| i != self.me)
                    .map(|i| format!("{} {} {}", self.name(i), self.cluster.addr(i), self.link(i)))
                    .collect();
                self.view.system(list.join("\n"));
                Action::None
            }
            Parsed::Help => {
                self.view.system(format!(
                    "{}\nPgUp/PgDn or the mouse wheel scroll; Up/Down recall; Ctrl-D on an empty line or Ctrl-C quits",
                    self.table.help()
                ));
                Action::None
            }
            Parsed::Quit => Action::Quit,
            Parsed::Error(e) => {
                self.view.system(e);
                Action::None
            }
        }
    }
}

/// Runs the UI until the user quits. `notes` are the node's notes,
/// `commands` reach the node, `gen` switches the word generator.
pub async fn run(
    cluster: Arc<Cluster>,
    me: NodeId,
    links: Arc<LinkTable>,
    mut notes: mpsc::Receiver<Note>,
    commands: mpsc::Sender<Cmd>,
    gen_switch: watch::Sender<bool>,
    generating: bool,
) -> std::io::Result<()> {
    let mut term = Terminal::start()?;
    let mut app = App::new(cluster, me, Some(links));
    app.set_generating(generating);
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    // SIGTERM leaves like /quit: the terminal restored, the node stopped.
    let mut sigterm = crate::ui::shell::Term::new();
    loop {
        term.draw(&mut app.view)?;
        tokio::select! {
            _ = sigterm.recv() => return Ok(()),
            Some(n) = notes.recv() => {
                app.note(&n);
                while let Ok(n) = notes.try_recv() {
                    app.note(&n);
                }
            }
            Some(ev) = term.events.recv() => {
                let action = match Terminal::handle(&mut app.view, ev) {
                    Key::Quit => Action::Quit,
                    Key::Submit(line) => app.submit(&line),
                    Key::None => Action::None,
                };
                match action {
                    Action::Quit => return Ok(()),
                    Action::Send(text) => {
                        if commands.try_send(Cmd::Send(text)).is_err() {
                            app.view.system("the node is not taking messages right now (a member is slow or down): not sent; try again later");
                        }
                    }
                    Action::Gen(on) => {
                        let _ = gen_switch.send(on);
                    }
                    Action::Status => {
                        let _ = commands.try_send(Cmd::Status);
                    }
                    Action::None => {}
                }
            }
            _ = tick.tick() => {
                let _ = commands.try_send(Cmd::Status);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::chat::tests_support::screen;

    #[test]
    fn a_member_seen_for_the_first_time_is_up_not_up_again() {
        let c = Arc::new(Cluster::loopback(3, 40000));
        let mut app = App::new(c, NodeId(0), None);
        app.note(&Note::PeerDown { peer: NodeId(1) });
        app.note(&Note::PeerUp { peer: NodeId(1) });
        let s = screen(&mut app.view, 110, 14);
        assert!(s.contains("l2 is up") && !s.contains("up again"), "{s}");
        app.note(&Note::PeerDown { peer: NodeId(1) });
        app.note(&Note::PeerUp { peer: NodeId(1) });
        let s = screen(&mut app.view, 110, 14);
        assert!(s.contains("l2 is up again"), "{s}");
    }

    #[test]
    fn deliveries_pending_messages_status_and_commands() {
        let c = Arc::new(Cluster::loopback(3, 40000));
        let mut app = App::new(c, NodeId(0), None);
        app.note(&Note::Multicast {
            seq: 1,
            lamport: 5,
            text: "mine, on its way".into(),
        });
        app.note(&Note::PeerUp { peer: NodeId(1) });
        app.note(&Note::PeerDown { peer: NodeId(2) });
        app.note(&Note::Status {
            clock: 42,
            holdback: 1,
            delivered: 0,
            joined: true,
            waiting: vec![(NodeId(0), 5, "mine, on its way".into(), vec![NodeId(2)])],
        });
        let s = screen(&mut app.view, 110, 14);
        assert!(s.contains("mine, on its way  (waits for l3)"), "{s}");
        assert!(s.contains("l3 is DOWN: messages wait for it"), "{s}");
        assert!(
            s.contains("lamport 42  holdback 1") && s.contains("l2 up") && s.contains("l3 DOWN"),
            "{s}"
        );
        app.note(&Note::Deliver {
            origin: NodeId(0),
            seq: 1,
            lamport: 5,
            text: "mine, on its way".into(),
        });
        let s = screen(&mut app.view, 110, 14);
        assert!(
            s.contains("l1: mine, on its way") && !s.contains("waits for l3)"),
            "{s}"
        );
        // Commands: the plain mode's table.
        assert_eq!(app.submit("/status"), Action::Status);
        assert_eq!(app.submit("/gen"), Action::None);
        assert_eq!(app.submit("/gen on"), Action::Gen(true));
        assert_eq!(app.submit("//slash"), Action::Send("/slash".into()));
        assert_eq!(app.submit("/quit"), Action::Quit);
        app.submit("/help");
        let s = screen(&mut app.view, 110, 30);
        assert!(s.contains("usage: /gen on|off"), "{s}");
        assert!(s.contains("/status") && s.contains("Lamport clock"), "{s}");
        app.note(&Note::PeerJoining { peer: NodeId(1) });
        app.note(&Note::PeerJoined { peer: NodeId(1) });
        let s = screen(&mut app.view, 110, 30);
        assert!(s.contains("l2 joined"), "{s}");
    }

    #[test]
    fn messages_waiting_for_members_that_never_came_say_so_once() {
        let c = Arc::new(Cluster::loopback(6, 40000));
        let mut app = App::new(c, NodeId(0), None);
        for _ in 0..3 {
            app.note(&Note::Status {
                clock: 1,
                holdback: 1,
                delivered: 0,
                joined: true,
                waiting: vec![(
                    NodeId(0),
                    1,
                    "hi".into(),
                    vec![NodeId(3), NodeId(4), NodeId(5)],
                )],
            });
        }
        let s = screen(&mut app.view, 200, 20);
        assert_eq!(
            s.matches("messages are waiting for l4, l5, l6").count(),
            1,
            "{s}"
        );
    }
}
