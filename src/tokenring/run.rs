//! Starting a real token-ring node: transport + driver + state machine.
//! Used by the interactive `dsys tokenring` and by `dsys demo tokenring`.

use std::sync::Arc;

use rand::SeedableRng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Cmd, Note, Timing, TokenRing};
use crate::config::Cluster;
use crate::driver::{self, NodeRun, Sink};
use crate::events::EventLog;
use crate::net::{LinkTable, NetError, Transport};
use crate::node::{NodeId, Rng};

pub struct Launch {
    pub cluster: Arc<Cluster>,
    pub me: NodeId,
    pub next: NodeId,
    pub timing: Timing,
    pub events: Option<EventLog>,
    pub sink: Sink<Note>,
    pub shutdown: watch::Receiver<bool>,
}

pub struct Running {
    pub commands: mpsc::UnboundedSender<Cmd>,
    pub links: Arc<LinkTable>,
    pub task: JoinHandle<TokenRing>,
}

/// Binds the node's address and starts it; fails only if it cannot listen.
pub async fn launch(l: Launch) -> Result<Running, NetError> {
    let (transport, inbox) = Transport::bind(l.cluster.clone(), l.me, l.shutdown.clone()).await?;
    let links = transport.links();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let machine = TokenRing::new(l.me, l.next, l.cluster.len(), l.timing, Rng::from_os_rng());
    let task = tokio::spawn(driver::run(NodeRun {
        machine,
        me: l.me,
        cluster: l.cluster,
        transport,
        inbox,
        commands: command_rx,
        sink: l.sink,
        events: l.events,
        shutdown: l.shutdown,
    }));
    Ok(Running {
        commands,
        links,
        task,
    })
}
