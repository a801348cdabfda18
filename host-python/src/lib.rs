//! Delimiter for Python: the extension module `delimiter._delimiter`.
//!
//! It embeds Delimiter's WebAssembly component (`target/delimiter.wasm`)
//! and runs it with wasmtime, so Python gets byte for byte the decisions
//! every other host gets. The modules mirror the concepts of the spec (and
//! of the core and the Rust host): tree, limits, usage, claim, snapshot,
//! model, decide, headroom, max_count, validate, compat, consume; `runtime`
//! runs the component, `cache` keeps it compiled on disk, `error` builds
//! the exceptions. The package `delimiter` (python/delimiter) re-exports all
//! of it; the exceptions live there, in `_errors.py`.

mod cache;
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
mod runtime;
mod snapshot;
mod tree;
mod usage;
mod validate;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `Name(field=repr(value), ...)`, with Python's own repr of each value.
#[macro_export]
macro_rules! repr {
    ($py:expr, $name:literal, $($field:ident = $value:expr),* $(,)?) => {{
        use pyo3::IntoPyObjectExt;
        let mut parts: Vec<String> = Vec::new();
        $(
            let value = ($value).clone().into_bound_py_any($py)?;
            parts.push(format!("{}={}", stringify!($field), value.repr()?));
        )*
        Ok(format!("{}({})", $name, parts.join(", ")))
    }};
}

/// Where the component was loaded from in this process (loading it now if
/// nothing has yet): `source` is `cache`, `compiled` (and cached) or
/// `compiled-uncached`; `path` the cache file; `note` why the cache was not
/// used; `seconds` the load time; `component_size` in bytes.
#[pyfunction]
fn load_info<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let info = py
        .detach(runtime::load_info)
        .map_err(|f| runtime::CallError::Fault(f).into_pyerr(py))?;
    let d = PyDict::new(py);
    d.set_item("source", info.source)?;
    d.set_item("path", info.path.map(|p| p.display().to_string()))?;
    d.set_item("note", info.note)?;
    d.set_item("seconds", info.seconds)?;
    d.set_item("component_size", runtime::component_size())?;
    Ok(d)
}

#[pymodule]
fn _delimiter(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DEFAULT_FUEL", runtime::DEFAULT_FUEL)?;
    m.add("DEFAULT_MEMORY_LIMIT", runtime::DEFAULT_MEMORY_LIMIT)?;
    m.add("DEFAULT_MAX_DEPTH", model::DEFAULT_MAX_DEPTH)?;

    m.add_class::<model::Model>()?;
    m.add_class::<model::MissingLimit>()?;
    m.add_class::<model::Config>()?;
    m.add_class::<tree::Project>()?;
    m.add_class::<limits::RegisteredLimit>()?;
    m.add_class::<limits::ProjectLimit>()?;
    m.add_class::<limits::Limits>()?;
    m.add_class::<usage::UsageEntry>()?;
    m.add_class::<usage::ResourceUsage>()?;
    m.add_class::<usage::PathUsage>()?;
    m.add_class::<claim::Generation>()?;
    m.add_class::<claim::ClaimEntry>()?;
    m.add_class::<snapshot::Snapshot>()?;
    m.add_class::<decide::Delta>()?;
    m.add_class::<decide::Request>()?;
    m.add_class::<decide::Violation>()?;
    m.add_class::<decide::Decision>()?;
    m.add_class::<headroom::ResourceHeadroom>()?;
    m.add_class::<max_count::Count>()?;
    m.add_class::<validate::InvalidFinding>()?;
    m.add_class::<validate::ChildLimitExceedsParent>()?;
    m.add_class::<compat::ResourceLimit>()?;
    m.add_class::<compat::OsloCheck>()?;
    m.add_class::<compat::OverLimitInfo>()?;
    m.add_class::<consume::RetryPolicy>()?;
    m.add_class::<consume::CommitOutcome>()?;
    m.add_class::<consume::Consumed>()?;
    m.add_class::<prepared::Prepared>()?;

    m.add_function(wrap_pyfunction!(decide::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(headroom::headroom, m)?)?;
    m.add_function(wrap_pyfunction!(max_count::max_count, m)?)?;
    m.add_function(wrap_pyfunction!(validate::validate, m)?)?;
    m.add_function(wrap_pyfunction!(compat::oslo_check, m)?)?;
    m.add_function(wrap_pyfunction!(consume::consume, m)?)?;
    m.add_function(wrap_pyfunction!(model::parse_model, m)?)?;
    m.add_function(wrap_pyfunction!(load_info, m)?)?;
    Ok(())
}
