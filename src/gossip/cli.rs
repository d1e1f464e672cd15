//! `dsys gossip`: one interactive node. Asks for its name and the
//! neighbors to add (like the original toolkit), then reads commands while
//! words spread. While a question is open, the node's own lines wait, so
//! the question stays on the last line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Args;
use rand::SeedableRng;
use tokio::sync::mpsc;

use super::tuning::Tuning;
use super::{Cmd, Gossip, Note, WordId};
use crate::cli::{CliError, Outcome, block_on};
use crate::config::{Cluster, NodeId};
use crate::net::LinkTable;
use crate::node::{Note as _, Rng};
use crate::tool::Run;
use crate::ui::commands::{Commands, on_off};
use crate::ui::console::Console;
use crate::ui::input::Stdin;
use crate::ui::prompt::{Asked, ask, node_answer, own_name_answer};
use crate::ui::shell::{Session, command_loop};

#[derive(Args, Debug)]
#[command(
    after_help = "Questions: without NAME it lists the machines and asks for this node's name. \
Unless --neighbors is given, it then asks how many neighbors to add and each one's name \
(when NAME was asked, or stdin is a terminal). An empty answer or Ctrl-D ends the questions. \
Answers may also come from a pipe.\n\n\
Commands afterwards: add NAME, remove NAME, peers, words, say WORD, gen on|off, status, help, \
quit. Ctrl-D at the command prompt quits like `quit`.\n\n\
Example (three terminals):\n  dsys gossip l1\n  dsys gossip l2 --neighbors l1\n  dsys gossip l3 --neighbors l1,l2"
)]
pub struct NodeArgs {
    /// This node's name in the machines file (asked for when omitted)
    pub name: Option<String>,
    /// JSON file {"name": "host:port", ...}; default ./machines.txt, else the built-in l1..l3 on 127.0.0.1
    #[arg(long, value_name = "FILE")]
    pub machines: Option<PathBuf>,
    /// Link with these nodes at start (comma-separated), without asking; nodes that are down are retried
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    pub neighbors: Option<Vec<String>>,
    /// Mean time between generated words (exponential inter-arrival times)
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub mean_interval: Duration,
    /// Do not generate words (say WORD still makes one)
    #[arg(long)]
    pub no_generate: bool,
    /// Write events as JSON lines to FILE (for `dsys check gossip`)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    #[command(flatten)]
    pub tuning: Tuning,
    #[command(flatten)]
    pub auth: crate::net::auth::AuthArgs,
}

impl Run for NodeArgs {
    fn run(self) -> Outcome {
        block_on(run(self))??;
        Ok(crate::cli::Ended::Passed)
    }
}

/// The link notes the neighbor questions wait for.
enum LinkResult {
    Linked,
    Already,
    Failed,
}

fn commands(c: Arc<Cluster>, me: NodeId) -> Commands<Cmd> {
    let peer = move |rest: &str, verb: &str| -> Result<NodeId, String> {
        let example = c
            .ids()
            .find(|&i| i != me)
            .map_or("l2", |i| c.name(i))
            .to_string();
        if rest.is_empty() {
            return Err(format!("which node? e.g. `{verb} {example}`"));
        }
        node_answer(&c, rest, Some((me, "that is this node")))
    };
    let peer2 = peer.clone();
    Commands::new()
        .with(
            "add",
            "NAME",
            "link with another node (both ends learn of the link)",
            move |r| {
                peer(r, "add").map(|p| Cmd::Add {
                    peer: p,
                    persistent: false,
                })
            },
        )
        .with("remove", "NAME", "drop that link", move |r| {
            peer2(r, "remove").map(Cmd::Remove)
        })
        .simple("peers", "neighbors, and whether each link is up", || {
            Cmd::Peers
        })
        .simple(
            "words",
            "the words this node knows: who made each, who told it, when",
            || Cmd::Words,
        )
        .with(
            "say",
            "WORD",
            "make a word here now and spread it",
            |r| match r.len() {
                0 => Err("say what? e.g. `say hello`".into()),
                n if n > 200 => Err("a word is at most 200 characters".into()),
                _ => Ok(Cmd::Say(r.to_string())),
            },
        )
        .with("gen", "on|off", "start or stop generating words", |r| {
            on_off(r).map(Cmd::Generate)
        })
        .alias(&["generate"])
        .simple(
            "status",
            "counts: words, messages, rumors still hot",
            || Cmd::Status,
        )
}

