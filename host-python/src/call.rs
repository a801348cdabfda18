//! The one way a Python function calls the component.
//!
//! Threads: one [`Enforcer`] (a wasmtime store and instance) per OS thread,
//! kept in a thread-local and reused from call to call; none is shared
//! between threads, so calls from many Python threads run in parallel with
//! no lock of ours. A call made from inside a store callback of `consume`
//! (re-entrant, same thread) finds the slot empty and gets a fresh
//! enforcer of its own.
//!
//! The GIL is released around the component call (`py.detach`), with the
//! inputs already plain Rust values; errors become exceptions in one place
//! ([`crate::errors::to_pyerr`]).

use delimiter_embed::{DEFAULT_FUEL, DEFAULT_MEMORY_LIMIT, Enforcer, Error};
use pyo3::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// This thread's enforcer, reused from call to call.
    static ENFORCER: RefCell<Option<Enforcer>> = const { RefCell::new(None) };
}

/// The bounds of one call: `fuel` and `memory_limit` as Python passes
/// them (None: the defaults).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub fuel: u64,
    pub memory: usize,
}

impl Limits {
    pub fn new(fuel: Option<u64>, memory: Option<usize>) -> Self {
        Limits {
            fuel: fuel.unwrap_or(DEFAULT_FUEL),
            memory: memory.unwrap_or(DEFAULT_MEMORY_LIMIT),
        }
    }

    /// A fresh enforcer with these bounds.
    pub fn enforcer(self) -> Enforcer {
        Enforcer::new()
            .with_fuel(self.fuel)
            .with_memory_limit(self.memory)
    }
}

/// Runs `f` without the GIL; its error becomes its exception. Every
/// Python function goes through here (most through [`call`]), but for
/// `Prepared.evaluate`'s decision on a live instance, made with the GIL.
pub fn detached<R: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<R, Error> + Send,
) -> PyResult<R> {
    py.detach(f).map_err(|e| crate::errors::to_pyerr(py, e))
}

/// Runs `f` on this thread's enforcer (or a fresh one when it is busy, or
/// its instance has grown past `limits.memory`) with `limits`, without the
/// GIL; an error becomes its exception.
pub fn call<R: Send>(
    py: Python<'_>,
    limits: Limits,
    f: impl FnOnce(&mut Enforcer) -> Result<R, Error> + Send,
) -> PyResult<R> {
    detached(py, || {
        // Taken out of the slot for the call, so that a re-entrant call
        // finds it empty and makes its own.
        let kept = ENFORCER.with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take()));
        let mut enforcer = match kept {
            Some(e) if e.memory_high_water() <= limits.memory => e,
            _ => Enforcer::new(),
        };
        enforcer.set_limits(limits.fuel, limits.memory);
        let out = f(&mut enforcer);
        ENFORCER.with(|slot| {
            if let Ok(mut slot) = slot.try_borrow_mut()
                && slot.is_none()
            {
                *slot = Some(enforcer);
            }
        });
        out
    })
}
