//! The driver on the in-process channel transport: no sockets, real tokio
//! time. Messages keep their order, links go down and come back (after the
//! backoff), a stopping node gets its last words out, and a flooded inbox
//! cannot starve timers: the token ring's lease still expires on time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use dsys::config::{Cluster, NodeId};
use dsys::driver::{Running, launch_on};
use dsys::net::channel::ChannelNet;
use dsys::net::{DecodeError, Wire};
use dsys::node::{Note, Out, Protocol, Rng};
use dsys::output::Output;

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);
const C: NodeId = NodeId(2);

/// A protocol small enough to read: `Send(n)` sends `Num(n)` to B; B
/// remembers what arrived; links and timers are reported.
#[derive(Clone, Debug, PartialEq)]
struct Num(u64);

impl Wire for Num {
    const ALGORITHM: &'static str = "test";
    fn kind(&self) -> &'static str {
        "num"
    }
    fn encode(&self, _: &Cluster, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.0.to_le_bytes());
    }
    fn decode(bytes: &[u8], _: &Cluster) -> Result<Self, DecodeError> {
        let b: [u8; 8] = bytes.try_into().map_err(|_| DecodeError::Empty)?;
        Ok(Num(u64::from_le_bytes(b)))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event")]
enum Ev {
    #[serde(other, skip_serializing)]
    Other,
}

#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Got(u64),
    Link(NodeId, bool),
    Timer,
    Stopping,
}

impl Note for Seen {
    type Event = Ev;
    fn event(&self, _: &Cluster) -> Option<Ev> {
        None
    }
    fn line(&self, _: &Cluster) -> Option<String> {
        None
    }
}

enum Cmd {
    Send(NodeId, u64),
    Timer(Duration),
    /// From now on, each message takes this long to handle (a busy node).
    Slow(Duration),
}

#[derive(Default)]
struct Test {
    work: Duration,
}

impl Protocol for Test {
    type Msg = Num;
    type Timer = ();
    type Cmd = Cmd;
    type Note = Seen;
    fn on_start(&mut self, _: &mut Out<Self>) {}
    fn on_message(&mut self, _: NodeId, m: Num, out: &mut Out<Self>) {
        let t = Instant::now();
        while t.elapsed() < self.work {
            std::hint::spin_loop();
        }
        out.note(Seen::Got(m.0));
    }
    fn on_timer(&mut self, _: (), out: &mut Out<Self>) {
        out.note(Seen::Timer);
    }
    fn on_command(&mut self, c: Cmd, out: &mut Out<Self>) {
        match c {
            Cmd::Send(to, n) => out.send(to, Num(n)),
            Cmd::Timer(after) => out.timer(after, ()),
            Cmd::Slow(d) => self.work = d,
        }
    }
    fn on_link(&mut self, peer: NodeId, up: bool, out: &mut Out<Self>) {
        out.note(Seen::Link(peer, up));
    }
    fn on_stop(&mut self, out: &mut Out<Self>) {
        out.note(Seen::Stopping);
        out.send(B, Num(999));
    }
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("cmd")
    }
}

struct Node<P: Protocol> {
    running: Running<P>,
    stop: watch::Sender<bool>,
    seen: std_mpsc::Receiver<(Instant, P::Note)>,
}

fn start<P: Protocol>(
    net: &ChannelNet<P::Msg>,
    c: &Arc<Cluster>,
    me: NodeId,
    machine: P,
) -> Node<P> {
    let (transport, inbox, links) = net.join(me);
    let (tx, seen) = std_mpsc::channel();
    let present = move |n: &P::Note, _: &mut dyn std::io::Write| {
        let _ = tx.send((Instant::now(), n.clone()));
    };
    let output = Output::start(c.clone(), me, None, present);
    let (stop, stop_rx) = watch::channel(false);
    let (net_stop, _) = watch::channel(false);
    let running = launch_on(
        machine,
        c.clone(),
        me,
        transport,
        inbox,
        links,
        output,
        stop_rx,
        net_stop,
    );
    Node {
        running,
        stop,
        seen,
    }
}