async fn run(a: NodeArgs) -> Result<(), CliError> {
    let c = Arc::new(Cluster::from_flag(a.machines.as_deref(), "machines.txt")?);
    let mut params = a.tuning.params().map_err(CliError::Usage)?;
    if a.mean_interval.is_zero() {
        return Err(CliError::usage("--mean-interval must be above zero"));
    }
    params.mean_interval = a.mean_interval;
    params.generate = !a.no_generate;
    let mut input = Stdin::start();
    let asked_name = a.name.is_none();
    if asked_name {
        println!(
            "machines in {}: {}",
            c.source().display(),
            c.names().join(", ")
        );
    }
    let me = match &a.name {
        Some(n) => c.require(n)?,
        None => match ask(&mut input, "this node's name", |s| own_name_answer(&c, s)).await {
            Asked::Answer(m) => m,
            Asked::End if input.tty => {
                eprintln!("no name given: nothing started");
                return Ok(());
            }
            Asked::End => {
                return Err(CliError::usage(
                    "no answer to \"this node's name\" (end of input)",
                ));
            }
            Asked::Interrupted => return Ok(()),
        },
    };
    let neighbors: Vec<NodeId> = match &a.neighbors {
        Some(list) => {
            let mut ids = Vec::new();
            for n in list.iter().filter(|n| !n.is_empty()) {
                let id = c.require(n)?;
                if id == me {
                    return Err(CliError::usage(format!(
                        "--neighbors: {n} is this node itself"
                    )));
                }
                ids.push(id);
            }
            ids
        }
        None => Vec::new(),
    };
    let console = Console::new();
    let (link_tx, mut link_rx) = mpsc::channel::<(NodeId, LinkResult)>(64);
    // The link table exists once the node is up; `peers` needs it.
    let links: Arc<OnceLock<Arc<LinkTable>>> = Arc::new(OnceLock::new());
    let present = {
        let (c, console, links) = (c.clone(), console.clone(), links.clone());
        move |note: &Note, out: &mut dyn Write| {
            let result = match note {
                Note::Linked { peer } => Some((*peer, LinkResult::Linked)),
                Note::AlreadyLinked { peer } => Some((*peer, LinkResult::Already)),
                Note::LinkFailed {
                    peer,
                    retrying: false,
                } => Some((*peer, LinkResult::Failed)),
                _ => None,
            };
            if let Some(r) = result {
                let _ = link_tx.try_send(r);
                // The open question reports it in its own words.
                if console.is_held() {
                    return;
                }
            }
            let text = match note {
                Note::Words(list) => words_text(&c, list),
                Note::Peers { neighbors, linking } => {
                    peers_text(&c, neighbors, linking, links.get())
                }
                Note::Status {
                    words,
                    hot,
                    sent,
                    received,
                    neighbors,
                    generating,
                } => format!(
                    "words known: {words}; rumors still hot: {hot}; messages sent: {sent}, received: {received}; neighbors: {neighbors}; generator: {}",
                    if *generating { "on" } else { "off" }
                ),
                _ => match note.line(&c) {
                    Some(l) => l,
                    None => return,
                },
            };
            console.line(out, &text);
        }
    };
    let ask_neighbors = a.neighbors.is_none() && (asked_name || input.tty);
    if ask_neighbors {
        console.hold();
    }
    let machine = Gossip::new(
        me,
        [],
        crate::events::wall_us().max(1),
        params.clone(),
        crate::words::all(),
        Rng::from_os_rng(),
    );
    let session =
        Session::start(c.clone(), me, &a.auth, machine, a.events.as_ref(), present).await?;
    let _ = links.set(session.node.links.clone());
    println!("{} listening on {}", c.name(me), c.addr(me));
    for &n in &neighbors {
        session
            .command(Cmd::Add {
                peer: n,
                persistent: true,
            })
            .await;
    }
    let mut interrupted = false;
    if ask_neighbors {
        interrupted = prompt_neighbors(&c, me, &session, &mut input, &mut link_rx).await;
        console.release();
    }
    if !interrupted {
        if params.generate {
            println!(
                "generating words every {:.1}s on average; type `help` for commands",
                params.mean_interval.as_secs_f64()
            );
        } else {
            println!(
                "not generating words (`gen on` starts, `say WORD` makes one); type `help` for commands"
            );
        }
        let table = commands(c.clone(), me);
        command_loop(&mut input, &table, async |cmd| session.command(cmd).await).await;
    }
    session.stop().await;
    Ok(())
}

