//! The interactive `dsys gossip` node: asks for its name and the neighbors
//! to add (like the original toolkit), then reads commands line by line
//! while words spread.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand::SeedableRng;
use tokio::sync::{mpsc, watch};

use super::{Cmd, Gossip, Note, Params, word_list};
use crate::cli::{CliError, open_events, signal_stream, stdin_lines};
use crate::config::Cluster;
use crate::driver::{self, Running};
use crate::net::{LinkState, LinkTable};
use crate::node::{NodeId, Note as _, Rng};

pub struct Options {
    pub cluster: Cluster,
    pub name: Option<String>,
    pub neighbors: Option<Vec<String>>,
    pub params: Params,
    pub events: Option<PathBuf>,
}

const HELP: &str = "commands:
  add NAME      link with another node (both ends learn of the link)
  remove NAME   drop that link
  peers         neighbors, and whether each link is up
  words         the words this node knows, where and when it learned each
  say WORD      make a word here now and spread it
  gen on|off    start or stop generating words
  status        counts: words, messages, rumors still hot
  help          this list
  quit          stop this node (Ctrl-C and SIGTERM do too)";

async fn ask(
    lines: &mut mpsc::UnboundedReceiver<String>,
    question: &str,
) -> Result<String, CliError> {
    print!("{question}: ");
    let _ = std::io::stdout().flush();
    match lines.recv().await {
        Some(l) => Ok(l.trim().to_string()),
        None => Err(CliError::Usage(format!(
            "no answer to {question:?} (end of input)"
        ))),
    }
}

async fn ask_name(
    lines: &mut mpsc::UnboundedReceiver<String>,
    c: &Cluster,
) -> Result<NodeId, CliError> {
    loop {
        let answer = ask(lines, "this node's name").await?;
        match c.id(&answer) {
            Some(id) => return Ok(id),
            None => println!(
                "{answer:?} is not a machine in {}; pick one of: {}",
                c.source().display(),
                c.names().join(", ")
            ),
        }
    }
}

/// The link notes the prompt waits for.
enum LinkResult {
    Linked,
    Already,
    Failed,
}

pub async fn run(o: Options) -> Result<(), CliError> {
    let c = Arc::new(o.cluster);
    let mut lines = stdin_lines();
    let prompted = o.name.is_none();
    if prompted {
        println!(
            "machines in {}: {}",
            c.source().display(),
            c.names().join(", ")
        );
    }
    let me = match &o.name {
        Some(n) => c.require(n)?,
        None => ask_name(&mut lines, &c).await?,
    };
    let neighbors: Vec<NodeId> = match &o.neighbors {
        Some(list) => {
            let mut ids = Vec::new();
            for n in list.iter().filter(|n| !n.is_empty()) {
                let id = c.require(n)?;
                if id == me {
                    return Err(CliError::Usage(format!(
                        "--neighbors: {n} is this node itself"
                    )));
                }
                ids.push(id);
            }
            ids
        }
        None => Vec::new(),
    };
    let events = open_events(o.events.as_ref())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (link_tx, mut link_rx) = mpsc::unbounded_channel::<(NodeId, LinkResult)>();
    let sink_cluster = c.clone();
    // The link table exists once the node is up; `peers` needs it.
    let links_slot: Arc<OnceLock<Arc<LinkTable>>> = Arc::new(OnceLock::new());
    let sink_links = links_slot.clone();
    let sink = Box::new(move |note: &Note| {
        let c = &sink_cluster;
        match note {
            Note::Linked { peer } => {
                let _ = link_tx.send((*peer, LinkResult::Linked));
            }
            Note::AlreadyLinked { peer } => {
                let _ = link_tx.send((*peer, LinkResult::Already));
            }
            Note::LinkFailed {
                peer,
                retrying: false,
            } => {
                let _ = link_tx.send((*peer, LinkResult::Failed));
            }
            _ => {}
        }
        match note {
            Note::Words(list) => print_words(c, list),
            Note::Peers { neighbors, linking } => {
                print_peers(c, neighbors, linking, sink_links.get())
            }
            Note::Status {
                words,
                hot,
                sent,
                received,
                neighbors,
                generating,
            } => println!(
                "words known: {words}; rumors still hot: {hot}; messages sent: {sent}, received: {received}; neighbors: {neighbors}; generator: {}",
                if *generating { "on" } else { "off" }
            ),
            _ => {
                if let Some(line) = note.line(c) {
                    println!("{line}");
                }
            }
        }
    });
    let first_seq = crate::events::wall_us().max(1);
    let machine = Gossip::new(
        me,
        [],
        first_seq,
        o.params.clone(),
        word_list(),
        Rng::from_os_rng(),
    );
    let node = driver::launch(machine, c.clone(), me, sink, events, stop_rx).await?;
    let _ = links_slot.set(node.links.clone());
    println!("{} listening on {}", c.name(me), c.addr(me));
    for &n in &neighbors {
        let _ = node.commands.send(Cmd::Add {
            peer: n,
            persistent: true,
        });
    }
    if prompted || (o.neighbors.is_none() && std::io::stdin().is_terminal()) {
        // End of input here stops the questions, not the node.
        if let Err(e) = prompt_neighbors(&c, me, &node, &mut lines, &mut link_rx).await {
            println!("{e}: not asking for more neighbors (`add NAME` still works)");
        }
    }
    if o.params.generate {
        println!(
            "generating words every {:.1}s on average; type `help` for commands",
            o.params.mean_interval.as_secs_f64()
        );
    } else {
        println!(
            "not generating words (`gen on` starts, `say WORD` makes one); type `help` for commands"
        );
    }
    command_loop(&c, me, &node, &mut lines).await;
    let _ = stop_tx.send(true);
    let _ = node.task.await;
    println!("{} stopped", c.name(me));
    Ok(())
}

