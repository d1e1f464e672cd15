//! `dsys tokenring`: one interactive node. Asks for names when it must,
//! reads commands (a terminal or a pipe), prints what the ring does, and
//! appends critical-section entries to `--cs-log`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Args;
use rand::SeedableRng;

use super::note::Status;
use super::{Cmd, Note, Timing, TokenRing};
use crate::cli::{CliError, Outcome, block_on, open_append};
use crate::config::{Cluster, NodeId};
use crate::net::LinkTable;
use crate::node::{Note as _, Rng};
use crate::tool::Run;
use crate::ui::commands::Commands;
use crate::ui::console::Console;
use crate::ui::input::Stdin;
use crate::ui::prompt::{Asked, ask_node, ask_own_name};
use crate::ui::shell::{Session, command_loop};

#[derive(Args, Debug)]
#[command(
    after_help = "Commands at the prompt: start, lock, unlock, status, help, quit.\n\
Ctrl-D at the prompt quits like `quit`; input from a pipe may end without\n\
stopping the node.\n\n\
Example (three terminals):\n  dsys tokenring l1 --next l2\n  dsys tokenring l2 --next l3\n  dsys tokenring l3 --next l1\n\
then type `start` on one of them and `lock` / `unlock` anywhere."
)]
pub struct NodeArgs {
    /// This node's name in the machines file (asked for when omitted on a terminal)
    pub name: Option<String>,
    /// The next node in the ring (asked for when omitted on a terminal)
    #[arg(long)]
    pub next: Option<String>,
    /// JSON file {"name": "host:port", ...}; default ./machines.txt, else the built-in l1..l3 on 127.0.0.1
    #[arg(long, value_name = "FILE")]
    pub machines: Option<PathBuf>,
    /// How long a node keeps the token before passing it on (0ms for speed)
    #[arg(long, default_value = "1s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub hop_delay: Duration,
    /// Append a line to FILE on each critical-section entry: time, node, hop,
    /// and the fencing token (generation G@minter, lease round) with the lease's end
    #[arg(long, value_name = "FILE")]
    pub cs_log: Option<PathBuf>,
    /// Write events as JSON lines to FILE (for `dsys check tokenring`)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Do not print a `token N` line for every hop
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub auth: crate::net::auth::AuthArgs,
}

impl Run for NodeArgs {
    fn run(self) -> Outcome {
        block_on(run(self))??;
        Ok(crate::cli::Ended::Passed)
    }
}

fn commands() -> Commands<Cmd> {
    Commands::new()
        .simple(
            "start",
            "put a token in the ring (once, on one node)",
            || Cmd::Start,
        )
        .simple(
            "lock",
            "ask for the critical section; you get it when the token arrives",
            || Cmd::Lock,
        )
        .simple(
            "unlock",
            "leave the critical section and pass the token on",
            || Cmd::Unlock,
        )
        .simple(
            "status",
            "this node, the token, the ring and the links",
            || Cmd::Status,
        )
}

/// This node's name and its next's: from the flags, else asked on a terminal.
async fn resolve_names(
    a: &NodeArgs,
    c: &Cluster,
    input: &mut Stdin,
) -> Result<Option<(NodeId, NodeId)>, CliError> {
    let known = |n: &Option<String>| n.as_deref().map(|n| c.require(n)).transpose();
    let (me, next) = (known(&a.name)?, known(&a.next)?);
    if let (Some(m), Some(n)) = (me, next)
        && m == n
        && c.len() > 1
    {
        return Err(CliError::usage(format!(
            "--next {}: the next node must be another node than this one",
            c.name(n)
        )));
    }
    if (me.is_none() || next.is_none()) && !input.tty {
        return Err(CliError::usage(format!(
            "give this node's NAME and --next NAME (stdin is not a terminal, so I cannot ask); machines in {}: {}",
            c.source().display(),
            c.names().join(", ")
        )));
    }
    if me.is_none() || next.is_none() {
        println!(
            "machines in {}: {}",
            c.source().display(),
            c.names().join(", ")
        );
    }
    let me = match me {
        Some(m) => m,
        None => match ask_own_name(input, c).await {
            Asked::Answer(m) => m,
            Asked::End => {
                eprintln!("no name given: nothing started");
                return Ok(None);
            }
            Asked::Interrupted => return Ok(None),
        },
    };
    let not = (c.len() > 1).then_some((me, "the next node must be another node than this one"));
    let next = match next {
        Some(n) => n,
        None => match ask_node(input, c, "next node's name", not).await {
            Asked::Answer(n) => n,
            Asked::End => {
                eprintln!("no next node given: nothing started");
                return Ok(None);
            }
            Asked::Interrupted => return Ok(None),
        },
    };
    Ok(Some((me, next)))
}

