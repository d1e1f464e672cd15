//! `dsys mutex`: one interactive Ricart–Agrawala node. Prints every step of
//! a request, and appends critical-section entries to `--cs-log`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use rand::SeedableRng;

use super::{Cmd, Mutex, Note, Timing};
use crate::cli::{CliError, Outcome, block_on, open_append};
use crate::config::{Cluster, NodeId};
use crate::net::LinkTable;
use crate::node::{Note as _, Rng};
use crate::tool::Run;
use crate::ui::commands::Commands;
use crate::ui::console::Console;
use crate::ui::input::Stdin;
use crate::ui::prompt::own_name;
use crate::ui::shell::{Session, command_loop};

#[derive(Args, Debug)]
#[command(
    after_help = "Commands: lock, unlock, status, auto [MEAN], auto off, help, quit.\n\
`lock` prints each step: the request and its timestamp, each reply, entry.\n\
Ctrl-D at the prompt quits like `quit`; quitting inside the critical section\n\
leaves it and answers the deferred requests first.\n\n\
Example (three terminals):\n  dsys mutex l1\n  dsys mutex l2\n  dsys mutex l3\n\
then `lock` on two of them at once: the smaller (timestamp, name) goes first."
)]
pub struct NodeArgs {
    /// This node's name in the machines file (asked for when omitted on a terminal)
    pub name: Option<String>,
    /// JSON file {"name": "host:port", ...}; default ./machines.txt, else the built-in l1..l3 on 127.0.0.1
    #[arg(long, value_name = "FILE")]
    pub machines: Option<PathBuf>,
    /// Append a line (time, node, request timestamp) to FILE on each
    /// critical-section entry (several nodes may share it)
    #[arg(long, value_name = "FILE")]
    pub cs_log: Option<PathBuf>,
    /// How long `auto` stays in the critical section
    #[arg(long, default_value = "100ms", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub hold: Duration,
    /// Keep permissions between entries until someone asks for them back
    /// (Roucairol-Carvalho): repeated entries by one node cost no messages
    #[arg(long)]
    pub reuse_permissions: bool,
    /// Write events as JSON lines to FILE (for `dsys check mutex`)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Print only entries, exits and problems, not every request and reply
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
            "lock",
            "ask every other node; enter when all have replied",
            || Cmd::Lock,
        )
        .simple(
            "unlock",
            "leave the critical section (or withdraw the request) and answer the deferred",
            || Cmd::Unlock,
        )
        .simple(
            "status",
            "state, Lamport clock, replies awaited, requests deferred, links",
            || Cmd::Status,
        )
        .with(
            "auto",
            "[MEAN]|off",
            "lock at random times (mean MEAN, default 1s), hold for --hold, unlock",
            |rest| match rest {
                "off" => Ok(Cmd::Auto(None)),
                "" => Ok(Cmd::Auto(Some(Duration::from_secs(1)))),
                m => crate::duration::parse(m)
                    .map(|d| Cmd::Auto(Some(d)))
                    .map_err(|_| format!("`auto {m}`: {m:?} is not a mean time between locks")),
            },
        )
}

/// Runs one interactive node until `quit`, Ctrl-D, Ctrl-C or SIGTERM.
async fn run(a: NodeArgs) -> Result<(), CliError> {
    let cluster = Arc::new(Cluster::from_flag(a.machines.as_deref(), "machines.txt")?);
    let mut input = Stdin::start();
    let Some(me) = own_name(&mut input, &cluster, a.name.as_deref(), "machines").await? else {
        return Ok(());
    };
    let mut cs_log = a.cs_log.as_deref().map(open_append).transpose()?;
    let console = Console::new();
    // The link table exists once the node is up; `status` shows it.
    let links: Arc<OnceLock<Arc<LinkTable>>> = Arc::new(OnceLock::new());
    let present = {
        let (c, console, quiet, links) = (cluster.clone(), console.clone(), a.quiet, links.clone());
        let my_name = cluster.name(me).to_string();
        move |note: &Note, out: &mut dyn Write| {
            if let (Note::CsEnter { ts, .. }, Some(f)) = (note, cs_log.as_mut()) {
                let now = humantime::format_rfc3339_micros(SystemTime::now());
                let _ = writeln!(f, "{now} {my_name} ts {ts}");
            }
            let step = matches!(
                note,
                Note::Requested { .. }
                    | Note::ReplyReceived { .. }
                    | Note::ReplySent { .. }
                    | Note::Deferred { .. }
                    | Note::AskedAgain { .. }
            );
            if quiet && step {
                return;
            }
            if let Some(line) = note.line(&c) {
                console.line(out, &line);
            }
            if let Note::Status(_) = note {
                let parts: Vec<String> = c
                    .ids()
                    .filter(|&n| n != me)
                    .map(|n| match links.get() {
                        Some(l) => format!("{} {}", c.name(n), l.get(n)),
                        None => format!("{} not contacted yet", c.name(n)),
                    })
                    .collect();
                let refused = links.get().map_or(String::new(), |l| l.refused_suffix());
                console.line(out, &format!("links: {}{refused}", parts.join(", ")));
            }
        }
    };
    let timing = Timing {
        hold: a.hold,
        ..Timing::default()
    };
    let incarnation = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let machine = Mutex::new(
        me,
        cluster.len(),
        a.reuse_permissions,
        incarnation,
        timing,
        Rng::from_os_rng(),
    );
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
        "{} listening on {}; {} other node(s): {}. Permissions {}. Type `help` for commands.",
        cluster.name(me),
        cluster.addr(me),
        cluster.len() - 1,
        others(&cluster, me),
        if a.reuse_permissions {
            "are reused (--reuse-permissions)"
        } else {
            "are asked for on every entry"
        }
    );
    let table = commands();
    command_loop(&mut input, &table, async |cmd| session.command(cmd).await).await;
    session.stop().await;
    Ok(())
}

fn others(c: &Cluster, me: NodeId) -> String {
    c.ids()
        .filter(|&n| n != me)
        .map(|n| c.name(n).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