/// "How many nodes to add?", then each name; a bad answer or a peer that is
/// down gets a message and the question again.
async fn prompt_neighbors(
    c: &Cluster,
    me: NodeId,
    node: &Running<Gossip>,
    lines: &mut mpsc::UnboundedReceiver<String>,
    results: &mut mpsc::UnboundedReceiver<(NodeId, LinkResult)>,
) -> Result<(), CliError> {
    let others = c.len() - 1;
    let count = loop {
        let a = ask(lines, "how many nodes to add").await?;
        match a.parse::<usize>() {
            Ok(n) if n <= others => break n,
            Ok(_) => println!("there are only {others} other nodes"),
            Err(_) => println!("{a:?} is not a number; type a whole number from 0 to {others}"),
        }
    };
    let mut added = 0;
    let mut chosen = std::collections::BTreeSet::new();
    while added < count {
        let a = ask(lines, &format!("node {} of {count} to add", added + 1)).await?;
        let Some(peer) = c.id(&a) else {
            println!(
                "{a:?} is not a machine; pick one of: {}",
                c.names().join(", ")
            );
            continue;
        };
        if peer == me {
            println!("that is this node; pick another");
            continue;
        }
        if chosen.contains(&peer) {
            println!("{} is added already; pick another", c.name(peer));
            continue;
        }
        let _ = node.commands.send(Cmd::Add {
            peer,
            persistent: false,
        });
        let outcome = loop {
            match results.recv().await {
                Some((p, r)) if p == peer => break r,
                Some(_) => {}
                None => return Err(CliError::Usage("node stopped".into())),
            }
        };
        match outcome {
            // Already linked: it added us first, which is what we wanted.
            LinkResult::Linked | LinkResult::Already => {
                chosen.insert(peer);
                added += 1;
            }
            LinkResult::Failed => println!("pick another, or start {} and try again", c.name(peer)),
        }
    }
    Ok(())
}

async fn command_loop(
    c: &Cluster,
    me: NodeId,
    node: &Running<Gossip>,
    lines: &mut mpsc::UnboundedReceiver<String>,
) {
    let mut term = signal_stream();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.recv(), if stdin_open => {
                let Some(line) = line else {
                    stdin_open = false;
                    continue;
                };
                let line = line.trim();
                let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                let peer = |name: &str| -> Option<NodeId> {
                    match c.id(name) {
                        Some(id) if id == me => {
                            println!("that is this node");
                            None
                        }
                        Some(id) => Some(id),
                        None if name.is_empty() => {
                            println!("which node? e.g. `{word} {}`", c.names().iter().find(|n| c.id(n) != Some(me)).map_or("l2", |s| s.as_str()));
                            None
                        }
                        None => {
                            println!("{name:?} is not a machine; known: {}", c.names().join(", "));
                            None
                        }
                    }
                };
                let cmd = match word.to_ascii_lowercase().as_str() {
                    "" => None,
                    "add" => peer(rest).map(|p| Cmd::Add { peer: p, persistent: false }),
                    "remove" => peer(rest).map(Cmd::Remove),
                    "peers" => Some(Cmd::Peers),
                    "words" => Some(Cmd::Words),
                    "status" => Some(Cmd::Status),
                    "say" if rest.is_empty() => {
                        println!("say what? e.g. `say hello`");
                        None
                    }
                    "say" if rest.len() > 200 => {
                        println!("a word is at most 200 characters");
                        None
                    }
                    "say" => Some(Cmd::Say(rest.to_string())),
                    "gen" | "generate" => match rest {
                        "on" => Some(Cmd::Generate(true)),
                        "off" => Some(Cmd::Generate(false)),
                        _ => {
                            println!("gen on, or gen off");
                            None
                        }
                    },
                    "help" | "?" => {
                        println!("{HELP}");
                        None
                    }
                    "quit" | "exit" => break,
                    other => {
                        let shown: String = other.chars().take(40).collect();
                        println!("unknown command {shown:?}; commands: add, remove, peers, words, say, gen, status, help, quit");
                        None
                    }
                };
                if let Some(cmd) = cmd {
                    let _ = node.commands.send(cmd);
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    // Let a last command's output (e.g. `status; quit`) print.
    tokio::time::sleep(Duration::from_millis(20)).await;
}

fn print_peers(
    c: &Cluster,
    neighbors: &[NodeId],
    linking: &[NodeId],
    links: Option<&Arc<LinkTable>>,
) {
    if neighbors.is_empty() && linking.is_empty() {
        println!("no neighbors yet (add NAME links one)");
    }
    for &n in neighbors {
        let state = match links.map(|l| l.get(n)) {
            Some(LinkState::Up) => "up",
            Some(LinkState::Down) => "DOWN",
            _ => "not contacted yet",
        };
        println!("  {:<8} {} ({state})", c.name(n), c.addr(n));
    }
    for &n in linking {
        println!(
            "  {:<8} {} (linking: waiting for an answer)",
            c.name(n),
            c.addr(n)
        );
    }
}

fn print_words(c: &Cluster, list: &[(super::WordId, String, Option<NodeId>, Duration)]) {
    const SHOW: usize = 50;
    println!(
        "{} word(s) known{}",
        list.len(),
        if list.len() > SHOW {
            format!(", the newest {SHOW}:")
        } else {
            ":".into()
        }
    );
    for (id, text, from, ago) in list.iter().rev().take(SHOW).rev() {
        let how = match from {
            None => "made here".to_string(),
            Some(f) if *f == id.origin => format!("from {}", c.name(*f)),
            Some(f) => format!("made by {}, from {}", c.name(id.origin), c.name(*f)),
        };
        println!("  {text:<16} {how}, {:.1}s ago", ago.as_secs_f64());
    }
}
