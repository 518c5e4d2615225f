//! A monotonically rising offset that tasks of one shard can wait on: the commit log's durable
//! end is one. Single-threaded (`Cell`/`RefCell`), so it never leaves its shard.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed;

#[derive(Default)]
pub struct Watermark {
    value: Cell<u64>,
    failed: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Watermark {
    pub fn new(value: u64) -> Watermark {
        Watermark {
            value: Cell::new(value),
            ..Default::default()
        }
    }

    pub fn get(&self) -> u64 {
        self.value.get()
    }

    /// Raises the mark and wakes every waiter (each re-checks its own target).
    pub fn advance(&self, value: u64) {
        assert!(
            value >= self.value.get(),
            "watermark fell from {} to {value}",
            self.value.get()
        );
        self.value.set(value);
        self.wake_all();
    }

    /// Whether `fail` was called.
    pub fn failed(&self) -> bool {
        self.failed.get()
    }

    /// The mark will never rise again: every waiter gets `Failed`.
    pub fn fail(&self) {
        self.failed.set(true);
        self.wake_all();
    }

    fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }

    /// Wakes every waiter without moving the mark, so each re-checks its condition.
    pub fn nudge(&self) {
        self.wake_all();
    }

    /// Resolves once `done(mark)` holds, checked at each advance or nudge.
    pub fn wait_until<F: Fn(u64) -> bool>(&self, done: F) -> WaitUntil<'_, F> {
        WaitUntil { mark: self, done }
    }

    /// Resolves once the mark is at least `target`.
    pub fn wait_for(&self, target: u64) -> WaitFor<'_> {
        WaitFor { mark: self, target }
    }
}

pub struct WaitFor<'a> {
    mark: &'a Watermark,
    target: u64,
}

impl Future for WaitFor<'_> {
    type Output = Result<(), Failed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.mark.value.get() >= self.target {
            return Poll::Ready(Ok(()));
        }
        if self.mark.failed.get() {
            return Poll::Ready(Err(Failed));
        }
        self.mark.waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

pub struct WaitUntil<'a, F> {
    mark: &'a Watermark,
    done: F,
}

impl<F: Fn(u64) -> bool> Future for WaitUntil<'_, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if (self.done)(self.mark.value.get()) {
            return Poll::Ready(());
        }
        self.mark.waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

/// Wakes one waiting task when something is ready; a wake with no waiter is remembered.
#[derive(Default)]
pub struct Signal {
    raised: Cell<bool>,
    waiter: RefCell<Option<Waker>>,
}

impl Signal {
    pub fn raise(&self) {
        self.raised.set(true);
        if let Some(waker) = self.waiter.borrow_mut().take() {
            waker.wake();
        }
    }

    pub fn wait(&self) -> SignalWait<'_> {
        SignalWait { signal: self }
    }
}

pub struct SignalWait<'a> {
    signal: &'a Signal,
}

impl Future for SignalWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.raised.replace(false) {
            return Poll::Ready(());
        }
        *self.signal.waiter.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
