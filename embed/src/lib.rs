//! Delimiter's WebAssembly component, embedded with wasmtime: the one
//! embedding every Rust-written host stands on (the `delimiter` crate, the
//! Python extension), as tokenizers' bindings stand on its Rust crate.
//!
//! - [`types`]: the data, as `bindgen!` generates it from
//!   `wit/delimiter.wit` (the only definition of the data outside the
//!   core), with constructors.
//! - [`Enforcer`]: one instance of the component, every exported function
//!   as a method, with fuel and a memory cap per call; a trap, fuel
//!   exhaustion or a memory-limit hit is [`Error::GuestFault`], never an
//!   answer.
//! - [`Prepared`]: the component's `prepared` resource, with the numbers it
//!   gives kept per instance (forgotten after a fault).
//! - [`Store`]: the caller's storage, as `consume` drives it.
//!
//! The component comes from `target/delimiter.wasm` (built by `just
//! component`) or from the copy a package of this crate carries.

mod cache;
mod enforcer;
mod error;
mod prepared;
mod runtime;
mod store;
pub mod types;

pub use cache::LoadInfo;
pub use enforcer::{DEFAULT_FUEL, DEFAULT_MEMORY_LIMIT, Enforcer};
pub use error::{Error, FaultKind, GuestFault, StorageError};
pub use prepared::{Located, Prepared, claim};
pub use runtime::{component_size, load_info};
pub use store::Store;
