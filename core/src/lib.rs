//! Delimiter's quota core: the semantics of `docs/semantics.md` as
//! pure, deterministic functions. No I/O, no global state, no panics on bad
//! input (every rejection is an [`Error`]); builds natively and for wasm32.
//!
//! ```
//! use delimiter_core::*;
//!
//! // A parent with room for 10 servers, and two children.
//! let snapshot = Snapshot {
//!     projects: vec![Project::root("org"), Project::child("a", "org"), Project::child("b", "org")],
//!     limits: Limits {
//!         registered: vec![RegisteredLimit { resource: "servers".into(), limit: 8 }],
//!         project: vec![ProjectLimit { project: "org".into(), resource: "servers".into(), limit: 10 }],
//!     },
//!     usage: Usage::Local(vec![
//!         UsageEntry { project: "a".into(), resource: "servers".into(), usage: 6 },
//!         UsageEntry { project: "b".into(), resource: "servers".into(), usage: 3 },
//!     ]),
//!     generations: vec![
//!         Generation { project: "org".into(), generation: 41 },
//!         Generation { project: "b".into(), generation: 7 },
//!     ],
//! };
//! let config = Config::new(Model::Nested);
//!
//! // b may add one server: the claim says which rows to compare-and-update.
//! let one = Request::new("b", vec![Delta::new("servers", 1)]);
//! assert_eq!(
//!     evaluate(&config, &snapshot, &one).unwrap(),
//!     Decision::Admitted { claim: vec![
//!         ClaimEntry { project: "b".into(), generation: 7 },
//!         ClaimEntry { project: "org".into(), generation: 41 },
//!     ] },
//! );
//!
//! // Two would overrun the parent, though b's own limit has room.
//! let two = Request::new("b", vec![Delta::new("servers", 2)]);
//! let Decision::Refused { violations } = evaluate(&config, &snapshot, &two).unwrap() else { panic!() };
//! assert_eq!(violations[0].project, "org");
//! assert_eq!((violations[0].limit, violations[0].usage, violations[0].delta), (10, 9, 2));
//! ```

mod batch;
mod buf;
mod claim;
mod compat;
mod consume;
mod decide;
mod error;
mod headroom;
mod limits;
mod max_count;
mod model;
mod prepared;
mod snapshot;
mod tree;
mod usage;
mod validate;

pub use batch::{BatchOutcome, BatchStore, consume_batch, evaluate_batch, union_claims};
pub use claim::{ClaimEntry, Generation};
pub use compat::{OsloCheck, OverLimitInfo, ResourceLimit, oslo_check};
pub use consume::{
    CommitOutcome, ConsumeError, Consumed, RetryPolicy, StorageError, Store, consume,
};
pub use decide::{Decision, Delta, Request, Violation, evaluate};
pub use error::{Error, IdKind, Result};
pub use headroom::{ResourceHeadroom, Room, headroom};
pub use limits::{Limits, ProjectLimit, RegisteredLimit, UNLIMITED};
pub use max_count::{Count, max_count};
pub use model::{Config, DEFAULT_MAX_DEPTH, MissingLimit, Model};
pub use prepared::{NumberedRequest, PathDecision, Prepared, PreparedMember};
pub use snapshot::Snapshot;
pub use tree::Project;
pub use usage::{PathUsage, ResourceUsage, Usage, UsageEntry};
pub use validate::{Finding, validate};