/// "How many nodes to add?", then each name; a bad answer or a peer that is
/// down gets a message and the question again. An empty answer or Ctrl-D
/// ends the questions. Returns true if the user pressed Ctrl-C.
async fn prompt_neighbors(
    c: &Cluster,
    me: NodeId,
    session: &Session<Gossip>,
    input: &mut Stdin,
    results: &mut mpsc::Receiver<(NodeId, LinkResult)>,
) -> bool {
    let others = c.len() - 1;
    let count = match ask(input, "how many nodes to add (Enter for none)", |a| {
        if a.is_empty() {
            return Ok(0);
        }
        match a.parse::<usize>() {
            Ok(n) if n <= others => Ok(n),
            Ok(_) => Err(format!("there are only {others} other nodes")),
            Err(_) => Err(format!(
                "{a:?} is not a number; type a whole number from 0 to {others}"
            )),
        }
    })
    .await
    {
        Asked::Answer(n) => n,
        Asked::End => return no_more(),
        Asked::Interrupted => return true,
    };
    let mut chosen = std::collections::BTreeSet::new();
    while chosen.len() < count {
        let question = format!(
            "node {} of {count} to add (Enter to stop)",
            chosen.len() + 1
        );
        let peer = match ask(input, &question, |a| {
            if a.is_empty() {
                return Ok(None);
            }
            let p = node_answer(c, a, Some((me, "that is this node; pick another")))?;
            if chosen.contains(&p) {
                return Err(format!("{} is added already; pick another", c.name(p)));
            }
            Ok(Some(p))
        })
        .await
        {
            Asked::Answer(Some(p)) => p,
            Asked::Answer(None) => return false,
            Asked::End => return no_more(),
            Asked::Interrupted => return true,
        };
        session
            .command(Cmd::Add {
                peer,
                persistent: false,
            })
            .await;
        let outcome = loop {
            match results.recv().await {
                Some((p, r)) if p == peer => break r,
                Some(_) => {}
                None => return false,
            }
        };
        match outcome {
            // Already linked: it added us first, which is what we wanted.
            LinkResult::Linked | LinkResult::Already => {
                println!("linked with {}", c.name(peer));
                chosen.insert(peer);
            }
            LinkResult::Failed => println!(
                "{} does not answer (is it running?); pick another, or start it and try again",
                c.name(peer)
            ),
        }
    }
    false
}

fn no_more() -> bool {
    println!("(end of input: not asking for more neighbors; `add NAME` still works)");
    false
}

fn peers_text(
    c: &Cluster,
    neighbors: &[NodeId],
    linking: &[NodeId],
    links: Option<&Arc<LinkTable>>,
) -> String {
    if neighbors.is_empty() && linking.is_empty() {
        return "no neighbors yet (add NAME links one)".into();
    }
    let mut lines = Vec::new();
    for &n in neighbors {
        let state = links.map_or("not contacted yet".to_string(), |l| l.get(n).to_string());
        lines.push(format!("  {:<8} {} ({state})", c.name(n), c.addr(n)));
    }
    for &n in linking {
        lines.push(format!(
            "  {:<8} {} (linking: waiting for an answer)",
            c.name(n),
            c.addr(n)
        ));
    }
    if let Some(l) = links.and_then(|l| l.refused_line()) {
        lines.push(format!("  {l}"));
    }
    lines.join("\n")
}

fn words_text(c: &Cluster, list: &[(WordId, String, Option<NodeId>, Duration)]) -> String {
    const SHOW: usize = 50;
    let mut lines = vec![format!(
        "{} word(s) known{}",
        list.len(),
        if list.len() > SHOW {
            format!(", the newest {SHOW}:")
        } else {
            ":".into()
        }
    )];
    for (id, text, from, ago) in list.iter().rev().take(SHOW).rev() {
        lines.push(format!(
            "  {text:<16} {}, {:.1}s ago",
            super::note::provenance(c, id.origin, *from),
            ago.as_secs_f64()
        ));
    }
    lines.join("\n")
}
