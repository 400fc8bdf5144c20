//! openraft's tasks run as one Tokio task: the driver.
//!
//! A write passes through five of openraft's hand-offs between its tasks: the connection's
//! reader hands the entry to the Raft core, the core appends it, the log's flush completion goes
//! to openraft's completion forwarder, the forwarder tells the core, the core hands the committed
//! entry to the state-machine task, which applies it and wakes the connection's writer. Tokio's
//! multi-threaded scheduler runs a woken task next on the same worker (its LIFO slot) at most
//! three times in a row; the fourth goes to the worker's queue, and Tokio wakes an idle worker to
//! take it. So every lone write crossed to another thread, and the reply was sent from there:
//! one sleeping thread woken per write. On the Intel Xeon benchmark machine a create at 1 x 1 spent
//! 90-176 µs beyond its fsync before this module, 49-68 µs after (BENCHMARKS.md, "One session's
//! synchronous write: one thread").
//!
//! Here every task openraft spawns (its core, the forwarder, the state-machine worker, the
//! replication streams of a leader) is a future inside one Tokio task, polled by a
//! [`FuturesUnordered`]. A wake between them while the driver polls only marks the driver to go
//! round again; it does not reschedule the driver through Tokio. A lone write is then three
//! Tokio tasks on one worker: the reader, the driver, the writer.
//!
//! What it costs: openraft's tasks no longer run on two workers at once. Throughput at 64
//! sessions x 32 in flight did not move beyond noise: the work that scales with load (socket
//! reads and writes, reads of the tree, encoding, the log's sync) runs outside them.
//!
//! Limits: the driver goes round at most [`ROUNDS_PER_POLL_MAX`] times per poll, and stops early
//! once its tasks used up Tokio's budget for the poll; then it yields to Tokio, so a busy Raft
//! core cannot starve the worker's other tasks. A spawn outside any driver (openraft's API called
//! from a plain Tokio task) is a plain Tokio task.

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::task::AtomicWaker;
use futures::{FutureExt, StreamExt};
use tokio::sync::oneshot;

/// Rounds over the ready tasks in one poll of the driver before it yields to Tokio.
pub(crate) const ROUNDS_PER_POLL_MAX: usize = 32;

/// The driver's Tokio task is not being polled: a wake must go to Tokio.
const IDLE: u8 = 0;
/// The driver is polling its tasks: a wake only asks for another round.
const POLLING: u8 = 1;
/// The driver is polling and a task was woken meanwhile: go round again before returning.
const POLLING_WOKEN: u8 = 2;

thread_local! {
    /// The driver whose tasks (or whose [`Driver::enter`] future) this thread is polling.
    static CURRENT: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

struct Shared {
    /// Futures spawned since the driver last looked.
    spawned: Mutex<Vec<BoxFuture<'static, ()>>>,
    /// The Tokio task's waker.
    task: AtomicWaker,
    /// [`IDLE`], [`POLLING`] or [`POLLING_WOKEN`].
    state: AtomicU8,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => {
                    self.task.wake();
                    return;
                }
                POLLING => POLLING_WOKEN,
                _ => return,
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
    }
}

/// Sets [`CURRENT`] for the duration of a poll, and restores the previous value after it, even
/// when the poll panics.
struct CurrentGuard(Option<Arc<Shared>>);

impl CurrentGuard {
    fn set(shared: &Arc<Shared>) -> CurrentGuard {
        CurrentGuard(CURRENT.with(|current| current.replace(Some(shared.clone()))))
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// A handle on a driver: spawn into it, or run a future so that what it spawns goes into it.
pub(crate) struct Driver {
    shared: Arc<Shared>,
}

impl Driver {
    /// Start a driver as a Tokio task on the current runtime. It runs until aborted (its tasks
    /// are dropped with it).
    pub(crate) fn start() -> (Driver, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Shared {
            spawned: Mutex::new(Vec::new()),
            task: AtomicWaker::new(),
            state: AtomicU8::new(IDLE),
        });
        let driver = Driver {
            shared: shared.clone(),
        };
        let mut tasks = FuturesUnordered::new();
        // The tasks' wakes go to the driver's state first (made once, not per poll).
        let waker = Waker::from(shared.clone());
        let handle = tokio::spawn(std::future::poll_fn(move |cx| {
            poll_tasks(&shared, &waker, &mut tasks, cx)
        }));
        (driver, handle)
    }

    /// Spawn `future` into this driver.
    #[cfg(test)]
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let _current = CurrentGuard::set(&self.shared);
        spawn(future)
    }

