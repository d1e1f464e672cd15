//! Questions at the prompt, answered on stdin: the question stays until
//! the answer is valid (a bad one gets a message and the question again).
//! Ctrl-D ends the question (the caller decides what that means: usually,
//! stop asking); Ctrl-C is reported too, so the caller can shut down cleanly.

use std::io::Write;

use super::input::{Input, MAX_LINE, Stdin};
use crate::config::{Cluster, NodeId};

pub enum Asked<T> {
    Answer(T),
    /// Ctrl-D (or the end of a pipe).
    End,
    /// Ctrl-C.
    Interrupted,
}

/// Asks `question` until `check` accepts the (trimmed) answer.
pub async fn ask<T>(
    input: &mut Stdin,
    question: &str,
    check: impl Fn(&str) -> Result<T, String>,
) -> Asked<T> {
    loop {
        print!("{question}: ");
        let _ = std::io::stdout().flush();
        let got = tokio::select! {
            i = input.next() => i,
            _ = tokio::signal::ctrl_c() => {
                println!();
                return Asked::Interrupted;
            }
        };
        match got {
            Input::Line(l) => match check(l.trim()) {
                Ok(v) => return Asked::Answer(v),
                Err(msg) => println!("{msg}"),
            },
            Input::End => {
                println!();
                return Asked::End;
            }
            Input::NotUtf8 => println!("that answer is not valid UTF-8 text; try again"),
            Input::TooLong(n) => {
                println!("that answer is {n} bytes (the most is {MAX_LINE}); try again")
            }
        }
    }
}

/// Asks for a node of `cluster` (not `not`, if given).
pub async fn ask_node(
    input: &mut Stdin,
    cluster: &Cluster,
    question: &str,
    not: Option<(NodeId, &str)>,
) -> Asked<NodeId> {
    ask(input, question, |a| node_answer(cluster, a, not)).await
}

/// Asks for this node's own name: a node of `cluster` whose port is free
/// here (a busy port gets a message and the question again, instead of a
/// node that exits after its name was typed).
pub async fn ask_own_name(input: &mut Stdin, cluster: &Cluster) -> Asked<NodeId> {
    ask(input, "this node's name", |a| own_name_answer(cluster, a)).await
}

/// Checks an answer naming this node: a known node whose address can be
/// listened on.
pub fn own_name_answer(cluster: &Cluster, a: &str) -> Result<NodeId, String> {
    let id = node_answer(cluster, a, None)?;
    let addr = cluster.addr(id);
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(format!(
            "{a}'s address {addr} is in use (is another node already running as {a}?); pick another name"
        )),
        Err(e) => Err(format!(
            "cannot listen on {a}'s address {addr}: {e}; pick another name"
        )),
    }
}

/// Checks an answer naming a node.
pub fn node_answer(
    cluster: &Cluster,
    a: &str,
    not: Option<(NodeId, &str)>,
) -> Result<NodeId, String> {
    match cluster.id(a) {
        None if a.is_empty() => Err(format!("type one of: {}", cluster.names().join(", "))),
        None => Err(format!(
            "{a:?} is not a machine in {}; pick one of: {}",
            cluster.source().display(),
            cluster.names().join(", ")
        )),
        Some(id) => match not {
            Some((n, why)) if n == id => Err(why.to_string()),
            _ => Ok(id),
        },
    }
}

/// This node's name: `given` (checked against `cluster`), else asked for on
/// a terminal (listing the `what`, "machines" or "members"). `Ok(None)`:
/// the user ended the question, so nothing starts. Without a terminal and
/// without a name it is a usage error that lists the names.
pub async fn own_name(
    input: &mut Stdin,
    cluster: &Cluster,
    given: Option<&str>,
    what: &str,
) -> Result<Option<NodeId>, crate::cli::CliError> {
    if let Some(n) = given {
        return Ok(Some(cluster.require(n)?));
    }
    let list = format!(
        "{what} in {}: {}",
        cluster.source().display(),
        cluster.names().join(", ")
    );
    if !input.tty {
        return Err(crate::cli::CliError::usage(format!(
            "give this node's NAME (stdin is not a terminal, so I cannot ask); {list}"
        )));
    }
    println!("{list}");
    match ask_own_name(input, cluster).await {
        Asked::Answer(m) => Ok(Some(m)),
        Asked::End => {
            eprintln!("no name given: nothing started");
            Ok(None)
        }
        Asked::Interrupted => Ok(None),
    }
}
