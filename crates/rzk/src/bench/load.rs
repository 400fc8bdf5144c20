//! The measured phase: `clients x inflight` request slots, each a loop that sends one
//! request and waits for its reply, so every session has exactly `inflight` requests
//! pipelined. A completion counts when it lands inside the measured window (after warmup,
//! before the end or Ctrl-C); connection losses count whenever they happen, so a session that
//! died during warmup is not hidden.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rzk_client::{Client, ClientError, EventType};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::stats::{error_kind, ClientStats};
use super::workload::{self, Op, Rng};

/// What the slots need to know; shared read-only.
pub struct LoadPlan {
    pub op: Op,
    pub prefix: String,
    pub keys: u64,
    pub read_percent: u8,
    pub data: Vec<u8>,
    pub inflight: u32,
    pub request_timeout: Duration,
}

/// The window, fixed before the slots start. `finished` turns true at the end of the window
/// (or on Ctrl-C): slots then send nothing more and stop counting.
pub struct Window {
    pub measure_start: Instant,
    pub finished: AtomicBool,
    /// Completions of any kind, warmup included: what the progress bar shows.
    pub completed: Arc<AtomicU64>,
}

impl Window {
    fn counts(&self, at: Instant) -> bool {
        at >= self.measure_start && !self.finished.load(Ordering::Relaxed)
    }
}

/// What one slot did: for create, how many names it used (for cleanup).
pub struct SlotResult {
    pub client: u32,
    pub slot: u32,
    pub names_used: u64,
}

/// Spawn every slot of the run onto `tasks`.
pub fn spawn_slots(
    plan: &Arc<LoadPlan>,
    window: &Arc<Window>,
    clients: &[Arc<Client>],
    stats: &[Arc<ClientStats>],
    tasks: &mut JoinSet<SlotResult>,
    dispatchers: &mut JoinSet<()>,
) {
    let mut watch_routes = if plan.op == Op::Watch {
        watch_dispatchers(plan, clients, dispatchers)
    } else {
        Vec::new()
    };
    for (index, client) in clients.iter().enumerate() {
        let client_index = u32::try_from(index).expect("client count is bounded by CLIENTS_MAX");
        for slot in 0..plan.inflight {
            let context = SlotContext {
                plan: plan.clone(),
                window: window.clone(),
                stats: stats[index].clone(),
                client: client.clone(),
                client_index,
                slot,
            };
            if plan.op == Op::Watch {
                // The next session writes, so notification crosses sessions when there are several.
                let writer = clients[(index + 1) % clients.len()].clone();
                let events = watch_routes[index]
                    .remove(&workload::watch_path(&plan.prefix, client_index, slot))
                    .expect("a route per watch slot");
                tasks.spawn(watch_slot(context, writer, events));
            } else {
                tasks.spawn(request_slot(context));
            }
        }
    }
}

struct SlotContext {
    plan: Arc<LoadPlan>,
    window: Arc<Window>,
    stats: Arc<ClientStats>,
    client: Arc<Client>,
    client_index: u32,
    slot: u32,
}

impl SlotContext {
    fn running(&self) -> bool {
        !self.window.finished.load(Ordering::Relaxed)
    }

    /// Count a failed request; true when the session is gone and the slot should end.
    fn failed(&self, error: Result<ClientError, &str>, at: Instant) -> bool {
        let (kind, lost) = match error {
            Ok(error) => (
                error_kind(&error),
                matches!(error, ClientError::ConnectionLost { .. }),
            ),
            Err(kind) => (kind.to_owned(), false),
        };
        if lost || self.window.counts(at) {
            self.stats.record_error(kind);
        }
        lost
    }

    fn result(&self, names_used: u64) -> SlotResult {
        SlotResult {
            client: self.client_index,
            slot: self.slot,
            names_used,
        }
    }
}

/// create, set, get, exists, mixed: one request at a time, back to back.
async fn request_slot(context: SlotContext) -> SlotResult {
    let plan = &context.plan;
    let mut rng = Rng::new(context.client_index, context.slot);
    let mut sequence = 0u64;
    // One timer per slot, moved only when it fires before the request in flight is due:
    // arming a timer for every request cost the client more than the request's own work.
    let deadline = tokio::time::sleep(plan.request_timeout);
    tokio::pin!(deadline);
    while context.running() {
        let request = if plan.op == Op::Create {
            let path =
                workload::create_path(&plan.prefix, context.client_index, context.slot, sequence);
            sequence += 1;
            workload::create_request(path, &plan.data)
        } else {
            let (keys, read_percent) = (plan.keys, plan.read_percent);
            workload::key_space_request(
                plan.op,
                &mut rng,
                &plan.prefix,
                keys,
                read_percent,
                &plan.data,
            )
        };
        let write = request.is_write();
        let sent = Instant::now();
        let reply = {
            let reply = context.client.request(request);
            tokio::pin!(reply);
            loop {
                tokio::select! {
                    biased;
                    reply = &mut reply => break Ok(reply),
                    () = &mut deadline => {
                        let due = sent + plan.request_timeout;
                        if Instant::now() >= due {
                            break Err(());
                        }
                        deadline.as_mut().reset(tokio::time::Instant::from_std(due));
                    }
                }
            }
        };
        let done = Instant::now();
        context.window.completed.fetch_add(1, Ordering::Relaxed);
        let lost = match reply {
            Ok(Ok(_)) => {
                if context.window.counts(done) {
                    context.stats.record_latency_of(done - sent, write);
                }
                false
            }
            Ok(Err(error)) => context.failed(Ok(error), done),
            Err(_) => context.failed(Err("Timeout"), done),
        };
        if lost {
            break;
        }
    }
    context.result(sequence)
}

