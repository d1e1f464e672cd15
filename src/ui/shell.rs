//! The command loop every interactive node runs, and a running node's
//! session (transport, driver, output thread) from start to a clean stop.
//!
//! One behaviour everywhere: on a terminal, Ctrl-D at the command prompt
//! quits like `quit` (at a question it only ends the question); Ctrl-C and
//! SIGTERM quit too. When input comes from a pipe, its end does not stop
//! the node (a script may start a node and let it run); Ctrl-C or SIGTERM
//! do. A node never keeps running on a terminal while ignoring it.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use super::commands::{Commands, Parsed};
use super::input::{Input, MAX_LINE, Stdin};
use crate::cli::{CliError, open_events};
use crate::config::{Cluster, NodeId};
use crate::driver::{self, Running};
use crate::net::auth::AuthArgs;
use crate::node::Protocol;
use crate::output::{Output, Present};

/// Why the command loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Quit,
    /// Ctrl-D on a terminal.
    EndOfInput,
    Interrupted,
    Terminated,
}

/// SIGTERM as a future (never, where there are no signals).
pub struct Term {
    #[cfg(unix)]
    sig: Option<tokio::signal::unix::Signal>,
}

impl Term {
    pub fn new() -> Term {
        Term {
            #[cfg(unix)]
            sig: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.sig {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    }
}

impl Default for Term {
    fn default() -> Self {
        Term::new()
    }
}

/// Reads commands until the user leaves; `handle` carries each one out.
pub async fn command_loop<C>(
    input: &mut Stdin,
    table: &Commands<C>,
    mut handle: impl AsyncFnMut(C),
) -> Ended {
    let mut term = Term::new();
    loop {
        let got = tokio::select! {
            i = input.next() => i,
            _ = tokio::signal::ctrl_c() => return Ended::Interrupted,
            _ = term.recv() => return Ended::Terminated,
        };
        match got {
            Input::Line(line) => match table.parse(&line) {
                Parsed::Empty => {}
                Parsed::Run(cmd) => {
                    tokio::select! {
                        _ = handle(cmd) => {}
                        _ = tokio::signal::ctrl_c() => return Ended::Interrupted,
                        _ = term.recv() => return Ended::Terminated,
                    }
                }
                Parsed::Help => println!("{}", table.help()),
                Parsed::Quit => return Ended::Quit,
                Parsed::Error(e) => println!("{e}"),
            },
            Input::NotUtf8 => println!("that line is not valid UTF-8 text: ignored"),
            Input::TooLong(n) => {
                println!("that line is {n} bytes (the most is {MAX_LINE}): ignored")
            }
            Input::End if input.tty => return Ended::EndOfInput,
            Input::End => {
                eprintln!("(end of input: this node keeps running; Ctrl-C or SIGTERM stops it)");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return Ended::Interrupted,
                    _ = term.recv() => return Ended::Terminated,
                }
            }
        }
    }
}

/// A node running on the gRPC transport, as an interactive command runs it.
pub struct Session<P: Protocol> {
    pub cluster: Arc<Cluster>,
    pub me: NodeId,
    pub node: Running<P>,
    stop: watch::Sender<bool>,
}

impl<P: Protocol> Session<P> {
    /// Finds the node's cookie and certificates (`auth`), opens the event
    /// log, starts the output thread and the node.
    pub async fn start(
        cluster: Arc<Cluster>,
        me: NodeId,
        auth: &AuthArgs,
        machine: P,
        events: Option<&PathBuf>,
        present: impl Present<P::Note>,
    ) -> Result<Session<P>, CliError> {
        let auth = auth.load(&cluster, me)?;
        let events = open_events(events)?;
        let output = Output::start(cluster.clone(), me, events, present);
        let (stop, stop_rx) = watch::channel(false);
        let node = driver::launch(machine, cluster.clone(), me, auth, output, stop_rx).await?;
        Ok(Session {
            cluster,
            me,
            node,
            stop,
        })
    }

    /// Sends a command to the node (waits while the node is not taking any).
    pub async fn command(&self, cmd: P::Cmd) {
        let _ = self.node.commands.send(cmd).await;
    }

    /// Stops the node gracefully (its last words, then its links), waits
    /// for its output to be written, and says so.
    pub async fn stop(self) -> Option<P> {
        let _ = self.stop.send(true);
        let machine = self.node.task.await.ok();
        eprintln!("{} stopped", self.cluster.name(self.me));
        machine
    }
}
