//! The `dsys multicast` node: the chat UI (`tui`) on a terminal, else
//! plain mode: every stdin line is multicast;
//! every delivery is one line `[LAMPORT] SENDER: TEXT` on stdout, in the
//! total order. Everything else (joins, peers up and down, status) goes to
//! stderr, so stdout is exactly the delivery sequence. Commands start with
//! `/`: `/gen on|off`, `/status`, `/peers`, `/help`, `/quit`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng as _, SeedableRng};
use tokio::sync::{mpsc, watch};

use super::{Cmd, Multicast, Note};
use crate::cli::{CliError, open_events, signal_stream, stdin_lines};
use crate::config::Cluster;
use crate::driver;
use crate::net::{LinkState, LinkTable};
use crate::node::{NodeId, Note as _, Rng};

pub struct Options {
    pub cluster: Cluster,
    pub name: String,
    pub generate: bool,
    /// Generated messages per second (exponential inter-arrival times).
    pub rate: f64,
    pub events: Option<PathBuf>,
    pub plain: bool,
}

const HELP: &str = "type a line to send it to everyone; commands:
  /gen on|off   start or stop sending random words (--rate per second)
  /status       Lamport clock, holdback queue and what its head waits for
  /peers        the members and whether each link is up
  /help         this list
  /quit         leave (Ctrl-C and SIGTERM do too)";

pub async fn run(o: Options) -> Result<(), CliError> {
    let c = Arc::new(o.cluster);
    let me = c.require(&o.name)?;
    let tui = use_tui(o.plain);
    let events = open_events(o.events.as_ref())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let sink_cluster = c.clone();
    let mut stdout = std::io::stdout();
    let (ui_tx, ui_rx) = tokio::sync::mpsc::unbounded_channel::<Note>();
    let sink = Box::new(move |note: &Note| {
        let c = &sink_cluster;
        if tui {
            let _ = ui_tx.send(note.clone());
            return;
        }
        match note {
            Note::Deliver { .. } => {
                if let Some(line) = note.line(c) {
                    let _ = writeln!(stdout, "{line}");
                }
            }
            Note::Multicast { .. } => {}
            _ => {
                if let Some(line) = note.line(c) {
                    eprintln!("{line}");
                }
            }
        }
    });
    let inc = crate::events::wall_us().max(1);
    let machine = Multicast::new(me, c.ids(), inc);
    let node = driver::launch(machine, c.clone(), me, sink, events, stop_rx).await?;
    let (gen_tx, gen_rx) = watch::channel(o.generate);
    tokio::spawn(generate(
        node.commands.clone(),
        gen_rx,
        o.rate,
        c.name(me).to_string(),
    ));
    if tui {
        let r = super::tui::run(
            c.clone(),
            me,
            ui_rx,
            node.commands.clone(),
            gen_tx,
            o.generate,
        )
        .await;
        let _ = stop_tx.send(true);
        let _ = node.task.await;
        return r.map_err(|e| CliError::Usage(format!("terminal: {e}")));
    }
    eprintln!(
        "({} on {}; members: {}; type /help for commands)",
        c.name(me),
        c.addr(me),
        c.names().join(", ")
    );

    let rate = o.rate;

    let mut lines = stdin_lines();
    let mut term = signal_stream();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.recv(), if stdin_open => {
                let Some(line) = line else {
                    stdin_open = false;
                    eprintln!("(end of input: the node keeps running; Ctrl-C or SIGTERM stops it)");
                    continue;
                };
                let text = line.trim_end_matches(['\r', '\n']);
                if text.trim().is_empty() {
                    continue;
                }
                match text.trim() {
                    "/quit" | "/exit" => break,
                    "/help" => eprintln!("{HELP}"),
                    "/status" => {
                        let _ = node.commands.send(Cmd::Status);
                    }
                    "/peers" => print_peers(&c, me, &node.links),
                    "/gen on" => {
                        let _ = gen_tx.send(true);
                        eprintln!("(sending random words, {rate} per second on average)");
                    }
                    "/gen off" => {
                        let _ = gen_tx.send(false);
                        eprintln!("(not sending random words)");
                    }
                    cmd if cmd.starts_with('/') => {
                        eprintln!("(unknown command {cmd:?}; /help lists them; to send a line starting with /, start it with //)");
                    }
                    _ => {
                        let text = text.strip_prefix("//").map_or(text.to_string(), |t| format!("/{t}"));
                        let _ = node.commands.send(Cmd::Send(text));
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    let _ = stop_tx.send(true);
    let _ = node.task.await;
    let _ = std::io::stdout().flush();
    Ok(())
}

/// The chat UI runs when both ends of the terminal are a terminal and
/// `--plain` was not given.
pub fn use_tui(plain: bool) -> bool {
    !plain && std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Sends random words at exponential intervals while `on` is true (the
/// generator lives out here: the protocol only sees messages).
async fn generate(
    commands: mpsc::UnboundedSender<Cmd>,
    mut on: watch::Receiver<bool>,
    rate: f64,
    me: String,
) {
    let words = crate::gossip::word_list();
    let mut rng = Rng::from_os_rng();
    let mut n = 0u64;
    loop {
        if !*on.borrow() {
            if on.changed().await.is_err() {
                return;
            }
            continue;
        }
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        let wait = Duration::from_secs_f64((-u.ln() / rate.max(1e-9)).min(3600.0));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {
                n += 1;
                let w = words[rng.random_range(0..words.len())];
                if commands.send(Cmd::Send(format!("{w} ({me} #{n})"))).is_err() {
                    return;
                }
            }
            r = on.changed() => if r.is_err() { return },
        }
    }
}

fn print_peers(c: &Cluster, me: NodeId, links: &LinkTable) {
    for id in c.ids().filter(|&i| i != me) {
        let s = match links.get(id) {
            LinkState::Up => "up",
            LinkState::Down => "DOWN",
            LinkState::Unused => "not contacted yet",
        };
        eprintln!("({} {} {s})", c.name(id), c.addr(id));
    }
}
