//! Starting a real token-ring node: the state machine on the driver.
//! Used by the interactive `dsys tokenring` and by `dsys demo tokenring`.

use std::sync::Arc;

use rand::SeedableRng;
use tokio::sync::watch;

use super::{Note, Timing, TokenRing};
use crate::config::Cluster;
use crate::driver::{self, Sink};
use crate::events::EventLog;
use crate::net::NetError;
use crate::node::{NodeId, Rng};

pub type Running = driver::Running<TokenRing>;

pub struct Launch {
    pub cluster: Arc<Cluster>,
    pub me: NodeId,
    pub next: NodeId,
    pub timing: Timing,
    pub events: Option<EventLog>,
    pub sink: Sink<Note>,
    pub shutdown: watch::Receiver<bool>,
}

/// Binds the node's address and starts it; fails only if it cannot listen.
pub async fn launch(l: Launch) -> Result<Running, NetError> {
    let machine = TokenRing::new(l.me, l.next, l.cluster.len(), l.timing, Rng::from_os_rng());
    driver::launch(machine, l.cluster, l.me, l.sink, l.events, l.shutdown).await
}
