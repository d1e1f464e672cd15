//! `dsys multicast`: one chat node. On a terminal it is the chat UI
//! (`tui`); otherwise (or with `--plain`) every stdin line is multicast and
//! every delivery is one line `[LAMPORT] SENDER: TEXT` on stdout, in the
//! total order. Everything else (joins, peers up and down, status) goes to
//! stderr, so stdout is exactly the delivery sequence.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::{Rng as _, SeedableRng};
use tokio::sync::{mpsc, watch};

use super::machine::MAX_TEXT;
use super::{Cmd, Multicast, Note};
use crate::cli::{CliError, Outcome, block_on};
use crate::config::{Cluster, NodeId};
use crate::net::LinkTable;
use crate::node::{Note as _, Rng};
use crate::tool::Run;
use crate::ui::commands::{Commands, on_off};
use crate::ui::input::Stdin;
use crate::ui::prompt::own_name;
use crate::ui::shell::{Session, command_loop};

#[derive(Args, Debug)]
#[command(
    after_help = "Every line typed is sent to every node in the peers file (this one included). \
With --plain (or without a terminal) every delivery prints one line `[LAMPORT] SENDER: TEXT` on \
stdout, in the same order on every node; other output goes to stderr. \
Commands: /gen on|off, /status, /peers, /help, /quit. A line may be at most 1 MiB. \
Every node listed in the peers file is a member: messages are delivered once all of them have \
acknowledged, so run every listed node (the shipped peers.json lists l1, l2, l3).\n\n\
Example (three terminals):\n  dsys multicast l1\n  dsys multicast l2\n  dsys multicast l3"
)]
pub struct NodeArgs {
    /// This node's name in the peers file (asked for when omitted on a terminal)
    pub name: Option<String>,
    /// JSON file {"name": "host:port", ...} of the group; default ./peers.json, else the built-in l1..l3
    #[arg(long, value_name = "FILE")]
    pub peers: Option<PathBuf>,
    /// Send random words from the start (like the original's "Start generating words? y")
    #[arg(long)]
    pub generate: bool,
    /// Random words per second, on average (exponential inter-arrival times)
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Write events as JSON lines to FILE (for `dsys check multicast`)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Plain line mode even on a terminal (it is automatic when stdin or stdout is not a terminal)
    #[arg(long)]
    pub plain: bool,
    #[command(flatten)]
    pub auth: crate::net::auth::AuthArgs,
}

impl Run for NodeArgs {
    fn run(self) -> Outcome {
        block_on(run(self))??;
        Ok(crate::cli::Ended::Passed)
    }
}

/// What a line at the prompt asks for.
pub enum Line {
    Send(String),
    Gen(bool),
    Status,
    Peers,
}

/// The chat's commands (plain mode and the chat UI share them).
pub fn commands() -> Commands<Line> {
    Commands::chat(|text| {
        if text.len() > MAX_TEXT {
            Err(format!(
                "that line is {} bytes; a message may be at most {MAX_TEXT} bytes (1 MiB): not sent",
                text.len()
            ))
        } else {
            Ok(Line::Send(text.to_string()))
        }
    })
    .with("gen", "on|off", "start or stop sending random words (--rate per second)", |r| {
        on_off(r).map(Line::Gen)
    })
    .simple("status", "Lamport clock, holdback queue and what its head waits for", || {
        Line::Status
    })
    .simple("peers", "the members and whether each link is up", || Line::Peers)
}

async fn run(a: NodeArgs) -> Result<(), CliError> {
    let c = Arc::new(Cluster::from_flag(a.peers.as_deref(), "peers.json")?);
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err(CliError::usage(format!(
            "--rate {}: messages per second must be above 0",
            a.rate
        )));
    }
    let mut input = Stdin::start();
    let Some(me) = own_name(&mut input, &c, a.name.as_deref(), "members").await? else {
        return Ok(());
    };
    let tui = crate::ui::chat::use_tui(a.plain);
    if tui {
        let log = std::env::temp_dir().join(format!("dsys-multicast-{}.log", c.name(me)));
        let _ = crate::cli::log_to_file(&log);
    }
    let (ui_tx, ui_rx) = mpsc::channel::<Note>(4096);
    let present = {
        let c = c.clone();
        move |note: &Note, out: &mut dyn Write| {
            if tui {
                let _ = ui_tx.blocking_send(note.clone());
                return;
            }
            match note {
                Note::Deliver { .. } => {
                    if let Some(line) = note.line(&c) {
                        let _ = writeln!(out, "{line}");
                    }
                }
                Note::Multicast { .. } => {}
                _ => {
                    if let Some(line) = note.line(&c) {
                        eprintln!("{line}");
                    }
                }
            }
        }
    };
    let machine = Multicast::new(me, c.ids(), crate::events::wall_us().max(1));
    let session =
        Session::start(c.clone(), me, &a.auth, machine, a.events.as_ref(), present).await?;
    let (gen_tx, gen_rx) = watch::channel(a.generate);
    tokio::spawn(generate(
        session.node.commands.clone(),
        gen_rx,
        a.rate,
        c.name(me).to_string(),
    ));
    if tui {
        let r = super::tui::run(
            c.clone(),
            me,
            session.node.links.clone(),
            ui_rx,
            session.node.commands.clone(),
            gen_tx,
            a.generate,
        )
        .await;
        session.stop().await;
        return r.map_err(|e| CliError::Failed(format!("terminal: {e}")));
    }
    eprintln!(
        "({} on {}; members: {}; type /help for commands)",
        c.name(me),
        c.addr(me),
        c.names().join(", ")
    );
    let table = commands();
    let rate = a.rate;
    let links = session.node.links.clone();
    command_loop(&mut input, &table, async |line| match line {
        Line::Send(text) => session.command(Cmd::Send(text)).await,
        Line::Status => session.command(Cmd::Status).await,
        Line::Peers => eprintln!("{}", peers_text(&c, me, &links)),
        Line::Gen(on) => {
            let _ = gen_tx.send(on);
            if on {
                eprintln!("(sending random words, {rate} per second on average)");
            } else {
                eprintln!("(not sending random words)");
            }
        }
    })
    .await;
    session.stop().await;
    let _ = std::io::stdout().flush();
    Ok(())
}

/// Sends random words at exponential intervals while `on` is true (the
/// generator lives out here: the protocol only sees messages).
async fn generate(
    commands: mpsc::Sender<Cmd>,
    mut on: watch::Receiver<bool>,
    rate: f64,
    me: String,
) {
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
                let w = crate::words::pick(&mut rng);
                if commands.send(Cmd::Send(format!("{w} ({me} #{n})"))).await.is_err() {
                    return;
                }
            }
            r = on.changed() => if r.is_err() { return },
        }
    }
}

/// `(l2 127.0.0.1:50052 up)` per member.
pub fn peers_text(c: &Cluster, me: NodeId, links: &LinkTable) -> String {
    c.ids()
        .filter(|&i| i != me)
        .map(|id| format!("({} {} {})", c.name(id), c.addr(id), links.get(id)))
        .chain(links.refused_line())
        .collect::<Vec<_>>()
        .join("\n")
}