/// Runs one interactive node until `quit`, Ctrl-D, Ctrl-C or SIGTERM.
async fn run(a: NodeArgs) -> Result<(), CliError> {
    let cluster = Arc::new(Cluster::from_flag(a.machines.as_deref(), "machines.txt")?);
    let mut input = Stdin::start();
    let Some((me, next)) = resolve_names(&a, &cluster, &mut input).await? else {
        return Ok(());
    };
    let mut cs_log = a.cs_log.as_deref().map(open_append).transpose()?;
    let console = Console::new();
    // The link table exists once the node is up; `status` shows it.
    let links: Arc<OnceLock<Arc<LinkTable>>> = Arc::new(OnceLock::new());
    let present = {
        let (c, console, links, quiet) = (cluster.clone(), console.clone(), links.clone(), a.quiet);
        let my_name = cluster.name(me).to_string();
        move |note: &Note, out: &mut dyn Write| {
            if let (
                Note::CsEnter {
                    hop,
                    generation,
                    round,
                    lease_left,
                },
                Some(f),
            ) = (note, cs_log.as_mut())
            {
                let now = std::time::SystemTime::now();
                let _ = writeln!(
                    f,
                    "{} {my_name} hop {hop} generation {} round {round} lease-until {}",
                    humantime::format_rfc3339_micros(now),
                    super::note::gen_str(&c, *generation),
                    humantime::format_rfc3339_micros(now + *lease_left),
                );
            }
            if quiet && matches!(note, Note::Token { .. }) {
                return;
            }
            if let Some(line) = note.line(&c) {
                console.line(out, &line);
            }
            if let Note::Status(st) = note {
                console.line(out, &links_line(&c, me, st, links.get()));
            }
        }
    };
    let timing = Timing {
        hop_delay: a.hop_delay,
        ..Timing::default()
    };
    let machine = TokenRing::new(me, next, cluster.len(), timing, Rng::from_os_rng());
    let session = Session::start(
        cluster.clone(),
        me,
        &a.auth,
        machine,
        a.events.as_ref(),
        present,
    )
    .await?;
    let _ = links.set(session.node.links.clone());
    println!(
        "{} listening on {}, next is {}. Type `help` for commands.",
        cluster.name(me),
        cluster.addr(me),
        cluster.name(next)
    );
    let table = commands();
    command_loop(&mut input, &table, async |cmd| session.command(cmd).await).await;
    session.stop().await;
    Ok(())
}

/// The links of this node's ring (before the ring is known: to `next`).
fn links_line(c: &Cluster, me: NodeId, st: &Status, links: Option<&Arc<LinkTable>>) -> String {
    let mut members: Vec<NodeId> = st.ring.iter().copied().filter(|&n| n != me).collect();
    if !members.contains(&st.next) && st.next != me {
        members.push(st.next);
    }
    let parts: Vec<String> = members
        .iter()
        .map(|&n| match links {
            Some(l) => format!("{} {}", c.name(n), l.get(n)),
            None => format!("{} not contacted yet", c.name(n)),
        })
        .collect();
    format!(
        "links: {}{}",
        if parts.is_empty() {
            "none (a ring of one)".to_string()
        } else {
            parts.join(", ")
        },
        links.map_or(String::new(), |l| l.refused_suffix())
    )
}