    /// Poll `future` with this driver current: what it spawns runs in the driver.
    pub(crate) fn enter<F: Future>(&self, future: F) -> Enter<F> {
        Enter {
            shared: self.shared.clone(),
            future: Box::pin(future),
        }
    }
}

/// [`Driver::enter`]'s future.
pub(crate) struct Enter<F> {
    shared: Arc<Shared>,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Enter<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _current = CurrentGuard::set(&self.shared);
        self.future.as_mut().poll(cx)
    }
}

fn poll_tasks(
    shared: &Arc<Shared>,
    waker: &Waker,
    tasks: &mut FuturesUnordered<BoxFuture<'static, ()>>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    shared.task.register(cx.waker());
    let mut inner = Context::from_waker(waker);
    let _current = CurrentGuard::set(shared);
    for _ in 0..ROUNDS_PER_POLL_MAX {
        shared.state.store(POLLING, Ordering::Release);
        tasks.extend(
            shared
                .spawned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .drain(..),
        );
        // Every ready task once (FuturesUnordered stops after as many polls as it has tasks,
        // and wakes us to go on, which is another round here).
        while let Poll::Ready(Some(())) = tasks.poll_next_unpin(&mut inner) {}
        if shared
            .state
            .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Poll::Pending;
        }
        if !tokio::task::coop::has_budget_remaining() {
            // The tasks' channel operations used up this poll's Tokio budget: they only say
            // Pending until Tokio polls the driver again.
            break;
        }
    }
    // Still busy: let the worker's other tasks run, then come back.
    shared.state.store(IDLE, Ordering::Release);
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// Why a task did not return.
#[derive(Debug)]
pub enum JoinError {
    /// A task of the driver panicked.
    Panicked,
    /// The driver ended (the replica stopped) before the task finished.
    Dropped,
    /// A task spawned outside any driver, as a plain Tokio task, failed.
    Tokio(tokio::task::JoinError),
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::Panicked => write!(f, "the Raft task panicked"),
            JoinError::Dropped => write!(f, "the Raft task was dropped with its replica"),
            JoinError::Tokio(error) => write!(f, "{error}"),
        }
    }
}

impl JoinError {
    pub(crate) fn is_panic(&self) -> bool {
        match self {
            JoinError::Panicked => true,
            JoinError::Dropped => false,
            JoinError::Tokio(error) => error.is_panic(),
        }
    }
}

/// A spawned task's outcome. Dropping it detaches the task, as Tokio's does.
pub enum JoinHandle<T> {
    Driver(oneshot::Receiver<std::thread::Result<T>>),
    Tokio(tokio::task::JoinHandle<T>),
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            JoinHandle::Driver(receiver) => receiver.poll_unpin(cx).map(|outcome| match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(_panic)) => Err(JoinError::Panicked),
                Err(_) => Err(JoinError::Dropped),
            }),
            JoinHandle::Tokio(handle) => handle.poll_unpin(cx).map_err(JoinError::Tokio),
        }
    }
}

