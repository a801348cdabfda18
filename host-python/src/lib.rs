//! Delimiter for Python: the extension module `delimiter._delimiter`, a
//! thin pyo3 layer over [`delimiter_embed`] (the one embedding of the
//! component for every Rust-written host), so Python gets byte for byte
//! the decisions every other host gets.
//!
//! Modules, each using only those above it:
//! - `convert`: how WIT values cross to Python, and the macros that make a
//!   class of a WIT record or enum;
//! - `data`: the classes over the WIT types;
//! - `errors`: every error as an exception of `delimiter._errors`;
//! - `call`: the per-thread enforcer and the one call helper;
//! - `store`: the caller's Python store, as `consume` and `consume_batch`
//!   drive it;
//! - `api`: `Config` and the functions;
//! - `prepared`: `Prepared`, with its hand-written hot path.
//!
//! The package `delimiter` (python/delimiter) re-exports all of it; the
//! exceptions live there, in `_errors.py`.

mod api;
mod call;
mod convert;
mod data;
mod errors;
mod prepared;
mod store;

use pyo3::prelude::*;

#[pymodule]
fn _delimiter(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DEFAULT_FUEL", delimiter_embed::DEFAULT_FUEL)?;
    m.add(
        "DEFAULT_MEMORY_LIMIT",
        delimiter_embed::DEFAULT_MEMORY_LIMIT,
    )?;
    m.add(
        "DEFAULT_MAX_DEPTH",
        delimiter_embed::types::DEFAULT_MAX_DEPTH,
    )?;

    m.add_class::<data::Model>()?;
    m.add_class::<data::MissingLimit>()?;
    m.add_class::<api::Config>()?;
    m.add_class::<data::Project>()?;
    m.add_class::<data::RegisteredLimit>()?;
    m.add_class::<data::ProjectLimit>()?;
    m.add_class::<data::Limits>()?;
    m.add_class::<data::UsageEntry>()?;
    m.add_class::<data::ResourceUsage>()?;
    m.add_class::<data::PathUsage>()?;
    m.add_class::<data::Generation>()?;
    m.add_class::<data::ClaimEntry>()?;
    m.add_class::<data::Snapshot>()?;
    m.add_class::<data::Delta>()?;
    m.add_class::<data::Request>()?;
    m.add_class::<data::PreparedMember>()?;
    m.add_class::<data::Violation>()?;
    m.add_class::<data::Decision>()?;
    m.add_class::<data::ResourceHeadroom>()?;
    m.add_class::<data::Count>()?;
    m.add_class::<data::InvalidFinding>()?;
    m.add_class::<data::ChildLimitExceedsParent>()?;
    m.add_class::<data::ResourceLimit>()?;
    m.add_class::<data::OsloCheck>()?;
    m.add_class::<data::OverLimitInfo>()?;
    m.add_class::<data::RetryPolicy>()?;
    m.add_class::<data::CommitOutcome>()?;
    m.add_class::<data::Consumed>()?;
    m.add_class::<data::MemberFailure>()?;
    m.add_class::<prepared::Prepared>()?;

    m.add_function(wrap_pyfunction!(api::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(api::headroom, m)?)?;
    m.add_function(wrap_pyfunction!(api::max_count, m)?)?;
    m.add_function(wrap_pyfunction!(api::validate, m)?)?;
    m.add_function(wrap_pyfunction!(api::oslo_check, m)?)?;
    m.add_function(wrap_pyfunction!(api::consume, m)?)?;
    m.add_function(wrap_pyfunction!(api::evaluate_batch, m)?)?;
    m.add_function(wrap_pyfunction!(api::consume_batch, m)?)?;
    m.add_function(wrap_pyfunction!(api::parse_model, m)?)?;
    m.add_function(wrap_pyfunction!(api::load_info, m)?)?;
    Ok(())
}