/// One notification per round: arm a data watch (getData, watch=true) on this slot's znode
/// from its own session, setData it from `writer`, and time from sending the setData until
/// the NodeDataChanged event reaches the watcher.
async fn watch_slot(
    context: SlotContext,
    writer: Arc<Client>,
    mut events: mpsc::Receiver<Instant>,
) -> SlotResult {
    let plan = &context.plan;
    let path = workload::watch_path(&plan.prefix, context.client_index, context.slot);
    let timeout = plan.request_timeout;
    while context.running() {
        // An event that arrived after an earlier timeout belongs to an earlier round.
        while events.try_recv().is_ok() {}
        let armed = tokio::time::timeout(
            timeout,
            context
                .client
                .request(workload::get_request(path.clone(), true)),
        )
        .await;
        let failure = match armed {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(Ok(error)),
            Err(_) => Some(Err("Timeout")),
        };
        if let Some(error) = failure {
            if context.failed(error, Instant::now()) {
                break;
            }
            continue;
        }
        let sent = Instant::now();
        let write = tokio::time::timeout(
            timeout,
            writer.request(workload::set_request(path.clone(), &plan.data)),
        )
        .await;
        let failure = match write {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(Ok(error)),
            Err(_) => Some(Err("Timeout")),
        };
        if let Some(error) = failure {
            if context.failed(error, Instant::now()) {
                break;
            }
            continue;
        }
        let remaining = timeout.saturating_sub(sent.elapsed());
        match tokio::time::timeout(remaining, events.recv()).await {
            Ok(Some(arrived)) => {
                context.window.completed.fetch_add(1, Ordering::Relaxed);
                if context.window.counts(arrived) {
                    context
                        .stats
                        .record_latency(arrived.saturating_duration_since(sent));
                }
            }
            // The watcher's session ended: its dispatcher is gone.
            Ok(None) => {
                context.failed(Err("ConnectionLost"), Instant::now());
                break;
            }
            Err(_) => {
                context.failed(Err("WatchTimeout"), Instant::now());
            }
        }
    }
    context.result(0)
}

/// Per client, a task that reads its events and hands each NodeDataChanged to the slot
/// watching that path, stamped with its arrival time. Returns each client's routes. The
/// tasks run until their client closes; the caller aborts them after the slots end.
fn watch_dispatchers(
    plan: &LoadPlan,
    clients: &[Arc<Client>],
    tasks: &mut JoinSet<()>,
) -> Vec<HashMap<String, mpsc::Receiver<Instant>>> {
    /// Events buffered per slot; a slot has at most one watch armed, so one is enough, and
    /// a few spare absorb late events after a timeout.
    const SLOT_EVENTS_MAX: usize = 4;
    let mut receivers = Vec::with_capacity(clients.len());
    for (index, client) in clients.iter().enumerate() {
        let client_index = u32::try_from(index).expect("client count is bounded by CLIENTS_MAX");
        let mut senders = HashMap::new();
        let mut routes = HashMap::new();
        for slot in 0..plan.inflight {
            let path = workload::watch_path(&plan.prefix, client_index, slot);
            let (sender, receiver) = mpsc::channel(SLOT_EVENTS_MAX);
            senders.insert(path.clone(), sender);
            routes.insert(path, receiver);
        }
        let Some(mut events) = client.take_events() else {
            panic!("the event receiver of client {index} was already taken");
        };
        tasks.spawn(async move {
            while let Some(event) = events.recv().await {
                let arrived = Instant::now();
                if event.event_type != EventType::NodeDataChanged {
                    continue;
                }
                if let Some(sender) = event.path.as_ref().and_then(|path| senders.get(path)) {
                    // A full route means a slot gave up on earlier events: drop this one.
                    let _ = sender.try_send(arrived);
                }
            }
        });
        receivers.push(routes);
    }
    receivers
}

/// Wait until `stop` turns true; never returns if its sender is gone without stopping.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
