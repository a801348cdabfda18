//! Delimiter for Rust services: quota enforcement through Delimiter's
//! WebAssembly component.
//!
//! Every decision is made by the component (`wit/delimiter.wit`), embedded
//! with wasmtime by `delimiter-embed` (the one embedding every Rust-written
//! host shares), so a Rust service gets byte for byte the answers every
//! other host gets. The data types are the ones generated from the WIT;
//! guest faults are kept apart from quota answers: a trap, fuel exhaustion
//! or a memory-limit hit is [`Error::GuestFault`], never an over-limit or an
//! invalid input. This crate adds the free functions, the ready-made
//! [`Store`]s (memory, SQLite, PostgreSQL, MariaDB) and the CLI.
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
//! let Decision::Admitted(claim) = evaluate(&config, &snapshot, &one)? else { panic!() };
//! assert_eq!(claim, vec![ClaimEntry::new("b", 7), ClaimEntry::new("org", 41)]);
//!
//! // Two would overrun the parent, though b's own limit has room.
//! let two = Request::new("b", vec![Delta::new("servers", 2)]);
//! let Decision::Refused(violations) = evaluate(&config, &snapshot, &two)? else { panic!() };
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
//! // Errors say what is wrong, with the fields to branch on and the core's
//! // own message (the same text on every host).
//! let stranger = Request::new("nobody", vec![Delta::new("servers", 1)]);
//! match evaluate(&config, &snapshot, &stranger) {
//!     Err(Error::Invalid(Invalid { input: InvalidInput::UnknownProject(p), message })) => {
//!         assert_eq!(p.project, "nobody");
//!         assert_eq!(message, r#"project "nobody" is not in the tree"#);
//!     }
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

mod combiner;
mod stores;
pub mod vector;

pub use combiner::{Combiner, CombinerStats, DEFAULT_MAX_BATCH, GroupKey};
pub use delimiter_embed::types::*;
pub use delimiter_embed::{
    DEFAULT_FUEL, DEFAULT_MEMORY_LIMIT, Enforcer, Error, FaultKind, GuestFault, LoadInfo, Located,
    Prepared, StorageError, Store, component_size, load_info,
};
pub use stores::{MariadbStore, MemoryStore, PostgresStore, SqliteStore, sql};

use std::cell::RefCell;

thread_local! {
    static ENFORCER: RefCell<Enforcer> = RefCell::new(Enforcer::new());
}

/// Runs `f` on this thread's [`Enforcer`], or on a fresh one when that one
/// is busy (a call made from inside a [`Store`] callback).
fn with_enforcer<R>(f: impl FnOnce(&mut Enforcer) -> R) -> R {
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

/// How many units of `request` (its deltas are per unit) its project can
/// consume now (see [`Enforcer::max_count`]).
pub fn max_count(config: &Config, snapshot: &Snapshot, request: &Request) -> Result<Count, Error> {
    with_enforcer(|e| e.max_count(config, snapshot, request))
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
pub fn oslo_check(check: &OsloRequest) -> Result<Vec<OverLimitInfo>, Error> {
    with_enforcer(|e| e.oslo_check(check))
}

/// A model by name: `flat`, `strict-two-level` (or Keystone's
/// `strict_two_level`) or `nested`; anything else is `unknown-model`.
pub fn parse_model(name: &str) -> Result<Model, Error> {
    with_enforcer(|e| e.parse_model(name))
}

/// A config from names, checked by the core (see [`Enforcer::parse_config`]).
pub fn parse_config(model: &str, max_depth: u32, missing_limit: &str) -> Result<Config, Error> {
    with_enforcer(|e| e.parse_config(model, max_depth, missing_limit))
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
