//! What a node writes, written off its protocol task.
//!
//! The driver hands each batch of notes (and `send` records) to a writer
//! thread through a bounded queue and never waits for it: a slow terminal,
//! pipe or disk cannot stall a node. The writer thread, for each batch,
//! first writes its events to the event log (one `write`, so they are in
//! the OS's hands and survive a `kill -9`), then lets the presenter show
//! the batch (console lines, the critical-section log, a UI's channel), so
//! the event log is always at least as complete as what a person saw.
//!
//! Waking a sleeping thread is expensive (on a VM, an inter-processor
//! interrupt per wake), so the writer is woken at once only for notes a
//! person may be waiting for; routine ones (a token passing by) wake it at
//! most every [`ROUTINE_DELAY`], batched.
//!
//! When the queue is full (the writer is far behind), the driver drops the
//! batch and counts it; the next batch that gets through starts with an
//! `events_lost` event, and the presenter is told how many notes it missed.

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Cluster, NodeId};
use crate::events::{Common, EventLog};
use crate::node::Note;

/// Items (notes, sends) waiting for the writer thread, at most: bursts of
/// a busy node (a chat delivering 100,000 messages a second) fit, a reader
/// that stops reading for good costs at most this much memory.
pub const QUEUE_ITEMS: usize = 250_000;
/// How long routine notes may wait before the writer is woken for them.
pub const ROUTINE_DELAY: Duration = Duration::from_millis(5);

/// One thing the driver reports.
pub enum Item<N> {
    Note {
        t_us: u64,
        note: N,
    },
    Send {
        t_us: u64,
        to: NodeId,
        kind: &'static str,
    },
    Common {
        t_us: u64,
        event: Common,
    },
    /// `count` items never reached the writer (its queue was full).
    Lost {
        t_us: u64,
        count: u64,
    },
}

thread_local! {
    static NOTE_TIME: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// While a presenter shows a note: when the note happened (wall-clock µs),
/// which may be a moment before it is shown. 0 outside a presenter.
pub fn note_time() -> u64 {
    NOTE_TIME.get()
}

/// Shows notes to whoever watches this node. Runs on the writer thread;
/// `out` is the process's stdout, flushed after each batch.
pub trait Present<N>: Send + 'static {
    fn note(&mut self, note: &N, out: &mut dyn Write);
    /// `count` notes were lost before they could be shown.
    fn lost(&mut self, count: u64, out: &mut dyn Write) {
        let _ = writeln!(
            out,
            "({count} lines not shown: output could not keep up with this node)"
        );
    }
}

impl<N, F: FnMut(&N, &mut dyn Write) + Send + 'static> Present<N> for F {
    fn note(&mut self, note: &N, out: &mut dyn Write) {
        self(note, out)
    }
}

struct Queue<N> {
    batches: VecDeque<Vec<Item<N>>>,
    items: usize,
    asleep: bool,
    closed: bool,
}

struct Shared<N> {
    queue: Mutex<Queue<N>>,
    wake: Condvar,
}

/// The driver's end: collects a batch, hands it over without waiting.
pub struct Output<N> {
    shared: Option<Arc<Shared<N>>>,
    batch: Vec<Item<N>>,
    /// When the first item of the current batch came.
    since: Option<Instant>,
    /// The batch holds a note somebody may be waiting for.
    urgent: bool,
    /// The writer sleeps on routine batches; wake it by then.
    wake_at: Option<Instant>,
    lost: u64,
    thread: Option<JoinHandle<()>>,
    records_events: bool,
}

