//! The interactive `dsys tokenring` node: asks for names when it must, reads
//! commands line by line (a terminal or a pipe), prints what the ring does,
//! appends critical-section entries to `--cs-log`.

use std::fs::OpenOptions;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use super::run::{Launch, launch};
use super::{Cmd, Note, Timing};
use crate::cli::{CliError, open_events, signal_stream, stdin_lines};
use crate::config::Cluster;
use crate::net::{LinkState, LinkTable};
use crate::node::{NodeId, Note as _};

pub struct Options {
    pub cluster: Cluster,
    pub name: Option<String>,
    pub next: Option<String>,
    pub timing: Timing,
    pub cs_log: Option<PathBuf>,
    pub events: Option<PathBuf>,
    /// Do not print a `token N` line per hop.
    pub quiet: bool,
}

const HELP: &str = "commands:
  start    put a token in the ring (once, on one node)
  lock     ask for the critical section; you get it when the token arrives
  unlock   leave the critical section and pass the token on
  status   this node, the token, the ring and the links
  help     this list
  quit     stop this node (Ctrl-C and SIGTERM do too)";

enum Line {
    Cmd(Cmd),
    Help,
    Quit,
    Empty,
    Unknown(String),
}

fn parse_line(line: &str) -> Line {
    match line.trim().to_ascii_lowercase().as_str() {
        "" => Line::Empty,
        "start" => Line::Cmd(Cmd::Start),
        "lock" => Line::Cmd(Cmd::Lock),
        "unlock" => Line::Cmd(Cmd::Unlock),
        "status" => Line::Cmd(Cmd::Status),
        "help" | "?" => Line::Help,
        "quit" | "exit" => Line::Quit,
        other => Line::Unknown(other.chars().take(40).collect()),
    }
}

/// Asks for a machine name until the answer is one.
fn ask(cluster: &Cluster, question: &str, not: Option<&str>) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    loop {
        print!("{question}: ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let n = stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        if n == 0 {
            return Err(CliError::Usage("no answer (end of input)".into()));
        }
        let answer = line.trim();
        if cluster.id(answer).is_none() {
            println!(
                "{answer:?} is not a machine in {}; pick one of: {}",
                cluster.source().display(),
                cluster.names().join(", ")
            );
        } else if not == Some(answer) && cluster.len() > 1 {
            println!("the next node must be another node than this one");
        } else {
            return Ok(answer.to_string());
        }
    }
}

fn resolve_names(o: &Options) -> Result<(NodeId, NodeId), CliError> {
    let c = &o.cluster;
    let tty = std::io::stdin().is_terminal();
    if (o.name.is_none() || o.next.is_none()) && !tty {
        return Err(CliError::Usage(format!(
            "give this node's NAME and --next NAME (stdin is not a terminal, so I cannot ask); machines in {}: {}",
            c.source().display(),
            c.names().join(", ")
        )));
    }
    if o.name.is_none() || o.next.is_none() {
        println!(
            "machines in {}: {}",
            c.source().display(),
            c.names().join(", ")
        );
    }
    let name = match &o.name {
        Some(n) => n.clone(),
        None => ask(c, "this node's name", None)?,
    };
    let me = c.require(&name)?;
    let next = match &o.next {
        Some(n) => n.clone(),
        None => ask(c, "next node's name", Some(&name))?,
    };
    let next = c.require(&next)?;
    Ok((me, next))
}

/// Runs one interactive node until `quit`, Ctrl-C or SIGTERM.
pub async fn run(o: Options) -> Result<(), CliError> {
    let (me, next) = resolve_names(&o)?;
    let cluster = Arc::new(o.cluster.clone());
    let events = open_events(o.events.as_ref())?;
    let mut cs_log = match &o.cs_log {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| CliError::File {
                    file: p.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let sink_cluster = cluster.clone();
    let my_name = cluster.name(me).to_string();
    let quiet = o.quiet;
    // The link table exists once the node is up; `status` shows it.
    let links_slot: Arc<OnceLock<Arc<LinkTable>>> = Arc::new(OnceLock::new());
    let sink_links = links_slot.clone();
    let sink = Box::new(move |note: &Note| {
        if let (Note::CsEnter { hop, .. }, Some(f)) = (note, cs_log.as_mut()) {
            let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
            let _ = writeln!(f, "{now} {my_name} hop {hop}").and_then(|_| f.flush());
        }
        if quiet && matches!(note, Note::Token { .. }) {
            return;
        }
        if let Some(line) = note.line(&sink_cluster) {
            println!("{line}");
        }
        if let Note::Status(st) = note {
            print_links(&sink_cluster, me, st, sink_links.get());
        }
    });
    let node = launch(Launch {
        cluster: cluster.clone(),
        me,
        next,
        timing: o.timing,
        events,
        sink,
        shutdown: stop_rx,
    })
    .await?;
    let _ = links_slot.set(node.links.clone());
    println!(
        "{} listening on {}, next is {}. Type `help` for commands.",
        cluster.name(me),
        cluster.addr(me),
        cluster.name(next)
    );

    let mut lines = stdin_lines();
    let mut stdin_open = true;
    let mut term = signal_stream();
    loop {
        tokio::select! {
            line = lines.recv(), if stdin_open => {
                let Some(line) = line else {
                    stdin_open = false;
                    continue;
                };
                match parse_line(&line) {
                    Line::Cmd(cmd) => {
                        let _ = node.commands.send(cmd);
                    }
                    Line::Help => println!("{HELP}"),
                    Line::Quit => break,
                    Line::Empty => {}
                    Line::Unknown(w) => println!("unknown command {w:?}; commands: start, lock, unlock, status, help, quit"),
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    let _ = stop_tx.send(true);
    let _ = node.task.await;
    println!("{} stopped", cluster.name(me));
    Ok(())
}

/// The links of this node's ring (before the ring is known: to `next`).
fn print_links(c: &Cluster, me: NodeId, st: &super::note::Status, links: Option<&Arc<LinkTable>>) {
    let mut members: Vec<NodeId> = st.ring.iter().copied().filter(|&n| n != me).collect();
    if !members.contains(&st.next) && st.next != me {
        members.push(st.next);
    }
    let parts: Vec<String> = members
        .iter()
        .map(|&n| {
            let state = match links.map(|l| l.get(n)) {
                Some(LinkState::Up) => "up",
                Some(LinkState::Down) => "DOWN",
                _ => "not contacted yet",
            };
            format!("{} {state}", c.name(n))
        })
        .collect();
    println!(
        "links: {}",
        if parts.is_empty() {
            "none (a ring of one)".to_string()
        } else {
            parts.join(", ")
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_case_insensitively_and_unknown_input_is_kept_short() {
        assert!(matches!(parse_line(" LOCK "), Line::Cmd(Cmd::Lock)));
        assert!(matches!(parse_line(""), Line::Empty));
        assert!(matches!(parse_line("quit"), Line::Quit));
        match parse_line(&"x".repeat(500)) {
            Line::Unknown(w) => assert_eq!(w.len(), 40),
            _ => panic!("expected unknown"),
        }
    }
}
