//! Delimiter for Rust services: quota enforcement through Delimiter's
//! WebAssembly component.
//!
//! Every decision is made by the component (`wit/delimiter.wit`), embedded
//! in this crate and run with wasmtime, so a Rust service gets byte for
//! byte the answers every other host gets. This crate holds plain data
//! types, converts them at the edge, and keeps guest faults apart from
//! quota answers: a trap, fuel exhaustion or a memory-limit hit is
//! [`Error::GuestFault`], never an over-limit or an invalid input.
//!
//! ```
//! use delimiter::*;
//!
//! // A parent with room for 10 servers, and two children.
//! let snapshot = Snapshot {
//!     projects: vec![Project::root("org"), Project::child("a", "org"), Project::child("b", "org")],
//!     limits: Limits {
//!         registered: vec![RegisteredLimit::new("servers", 8)],
//!         project: vec![ProjectLimit::new("org", "servers", 10)],
//!     },
//!     usage: Usage::Local(vec![
//!         UsageEntry::new("a", "servers", 6),
//!         UsageEntry::new("b", "servers", 3),
//!     ]),
//!     generations: vec![Generation::new("org", 41), Generation::new("b", 7)],
//! };
//! let config = Config::new(Model::Nested);
//!
//! // b may add one server: the claim says which rows to compare-and-update.
//! let one = Request::new("b", vec![Delta::new("servers", 1)]);
//! let Decision::Admitted { claim } = evaluate(&config, &snapshot, &one)? else { panic!() };
//! assert_eq!(claim, vec![
//!     ClaimEntry { project: "b".into(), generation: 7 },
//!     ClaimEntry { project: "org".into(), generation: 41 },
//! ]);
//!
//! // Two would overrun the parent, though b's own limit has room.
//! let two = Request::new("b", vec![Delta::new("servers", 2)]);
//! let Decision::Refused { violations } = evaluate(&config, &snapshot, &two)? else { panic!() };
//! assert_eq!((violations[0].project.as_str(), violations[0].usage), ("org", 9));
//!
//! // Or let the component drive the whole read, decide, commit, retry loop
//! // against a store (here in memory; `SqliteStore` and your own `Store`
//! // impls work the same way).
//! let mut store = MemoryStore::new(snapshot.projects.clone(), snapshot.limits.clone());
//! store.set_usage("a", "servers", 6);
//! let done = consume(&config, &RetryPolicy::default(), &mut store, &one)?;
//! assert_eq!(done.attempts, 1);
//! assert_eq!(store.usage("b", "servers"), 1);
//!
//! // Errors say what is wrong, with the fields to branch on.
//! let stranger = Request::new("nobody", vec![Delta::new("servers", 1)]);
//! match evaluate(&config, &snapshot, &stranger) {
//!     Err(Error::Invalid(InvalidInput::UnknownProject { project })) => assert_eq!(project, "nobody"),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), delimiter::Error>(())
//! ```
//!
//! The free functions ([`evaluate`], [`headroom`], [`max_count`],
//! [`validate`], [`oslo_check`], [`consume`]) use one component instance
//! per thread. An [`Enforcer`] is the same as a handle you own, with its own
//! fuel and memory limits ([`DEFAULT_FUEL`], [`DEFAULT_MEMORY_LIMIT`]).

/// The top README's Rust examples, compiled and run as doc tests so they
/// stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

mod claim;
mod compat;
mod consume;
mod convert;
mod decide;
mod error;
mod headroom;
mod limits;
mod max_count;
mod model;
mod runtime;
mod snapshot;
mod stores;
mod tree;
mod usage;
mod validate;

pub use claim::{ClaimEntry, Generation};
pub use compat::{OsloCheck, OverLimitInfo, ResourceLimit};
pub use consume::{CommitOutcome, Consumed, RetryPolicy, StorageError, Store};
pub use decide::{Decision, Delta, Request, Violation};
pub use error::{Error, FaultKind, GuestFault, IdKind, InvalidInput};
pub use headroom::{ResourceHeadroom, Room};
pub use limits::{Limits, ProjectLimit, RegisteredLimit, UNLIMITED};
pub use max_count::Count;
pub use model::{Config, DEFAULT_MAX_DEPTH, MissingLimit, Model};
pub use runtime::{
    DEFAULT_FUEL, DEFAULT_MEMORY_LIMIT, Enforcer, Prepared, component_size, load_time,
};
pub use snapshot::Snapshot;
pub use stores::{MariadbStore, MemoryStore, PostgresStore, SqliteStore};
pub use tree::Project;
pub use usage::{PathUsage, ResourceUsage, Usage, UsageEntry};

use std::cell::RefCell;

thread_local! {
    static ENFORCER: RefCell<Enforcer> = RefCell::new(Enforcer::new());
}

/// Runs `f` on this thread's [`Enforcer`], or on a fresh one when that one
/// is busy (a call made from inside a [`Store`] callback).
pub(crate) fn with_enforcer<R>(f: impl FnOnce(&mut Enforcer) -> R) -> R {
    ENFORCER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut enforcer) => f(&mut enforcer),
        Err(_) => f(&mut Enforcer::new()),
    })
}

/// Decides `request` against `snapshot` under `config` (see
/// [`Enforcer::evaluate`]).
pub fn evaluate(
    config: &Config,
    snapshot: &Snapshot,
    request: &Request,
) -> Result<Decision, Error> {
    with_enforcer(|e| e.evaluate(config, snapshot, request))
}

/// The headroom of `project` for each of `resources`, sorted by resource
/// name (see [`Enforcer::headroom`]).
pub fn headroom(
    config: &Config,
    snapshot: &Snapshot,
    project: &str,
    resources: &[String],
) -> Result<Vec<ResourceHeadroom>, Error> {
    with_enforcer(|e| e.headroom(config, snapshot, project, resources))
}

/// How many units of `per_unit` `project` can consume now (see
/// [`Enforcer::max_count`]).
pub fn max_count(
    config: &Config,
    snapshot: &Snapshot,
    project: &str,
    per_unit: &[Delta],
) -> Result<Count, Error> {
    with_enforcer(|e| e.max_count(config, snapshot, project, per_unit))
}

/// Every finding for `projects` and `limits`; empty when valid (see
/// [`Enforcer::validate`]).
pub fn validate(
    config: &Config,
    projects: &[Project],
    limits: &Limits,
) -> Result<Vec<Finding>, Error> {
    with_enforcer(|e| e.validate(config, projects, limits))
}

/// oslo.limit 2.12's flat check (see [`Enforcer::oslo_check`]).
pub fn oslo_check(check: &OsloCheck) -> Result<Vec<OverLimitInfo>, Error> {
    with_enforcer(|e| e.oslo_check(check))
}

/// Consumes `request` through `store`, retrying on conflicts (see
/// [`Enforcer::consume`]).
pub fn consume(
    config: &Config,
    policy: &RetryPolicy,
    store: &mut dyn Store,
    request: &Request,
) -> Result<Consumed, Error> {
    with_enforcer(|e| e.consume(config, policy, store, request))
}

pub use validate::Finding;