impl<N: Note> Output<N> {
    /// Starts the writer thread for node `me`: its events (if any) go to
    /// `events`, its notes to `present`.
    pub fn start(
        cluster: Arc<Cluster>,
        me: NodeId,
        events: Option<EventLog>,
        present: impl Present<N>,
    ) -> Output<N> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                batches: VecDeque::new(),
                items: 0,
                asleep: false,
                closed: false,
            }),
            wake: Condvar::new(),
        });
        let records_events = events.is_some();
        let name = cluster.name(me).to_string();
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("output-{name}"))
            .spawn(move || writer(theirs, cluster, name, events, present))
            .ok();
        Output {
            shared: thread.as_ref().map(|_| shared),
            batch: Vec::with_capacity(64),
            since: None,
            urgent: false,
            wake_at: None,
            lost: 0,
            thread,
            records_events,
        }
    }

    /// An output that goes nowhere.
    pub fn discard() -> Output<N> {
        Output {
            shared: None,
            batch: Vec::new(),
            since: None,
            urgent: false,
            wake_at: None,
            lost: 0,
            thread: None,
            records_events: false,
        }
    }

    /// Whether an event log is being written (else `send` records are
    /// not worth collecting).
    pub fn records_events(&self) -> bool {
        self.records_events
    }

    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    pub fn push(&mut self, item: Item<N>) {
        if self.shared.is_none() {
            return;
        }
        if self.batch.is_empty() {
            self.since = Some(Instant::now());
        }
        if let Item::Note { note, .. } = &item {
            self.urgent |= !note.routine();
        }
        self.batch.push(item);
    }

    /// Should a busy driver hand the batch over anyway? (It is big, or has
    /// waited long enough that a person would notice.)
    pub fn due(&self) -> bool {
        self.batch.len() >= 256 || self.since.is_some_and(|t| t.elapsed() >= ROUTINE_DELAY * 2)
    }

    /// When the driver must [`Output::poke`] the writer (routine batches
    /// wait for it).
    pub fn wake_at(&self) -> Option<Instant> {
        self.wake_at
    }

    /// Wakes the writer if routine batches have waited long enough.
    pub fn poke(&mut self) {
        if self.wake_at.is_some_and(|t| Instant::now() >= t) {
            self.wake_at = None;
            if let Some(s) = &self.shared {
                s.wake.notify_one();
            }
        }
    }

    /// Hands the batch to the writer thread (waking it if someone may be
    /// waiting for what it holds), or counts it lost.
    pub fn flush(&mut self, t_us: u64) {
        let Some(shared) = &self.shared else { return };
        if self.batch.is_empty() {
            return;
        }
        self.since = None;
        let urgent = std::mem::take(&mut self.urgent);
        let mut batch = std::mem::replace(&mut self.batch, Vec::with_capacity(64));
        let n = batch.len() as u64;
        let Ok(mut q) = shared.queue.lock() else {
            self.lost += n;
            return;
        };
        if q.items + batch.len() > QUEUE_ITEMS {
            self.lost += n;
            return;
        }
        if self.lost > 0 {
            batch.insert(
                0,
                Item::Lost {
                    t_us,
                    count: self.lost,
                },
            );
            self.lost = 0;
        }
        q.items += batch.len();
        q.batches.push_back(batch);
        let asleep = q.asleep;
        drop(q);
        if asleep {
            if urgent {
                self.wake_at = None;
                shared.wake.notify_one();
            } else if self.wake_at.is_none() {
                self.wake_at = Some(Instant::now() + ROUTINE_DELAY);
            }
        }
    }

    /// Flushes, stops the writer thread and waits for it to finish writing.
    pub fn close(mut self, t_us: u64) {
        self.flush(t_us);
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(s) = self.shared.take() {
            if let Ok(mut q) = s.queue.lock() {
                q.closed = true;
            }
            s.wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<N> Drop for Output<N> {
    fn drop(&mut self) {
        if let Some(s) = self.shared.take() {
            if let Ok(mut q) = s.queue.lock() {
                q.closed = true;
            }
            s.wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The next batches to write (up to 64 at once); `None` once closed and
/// drained.
fn take<N>(shared: &Shared<N>) -> Option<Vec<Vec<Item<N>>>> {
    let mut q = shared.queue.lock().ok()?;
    loop {
        if !q.batches.is_empty() {
            let n = q.batches.len().min(64);
            let taken: Vec<Vec<Item<N>>> = q.batches.drain(..n).collect();
            q.items -= taken.iter().map(Vec::len).sum::<usize>();
            return Some(taken);
        }
        if q.closed {
            return None;
        }
        q.asleep = true;
        q = shared.wake.wait(q).ok()?;
        q.asleep = false;
    }
}

fn writer<N: Note>(
    shared: Arc<Shared<N>>,
    cluster: Arc<Cluster>,
    name: String,
    mut events: Option<EventLog>,
    mut present: impl Present<N>,
) {
    // Only what a presenter writes reaches stdout, in one write per batch
    // (a presenter feeding a UI writes nothing here).
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout());
    while let Some(batches) = take(&shared) {
        if let Some(log) = &mut events {
            let mut ok = Ok(());
            for item in batches.iter().flatten() {
                ok = ok.and_then(|_| match item {
                    Item::Note { t_us, note } => match note.event(&cluster) {
                        Some(ev) => log.write(*t_us, &name, &ev),
                        None => Ok(()),
                    },
                    Item::Send { t_us, to, kind } => log.write(
                        *t_us,
                        &name,
                        &Common::Send {
                            to: cluster.name(*to).to_string(),
                            kind: (*kind).to_string(),
                        },
                    ),
                    Item::Common { t_us, event } => log.write(*t_us, &name, event),
                    Item::Lost { t_us, count } => {
                        log.write(*t_us, &name, &Common::EventsLost { count: *count })
                    }
                });
            }
            if let Err(e) = ok.and_then(|_| log.flush()) {
                tracing::error!(error = %e, "cannot write the event log; events stop here");
                events = None;
            }
        }
        for item in batches.iter().flatten() {
            match item {
                Item::Note { note, t_us } => {
                    NOTE_TIME.set(*t_us);
                    present.note(note, &mut out);
                    NOTE_TIME.set(0);
                }
                Item::Lost { count, .. } => present.lost(*count, &mut out),
                _ => {}
            }
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "event")]
    enum Ev {
        N {
            i: u64,
        },
        #[serde(other, skip_serializing)]
        Other,
    }

    #[derive(Clone, Debug)]
    struct N(u64);

    impl Note for N {
        type Event = Ev;
        fn event(&self, _: &Cluster) -> Option<Ev> {
            Some(Ev::N { i: self.0 })
        }
        fn line(&self, _: &Cluster) -> Option<String> {
            None
        }
    }

    #[test]
    fn a_burst_of_small_batches_reaches_a_slow_reader_whole_and_in_order() {
        let c = Arc::new(Cluster::loopback(1, 40000));
        let (tx, rx) = std::sync::mpsc::channel();
        let present = move |n: &N, _: &mut dyn Write| {
            std::thread::sleep(Duration::from_micros(20));
            let _ = tx.send(n.0);
        };
        let mut out = Output::start(c, NodeId(0), None, present);
        // One note per batch, as a driver flushing on every idle moment makes.
        for i in 0..5_000 {
            out.push(Item::Note {
                t_us: i,
                note: N(i),
            });
            out.flush(i);
        }
        out.close(0);
        let got: Vec<u64> = rx.iter().collect();
        assert_eq!(got, (0..5_000).collect::<Vec<_>>());
    }

    #[test]
    fn events_reach_the_log_before_the_presenter_shows_them() {
        let dir = std::env::temp_dir().join(format!("dsys-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("e.jsonl");
        let _ = std::fs::remove_file(&path);
        let c = Arc::new(Cluster::loopback(1, 40000));
        let check = path.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        // When a note is shown, its event is in the file already.
        let present = move |n: &N, _: &mut dyn Write| {
            let text = std::fs::read_to_string(&check).unwrap_or_default();
            let _ = tx.send(text.contains(&format!("\"i\":{}", n.0)));
        };
        let log = EventLog::create(&path).unwrap();
        let mut out = Output::start(c, NodeId(0), Some(log), present);
        for i in 0..50 {
            out.push(Item::Note {
                t_us: i,
                note: N(i),
            });
            out.flush(i);
        }
        out.close(0);
        let seen: Vec<bool> = rx.iter().collect();
        assert_eq!(seen.len(), 50);
        assert!(seen.iter().all(|&b| b), "{seen:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
