//! openraft's async runtime for rzk: Tokio's, with one difference in sleeps.
//!
//! Tokio's timer has a resolution of one millisecond and rounds every deadline up to its next
//! tick, so even a 1 ns sleep lasts until the next millisecond boundary (0-1 ms, and longer
//! when the worker that drives the timer is busy). openraft sleeps that briefly on the write
//! path: its task that forwards log-flush completions to the Raft core waits "1 µs to batch"
//! whenever a completion is already there when it looks (the flusher finished the next sync
//! while the previous one was being handed on), which is common under load. With Tokio's timer
//! that wait cost up to a millisecond between a durable entry and its commit: it was the 1 ms
//! p99 of standalone writes at 8 sessions x 1 in flight (BENCHMARKS.md).
//!
//! Here a sleep whose deadline is less than [`SLEEP_AT_ONCE_BELOW`] away yields to the scheduler
//! once and completes (other ready tasks run in between, as after a sleep, without waiting for
//! the timer); anything longer (heartbeats, election timers, back-off) is Tokio's timer
//! unchanged. Tasks openraft spawns run in the replica's driver (`driver.rs`: one Tokio task
//! for all of them). Everything else (channels, timeouts) is openraft's Tokio runtime.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::Either;
use openraft::rt::{AsyncRuntime, Instant as _, OptionalSend};
use openraft_rt_tokio::{TokioInstant, TokioRuntime};

/// Sleeps shorter than this only yield once: Tokio would stretch them to its next 1 ms tick,
/// and openraft only asks for such short sleeps to batch what is already there.
pub const SLEEP_AT_ONCE_BELOW: Duration = Duration::from_micros(100);

/// A sleep: one yield (below [`SLEEP_AT_ONCE_BELOW`]) or Tokio's timer.
pub(crate) type RzkSleep = Either<YieldOnce, tokio::time::Sleep>;

/// Pending once (after asking to be polled again at once), then ready.
#[derive(Debug, Default)]
pub(crate) struct YieldOnce {
    yielded: bool,
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Tokio, with sub-resolution sleeps reduced to one yield (module docs).
#[derive(Debug)]
pub(crate) struct RzkRuntime(TokioRuntime);

fn sleep_for(duration: Duration) -> RzkSleep {
    if duration < SLEEP_AT_ONCE_BELOW {
        Either::Left(YieldOnce::default())
    } else {
        Either::Right(tokio::time::sleep(duration))
    }
}

impl AsyncRuntime for RzkRuntime {
    type JoinError = crate::driver::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = crate::driver::JoinHandle<T>;
    type Sleep = RzkSleep;
    type Instant = TokioInstant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = <TokioRuntime as AsyncRuntime>::ThreadLocalRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        crate::driver::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        sleep_for(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        sleep_for(deadline.saturating_duration_since(TokioInstant::now()))
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        TokioRuntime::thread_rng()
    }

    type Mpsc = <TokioRuntime as AsyncRuntime>::Mpsc;
    type Watch = <TokioRuntime as AsyncRuntime>::Watch;
    type Oneshot = <TokioRuntime as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::Mutex<T>;

    fn new(threads: usize) -> Self {
        RzkRuntime(TokioRuntime::new(threads))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.0.block_on(future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's short sleeps (one yield) never go through Tokio's timer, which would hold a
    /// 1 µs sleep until its next millisecond tick. Deterministic: on a paused clock, Tokio moves
    /// the clock to a timer's deadline once nothing else can run, so a sleep that waited for the
    /// timer moves the clock and one that did not leaves it where it was.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn short_sleeps_do_not_wait_for_tokios_timer() {
        let started = tokio::time::Instant::now();
        for _ in 0..50 {
            RzkRuntime::sleep_until(TokioInstant::now() + Duration::from_micros(1)).await;
            RzkRuntime::sleep(Duration::from_nanos(1)).await;
        }
        assert_eq!(
            tokio::time::Instant::now(),
            started,
            "a short sleep waited for Tokio's timer"
        );
        // The control: the same sleep on Tokio's runtime does wait for the timer.
        TokioRuntime::sleep_until(TokioInstant::now() + Duration::from_micros(1)).await;
        assert!(
            tokio::time::Instant::now() - started >= Duration::from_micros(1),
            "Tokio's 1 µs sleep did not move the paused clock"
        );
    }

    /// A short sleep still lets other ready tasks run, as a sleep does: on a one-thread runtime
    /// a task spawned before it has run when it returns.
    #[tokio::test(flavor = "current_thread")]
    async fn short_sleeps_yield_to_other_tasks() {
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let other = tokio::spawn(async move {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        RzkRuntime::sleep(Duration::from_nanos(1)).await;
        assert!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            "the spawned task ran during the short sleep"
        );
        other.await.expect("the spawned task ends");
    }

    #[tokio::test]
    async fn longer_sleeps_still_wait_their_time() {
        let started = std::time::Instant::now();
        RzkRuntime::sleep(Duration::from_millis(20)).await;
        RzkRuntime::sleep_until(TokioInstant::now() + Duration::from_millis(20)).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(40),
            "two 20 ms sleeps returned after {waited:?}"
        );
    }
}