/// Spawn into the current driver, or as a Tokio task when no driver is current.
pub(crate) fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let Some(shared) = CURRENT.with(|current| current.borrow().clone()) else {
        return JoinHandle::Tokio(tokio::spawn(future));
    };
    let (sender, receiver) = oneshot::channel();
    let task = async move {
        let outcome = AssertUnwindSafe(future).catch_unwind().await;
        let _ = sender.send(outcome);
    };
    shared
        .spawned
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(task.boxed());
    shared.wake_by_ref();
    JoinHandle::Driver(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Tasks spawned inside the driver run in it, hand work to each other through channels, and
    /// their results come back through their handles.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tasks_spawned_in_the_driver_run_and_return() {
        let (driver, task) = Driver::start();
        let (to_second, mut from_first) = tokio::sync::mpsc::channel::<u64>(1);
        let run = driver.enter(async move {
            let second = spawn(async move {
                let mut sum = 0;
                while let Some(n) = from_first.recv().await {
                    sum += n;
                }
                sum
            });
            let first = spawn(async move {
                for n in 1..=1000 {
                    to_second.send(n).await.expect("the second task receives");
                }
            });
            assert!(matches!(first, JoinHandle::Driver(_)));
            first.await.expect("the first task returns");
            second.await.expect("the second task returns")
        });
        let sum = tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .expect("1,000 messages between two tasks of the driver within 60 s");
        assert_eq!(sum, 500_500);
        task.abort();
    }

    /// A wake from another thread while the driver is idle reaches Tokio: a task waiting for a
    /// message sent from a plain thread still runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wake_from_another_thread_runs_the_task() {
        let (driver, task) = Driver::start();
        let (sender, receiver) = oneshot::channel::<u32>();
        let (waiting, task_waits) = oneshot::channel::<()>();
        let handle = driver.spawn(async move {
            let _ = waiting.send(());
            receiver.await
        });
        task_waits.await.expect("the task started");
        let sent = std::thread::spawn(move || sender.send(7));
        sent.join().expect("the sending thread").expect("sent");
        let received = tokio::time::timeout(std::time::Duration::from_secs(10), handle)
            .await
            .expect("the task woken from another thread ran within 10 s");
        assert_eq!(received.expect("returned").expect("received"), 7);
        task.abort();
    }

    /// Wakes from another worker race with the driver going idle; none may be lost. A task in
    /// the driver and a Tokio task (on either of two workers) pass a token back and forth; a lost
    /// wake would leave both waiting, which the timeout turns into a failure.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_pong_with_a_task_outside_loses_no_wake() {
        const ROUND_TRIPS: u32 = 20_000;
        let (driver, task) = Driver::start();
        let (to_driver, mut in_driver) = tokio::sync::mpsc::channel::<u32>(1);
        let (to_outside, mut outside) = tokio::sync::mpsc::channel::<u32>(1);
        let echo = driver.spawn(async move {
            while let Some(n) = in_driver.recv().await {
                if to_outside.send(n + 1).await.is_err() {
                    break;
                }
            }
        });
        let rounds = tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..ROUND_TRIPS {
                to_driver.send(n).await.expect("the driver's task receives");
                n = outside.recv().await.expect("the driver's task answers");
            }
            n
        });
        let n = tokio::time::timeout(std::time::Duration::from_secs(60), rounds)
            .await
            .expect("20,000 round trips within 60 s (a lost wake stalls them)")
            .expect("the outside task returns");
        assert_eq!(n, ROUND_TRIPS);
        echo.await
            .expect("the driver's task ends when its channel closes");
        task.abort();
    }

    /// A panicking task is reported as a panic through its handle; the driver goes on.
    #[tokio::test]
    async fn a_panic_is_reported_and_the_driver_goes_on() {
        let (driver, task) = Driver::start();
        let panicked = driver.spawn(async { panic!("on purpose") });
        let error = panicked.await.expect_err("the task panicked");
        assert!(error.is_panic(), "{error}");
        let after = driver.spawn(async { 5 });
        assert_eq!(after.await.expect("the driver still runs tasks"), 5);
        task.abort();
    }

    /// Without a driver, spawn is Tokio's.
    #[tokio::test]
    async fn outside_a_driver_spawn_is_tokios() {
        let handle = spawn(async { 3 });
        assert!(matches!(handle, JoinHandle::Tokio(_)));
        assert_eq!(handle.await.expect("returned"), 3);
    }

    /// A task that never stops being ready does not hold the worker: the driver yields after
    /// its rounds, so another task on a one-thread runtime still runs. The runtime runs on a
    /// thread of its own, so that a driver that never yields fails the test instead of hanging
    /// it.
    #[test]
    fn a_busy_task_does_not_starve_the_worker() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let (driver, task) = Driver::start();
                let polls = Arc::new(AtomicUsize::new(0));
                let counted = polls.clone();
                let _busy = driver.spawn(std::future::poll_fn(move |cx| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    cx.waker().wake_by_ref();
                    Poll::<()>::Pending
                }));
                let other = tokio::spawn(async { 1 });
                let _ = other.await;
                let _ = done.send(polls.load(Ordering::Relaxed));
                task.abort();
            });
        });
        let polls = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("another task ran within 10 s beside a busy driver");
        assert!(
            polls >= ROUNDS_PER_POLL_MAX,
            "the busy task ran {polls} times"
        );
    }
}
