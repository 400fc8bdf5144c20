//! Many creates or deletes as pipelined multi batches: key-space setup, `--populate`, and the
//! cleanup after a run. Workers (clients x in-flight) take the next batch from a shared
//! counter, so a slow connection does not hold the others back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rzk_client::{Client, ClientError, ErrorCode, MultiResult, Request, Response};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::stats::error_kind;

/// Builds the request for item `index` of a batched job.
pub type BuildRequest = Arc<dyn Fn(u64) -> Request + Send + Sync>;

/// One batched job: `total` items, `batch` per multi, each item's request from `build`.
/// An item failing with `tolerate` (NodeExists for creates, NoNode for deletes) counts as done:
/// such a batch is retried item by item, because one failed op aborts the whole multi.
pub struct BatchJob {
    pub total: u64,
    pub batch: u64,
    pub build: BuildRequest,
    pub tolerate: Option<ErrorCode>,
    pub request_timeout: Duration,
}

#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Items that succeeded or failed with the tolerated code.
    pub done: u64,
    /// Of `done`, those that failed with the tolerated code (already there, already gone).
    pub tolerated: u64,
    pub errors: BTreeMap<String, u64>,
}

impl BatchOutcome {
    fn add(&mut self, other: BatchOutcome) {
        self.done += other.done;
        self.tolerated += other.tolerated;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_insert(0) += count;
        }
    }

    fn error(&mut self, kind: String, items: u64) {
        *self.errors.entry(kind).or_insert(0) += items;
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Run `job` over `clients` with `inflight` batches in flight per client. Stops early (with
/// what is done so far) when `stop` turns true. `progress` counts items finished.
pub async fn run_batches(
    job: Arc<BatchJob>,
    clients: &[Arc<Client>],
    inflight: u32,
    stop: &watch::Receiver<bool>,
    progress: Arc<AtomicU64>,
) -> BatchOutcome {
    assert!(job.batch > 0, "a batch holds at least one item");
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for client in clients {
        for _ in 0..inflight {
            let (job, client, next, stop, progress) = (
                job.clone(),
                client.clone(),
                next.clone(),
                stop.clone(),
                progress.clone(),
            );
            workers.spawn(async move {
                let mut outcome = BatchOutcome::default();
                loop {
                    let start = next.fetch_add(job.batch, Ordering::Relaxed);
                    if start >= job.total || *stop.borrow() || !client.is_alive() {
                        break;
                    }
                    let end = (start + job.batch).min(job.total);
                    outcome.add(run_one_batch(&job, &client, start, end).await);
                    progress.fetch_add(end - start, Ordering::Relaxed);
                }
                outcome
            });
        }
    }
    let mut total = BatchOutcome::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(outcome) => total.add(outcome),
            Err(error) => total.error(format!("worker task failed: {error}"), 1),
        }
    }
    total
}

/// Items `start..end` as one multi (or one plain request for a single item).
async fn run_one_batch(job: &BatchJob, client: &Client, start: u64, end: u64) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let items = end - start;
    if items == 1 {
        return run_items_singly(job, client, start, end).await;
    }
    let ops: Vec<Request> = (start..end).map(|index| (job.build)(index)).collect();
    let reply =
        tokio::time::timeout(job.request_timeout, client.request(Request::Multi(ops))).await;
    match reply {
        Ok(Ok(Response::Multi(results))) => match first_failure(&results) {
            None => outcome.done += items,
            Some(code) if Some(code) == job.tolerate => {
                return run_items_singly(job, client, start, end).await;
            }
            Some(code) => outcome.error(format!("{code:?}"), items),
        },
        Ok(Ok(other)) => outcome.error(format!("unexpected multi reply {other:?}"), items),
        Ok(Err(error)) => outcome.error(error_kind(&error), items),
        Err(_) => outcome.error("Timeout".to_owned(), items),
    }
    outcome
}

async fn run_items_singly(job: &BatchJob, client: &Client, start: u64, end: u64) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    for index in start..end {
        let reply =
            tokio::time::timeout(job.request_timeout, client.request((job.build)(index))).await;
        match reply {
            Ok(Ok(_)) => outcome.done += 1,
            Ok(Err(ClientError::Keeper(code))) if Some(code) == job.tolerate => {
                outcome.done += 1;
                outcome.tolerated += 1;
            }
            Ok(Err(error)) => outcome.error(error_kind(&error), 1),
            Err(_) => outcome.error("Timeout".to_owned(), 1),
        }
    }
    outcome
}

/// The code of the op that failed a multi. Ops before it answer 0 and ops after it
/// RuntimeInconsistency, so the first non-zero code is the cause.
fn first_failure(results: &[MultiResult]) -> Option<ErrorCode> {
    results.iter().find_map(|result| match result {
        MultiResult::Error { err } if *err != 0 => {
            Some(ErrorCode::from_i32(*err).unwrap_or(ErrorCode::SystemError))
        }
        _ => None,
    })
}
