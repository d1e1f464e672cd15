//! An in-process transport: nodes of one test talk through channels, with
//! the same contract as the gRPC transport (FIFO per link, size limit,
//! bounded queues, link down/up reports, reconnect backoff) and the same
//! codec (every message is encoded and decoded on the way), but no sockets.
//! A test can kill a node, bring it back, and cut or heal links, then watch
//! the driver and the state machine react. (The idea is chitchat's
//! `ChannelTransport`; this one is ours.)

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::link::Backoff;
use super::{Inbound, LinkState, LinkTable, MAX_MESSAGE_BYTES, NetError, Transport, Wire};
use crate::config::{Cluster, NodeId};

struct Hub<M> {
    /// Each live node's inbox (None: the node is down).
    inboxes: Vec<Option<mpsc::Sender<Inbound<M>>>>,
    tables: Vec<Arc<LinkTable>>,
    /// Directed links that are cut.
    cut: BTreeSet<(NodeId, NodeId)>,
}

/// The network all channel transports of one test share.
pub struct ChannelNet<M> {
    cluster: Arc<Cluster>,
    hub: Arc<Mutex<Hub<M>>>,
    capacity: usize,
}

impl<M> Clone for ChannelNet<M> {
    fn clone(&self) -> Self {
        ChannelNet {
            cluster: self.cluster.clone(),
            hub: self.hub.clone(),
            capacity: self.capacity,
        }
    }
}

impl<M: Wire> ChannelNet<M> {
    /// A network for the nodes of `cluster`, each inbox holding `capacity`.
    pub fn new(cluster: Arc<Cluster>, capacity: usize) -> Self {
        let n = cluster.len();
        ChannelNet {
            hub: Arc::new(Mutex::new(Hub {
                inboxes: (0..n).map(|_| None).collect(),
                tables: (0..n).map(|_| Arc::new(LinkTable::new(n))).collect(),
                cut: BTreeSet::new(),
            })),
            cluster,
            capacity,
        }
    }

    /// Node `me` comes up (again): its transport and its inbox.
    pub fn join(
        &self,
        me: NodeId,
    ) -> (
        ChannelTransport<M>,
        mpsc::Receiver<Inbound<M>>,
        Arc<LinkTable>,
    ) {
        let (tx, rx) = mpsc::channel(self.capacity);
        let table = Arc::new(LinkTable::new(self.cluster.len()));
        if let Ok(mut hub) = self.hub.lock() {
            hub.inboxes[me.index()] = Some(tx);
            hub.tables[me.index()] = table.clone();
        }
        let links = (0..self.cluster.len())
            .map(|_| Backoff::default())
            .collect();
        (
            ChannelTransport {
                net: self.clone(),
                me,
                backoff: links,
                buf: Vec::new(),
            },
            rx,
            table,
        )
    }

    /// Node `node` dies: messages to it are lost, senders hear "link down".
    pub fn kill(&self, node: NodeId) {
        if let Ok(mut hub) = self.hub.lock() {
            hub.inboxes[node.index()] = None;
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        if let Ok(mut hub) = self.hub.lock() {
            hub.cut.insert((a, b));
            hub.cut.insert((b, a));
        }
    }

    pub fn heal(&self, a: NodeId, b: NodeId) {
        if let Ok(mut hub) = self.hub.lock() {
            hub.cut.remove(&(a, b));
            hub.cut.remove(&(b, a));
        }
    }

    /// Puts `msg` into `to`'s inbox as if `from` had sent it (for tests
    /// that flood a node); false when the inbox is full or gone.
    pub fn inject(&self, from: NodeId, to: NodeId, msg: M) -> bool {
        let tx = self
            .hub
            .lock()
            .ok()
            .and_then(|h| h.inboxes[to.index()].clone());
        tx.is_some_and(|tx| tx.try_send(Inbound::Msg { from, msg }).is_ok())
    }
}

/// One node's end of a [`ChannelNet`].
pub struct ChannelTransport<M> {
    net: ChannelNet<M>,
    me: NodeId,
    backoff: Vec<Backoff>,
    buf: Vec<u8>,
}

impl<M: Wire> ChannelTransport<M> {
    /// Reports a link change to this node (its own inbox), once per change.
    fn mark(&self, hub: &Hub<M>, peer: NodeId, up: bool) {
        let new = if up { LinkState::Up } else { LinkState::Down };
        if hub.tables[self.me.index()].set(peer, new) != new
            && let Some(me) = &hub.inboxes[self.me.index()]
        {
            let _ = me.try_send(Inbound::Link { peer, up });
        }
    }
}

impl<M: Wire> Transport<M> for ChannelTransport<M> {
    fn send(&mut self, to: NodeId, msg: &M) -> Result<(), NetError> {
        let cluster = self.net.cluster.clone();
        self.buf.clear();
        msg.encode(&cluster, &mut self.buf);
        if self.buf.len() > MAX_MESSAGE_BYTES {
            return Err(NetError::TooLarge {
                to: cluster.name(to).to_string(),
                kind: msg.kind(),
                size: self.buf.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let hub = self.net.hub.clone();
        let Ok(hub) = hub.lock() else { return Ok(()) };
        let now = Instant::now();
        let heard = hub.tables[self.me.index()].take_heard_from(to);
        if !self.backoff[to.index()].may_try(now, heard) {
            return Ok(()); // backing off: the peer is down, the message lost
        }
        let target = hub.inboxes[to.index()]
            .clone()
            .filter(|_| !hub.cut.contains(&(self.me, to)));
        let Some(target) = target else {
            self.backoff[to.index()].failed(now);
            self.mark(&hub, to, false);
            return Ok(());
        };
        self.backoff[to.index()].succeeded();
        self.mark(&hub, to, true);
        let msg = match M::decode(&self.buf, &cluster) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "a message did not survive its own codec");
                return Ok(());
            }
        };
        hub.tables[to.index()].heard_from(self.me);
        if target
            .try_send(Inbound::Msg { from: self.me, msg })
            .is_err()
        {
            // The peer's inbox is full: like a gRPC link whose queue
            // overflowed, the link resets.
            self.backoff[to.index()].failed(now);
            self.mark(&hub, to, false);
            return Err(NetError::Overflow {
                to: cluster.name(to).to_string(),
                queued: self.net.capacity,
            });
        }
        Ok(())
    }
}