/// Waits (real time) for a note matching `pred`; returns when it was seen.
fn wait_for<N: std::fmt::Debug>(
    n: &std_mpsc::Receiver<(Instant, N)>,
    secs: u64,
    pred: impl Fn(&N) -> bool,
) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match n.recv_timeout(left) {
            Ok((t, note)) if pred(&note) => return t,
            Ok(_) => {}
            Err(_) => panic!("no matching note within {secs}s"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn messages_arrive_in_order_and_links_go_down_and_come_back_after_the_backoff() {
    let rt = runtime();
    rt.block_on(async {
        let c = Arc::new(Cluster::loopback(2, 40000));
        let net = ChannelNet::new(c.clone(), 1024);
        let a = start(&net, &c, A, Test::default());
        let mut b = start(&net, &c, B, Test::default());
        for i in 0..500 {
            a.running.commands.send(Cmd::Send(B, i)).await.unwrap();
        }
        let got: Vec<u64> = (0..500)
            .map(|_| {
                loop {
                    if let Ok((_, Seen::Got(n))) = b.seen.recv_timeout(Duration::from_secs(5)) {
                        break n;
                    }
                }
            })
            .collect();
        assert_eq!(got, (0..500).collect::<Vec<_>>(), "in order, nothing lost");
        wait_for(&a.seen, 5, |n| *n == Seen::Link(B, true));

        // B dies: A's next message is lost and A hears the link went down.
        net.kill(B);
        b.running.task.abort();
        a.running.commands.send(Cmd::Send(B, 1000)).await.unwrap();
        wait_for(&a.seen, 5, |n| *n == Seen::Link(B, false));
        // B is back; a message sent within the backoff is dropped without a
        // new try, the next one after it gets through and the link is up.
        b = start(&net, &c, B, Test::default());
        a.running.commands.send(Cmd::Send(B, 1001)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        a.running.commands.send(Cmd::Send(B, 1002)).await.unwrap();
        wait_for(&a.seen, 5, |n| *n == Seen::Link(B, true));
        let first = wait_for(&b.seen, 5, |n| matches!(n, Seen::Got(_)));
        let _ = first;
        assert!(
            !b.seen.try_iter().any(|(_, n)| n == Seen::Got(1001)),
            "the message sent during the backoff was dropped"
        );

        // A stops: its last words (sent in on_stop) still arrive.
        let _ = a.stop.send(true);
        let _ = a.running.task.await;
        wait_for(&b.seen, 5, |n| *n == Seen::Got(999));
        let _ = b.stop.send(true);
    });
}

#[test]
fn a_flooded_inbox_does_not_starve_timers() {
    let rt = runtime();
    rt.block_on(async {
        let c = Arc::new(Cluster::loopback(2, 40000));
        let net = ChannelNet::new(c.clone(), 1024);
        let a = start(&net, &c, A, Test::default());
        a.running
            .commands
            .send(Cmd::Slow(Duration::from_micros(50)))
            .await
            .unwrap();
        let flooding = Arc::new(AtomicBool::new(true));
        let flooder = {
            let (net, flooding) = (net.clone(), flooding.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while flooding.load(Ordering::Relaxed) {
                    if !net.inject(B, A, Num(n)) {
                        std::thread::yield_now();
                    }
                    n += 1;
                }
            })
        };
        // Let the flood fill the inbox, then ask for a timer.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let asked = Instant::now();
        a.running
            .commands
            .send(Cmd::Timer(Duration::from_millis(50)))
            .await
            .unwrap();
        let fired = wait_for(&a.seen, 10, |n| *n == Seen::Timer);
        let still_flooding = flooding.load(Ordering::Relaxed);
        flooding.store(false, Ordering::Relaxed);
        let _ = flooder.join();
        assert!(still_flooding);
        assert!(
            fired.duration_since(asked) < Duration::from_secs(2),
            "the timer fired {:?} after it was set, during the flood",
            fired.duration_since(asked)
        );
        let _ = a.stop.send(true);
    });
}

/// Any protocol, made to spend `work` on every message (a busy node).
struct Slowed<P> {
    inner: P,
    work: Duration,
}

impl<P: Protocol> Slowed<P> {
    fn pass(&mut self, out: &mut Out<Self>, f: impl FnOnce(&mut P, &mut Out<P>)) {
        let mut inner = Out::new(out.now());
        f(&mut self.inner, &mut inner);
        for e in inner.drain() {
            match e {
                dsys::node::Effect::Send { to, msg } => out.send(to, msg),
                dsys::node::Effect::Timer { after, timer } => out.timer(after, timer),
                dsys::node::Effect::Note(n) => out.note(n),
            }
        }
    }
}

impl<P: Protocol> Protocol for Slowed<P> {
    type Msg = P::Msg;
    type Timer = P::Timer;
    type Cmd = P::Cmd;
    type Note = P::Note;
    fn on_start(&mut self, out: &mut Out<Self>) {
        self.pass(out, |m, o| m.on_start(o));
    }
    fn on_message(&mut self, from: NodeId, msg: P::Msg, out: &mut Out<Self>) {
        let t = Instant::now();
        while t.elapsed() < self.work {
            std::hint::spin_loop();
        }
        self.pass(out, |m, o| m.on_message(from, msg, o));
    }
    fn on_timer(&mut self, timer: P::Timer, out: &mut Out<Self>) {
        self.pass(out, |m, o| m.on_timer(timer, o));
    }
    fn on_command(&mut self, cmd: P::Cmd, out: &mut Out<Self>) {
        self.pass(out, |m, o| m.on_command(cmd, o));
    }
    fn on_link(&mut self, peer: NodeId, up: bool, out: &mut Out<Self>) {
        self.pass(out, |m, o| m.on_link(peer, up, o));
    }
}

#[test]
fn a_lease_holder_cut_off_under_a_flood_still_leaves_when_its_lease_ends() {
    use dsys::tokenring::{Cmd as TrCmd, Msg, Note as TrNote, Timing, Token, TokenRing};
    let rt = runtime();
    rt.block_on(async {
        let c = Arc::new(Cluster::loopback(3, 40000));
        let net: ChannelNet<Msg> = ChannelNet::new(c.clone(), 4096);
        let timing = Timing {
            hop_delay: Duration::from_millis(20),
            lease: Duration::from_millis(800),
            ..Timing::default()
        };
        let nodes: Vec<Node<Slowed<TokenRing>>> = [A, B, C]
            .into_iter()
            .map(|id| {
                let m = TokenRing::new(
                    id,
                    NodeId((id.0 + 1) % 3),
                    3,
                    timing.clone(),
                    Rng::seed_from_u64(id.0 as u64),
                );
                let work = if id == A {
                    Duration::from_micros(20)
                } else {
                    Duration::ZERO
                };
                start(&net, &c, id, Slowed { inner: m, work })
            })
            .collect();
        // Past the quiet period in which fresh nodes grant no lease.
        tokio::time::sleep(Duration::from_millis(900)).await;
        nodes[0].running.commands.send(TrCmd::Start).await.unwrap();
        nodes[0].running.commands.send(TrCmd::Lock).await.unwrap();
        wait_for(&nodes[0].seen, 10, |n| matches!(n, TrNote::CsEnter { .. }));
        // A is cut off from the others (it cannot renew), and its inbox is
        // flooded with stale beacons.
        net.cut(A, B);
        net.cut(A, C);
        let cut_at = Instant::now();
        let flooding = Arc::new(AtomicBool::new(true));
        let flooder = {
            let (net, flooding) = (net.clone(), flooding.clone());
            std::thread::spawn(move || {
                let stale = Msg::Beacon(Token {
                    generation: dsys::tokenring::Gen {
                        counter: 0,
                        minter: B,
                    },
                    hop: 0,
                    ring: vec![A, B, C],
                });
                while flooding.load(Ordering::Relaxed) {
                    if !net.inject(B, A, stale.clone()) {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let lost = wait_for(&nodes[0].seen, 10, |n| matches!(n, TrNote::CsLost { .. }));
        let still_flooding = flooding.load(Ordering::Relaxed);
        flooding.store(false, Ordering::Relaxed);
        let _ = flooder.join();
        assert!(still_flooding, "the lease ended while the flood went on");
        // The lease runs at most `lease` from its last renewal, which came
        // before the cut; allow a little for scheduling.
        let after = lost.duration_since(cut_at);
        assert!(
            after < Duration::from_millis(800 + 300),
            "left {after:?} after the cut"
        );
        for n in &nodes {
            let _ = n.stop.send(true);
        }
    });
}
