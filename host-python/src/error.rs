//! The edge for errors: WIT errors and guest faults become the exception
//! classes of `delimiter._errors` (Python, so that they carry their fields
//! as attributes and a store can raise `StorageError` itself).

use crate::decide::Violation;
use crate::runtime::{self, Fault, GuestLimits, w};
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

static INVALID_INPUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static OVER_LIMIT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static RETRIES_EXHAUSTED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static STORAGE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static GUEST_FAULT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const ERRORS: &str = "delimiter._errors";

/// Raises an instance of `class` built by `build`, or whatever failed
/// while building it.
fn raise<'py>(
    py: Python<'py>,
    class: &PyOnceLock<Py<PyType>>,
    name: &str,
    build: impl FnOnce(&Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>>,
) -> PyErr {
    match class.import(py, ERRORS, name).and_then(build) {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// The kebab-case kind of an invalid-input error, and the project and
/// resource it names, if any.
pub fn names(e: &w::Error) -> (&'static str, Option<String>, Option<String>) {
    use w::Error as E;
    let s = |v: &String| Some(v.clone());
    match e {
        E::EmptyId(_) => ("empty-id", None, None),
        E::DuplicateProject(r) => ("duplicate-project", s(&r.project), None),
        E::UnknownParent(i) => ("unknown-parent", s(&i.project), None),
        E::Cycle(r) => ("cycle", s(&r.project), None),
        E::TooDeep(i) => ("too-deep", s(&i.project), None),
        E::UnknownProject(r) => ("unknown-project", s(&r.project), None),
        E::InvalidLimit(i) => ("invalid-limit", i.project.clone(), s(&i.resource_name)),
        E::DuplicateLimit(r) => ("duplicate-limit", r.project.clone(), s(&r.resource_name)),
        E::NegativeUsage(i) => ("negative-usage", s(&i.project), s(&i.resource_name)),
        E::DuplicateUsage(r) => ("duplicate-usage", s(&r.project), s(&r.resource_name)),
        E::InconsistentUsage(r) => ("inconsistent-usage", s(&r.project), s(&r.resource_name)),
        E::DuplicateGeneration(r) => ("duplicate-generation", s(&r.project), None),
        E::MissingGeneration(r) => ("missing-generation", s(&r.project), None),
        E::DuplicateResource(r) => ("duplicate-resource", None, s(&r.resource_name)),
        E::ReleaseBelowZero(i) => ("release-below-zero", s(&i.project), s(&i.resource_name)),
        E::NegativeDelta(d) => ("negative-delta", None, s(&d.resource_name)),
        E::Overflow(r) => ("overflow", s(&r.project), s(&r.resource_name)),
        E::UnknownModel(_) => ("unknown-model", None, None),
        E::InvalidConfig(_) => ("invalid-config", None, None),
        E::MissingUsage(r) => ("missing-usage", None, s(&r.resource_name)),
        E::ShapeMismatch(_) => ("shape-mismatch", None, None),
    }
}

/// Every field of the error, by its Python attribute name.
fn fields<'py>(py: Python<'py>, e: &w::Error) -> PyResult<Bound<'py, PyDict>> {
    use w::Error as E;
    let d = PyDict::new(py);
    let (_, project, resource) = names(e);
    match e {
        E::EmptyId(what) => d.set_item(
            "what",
            match what {
                w::IdKind::Project => "project",
                w::IdKind::Parent => "parent",
                w::IdKind::ResourceName => "resource",
            },
        )?,
        E::UnknownParent(i) => d.set_item("parent", &i.parent)?,
        E::TooDeep(i) => {
            d.set_item("depth", i.depth)?;
            d.set_item("max_depth", i.max_depth)?;
        }
        E::InvalidLimit(i) => d.set_item("limit", i.limit)?,
        E::NegativeUsage(i) => d.set_item("usage", i.usage)?,
        E::ReleaseBelowZero(i) => {
            d.set_item("usage", i.usage)?;
            d.set_item("delta", i.delta)?;
        }
        E::NegativeDelta(x) => d.set_item("delta", x.delta)?,
        E::UnknownModel(m) => d.set_item("name", &m.name)?,
        E::InvalidConfig(f) => d.set_item("field", &f.field)?,
        E::ShapeMismatch(m) => {
            d.set_item("field", &m.field)?;
            d.set_item("expected", m.expected)?;
            d.set_item("actual", m.actual)?;
        }
        _ => {}
    }
    // A limit error names a project or, for a registered limit, none:
    // `project` is then present and None.
    if project.is_some() || matches!(e, E::InvalidLimit(_) | E::DuplicateLimit(_)) {
        d.set_item("project", project)?;
    }
    if resource.is_some() {
        d.set_item("resource", resource)?;
    }
    Ok(d)
}

/// An `InvalidInput` instance (not raised: for `validate`'s findings).
pub fn invalid_input_value<'py>(
    py: Python<'py>,
    e: &w::Error,
    message: String,
) -> PyResult<Bound<'py, PyAny>> {
    let (kind, _, _) = names(e);
    INVALID_INPUT
        .import(py, ERRORS, "InvalidInput")?
        .call((kind, message), Some(&fields(py, e)?))
}

/// `InvalidInput` with the core's description as its message.
pub fn invalid_input(py: Python<'_>, e: &w::Error, message: String) -> PyErr {
    match invalid_input_value(py, e, message) {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// `InvalidInput(kind="invalid-config")` for a setting the host itself
/// parses (described by the component like every other error).
pub fn invalid_config(py: Python<'_>, field: &str) -> PyErr {
    let error = w::Error::InvalidConfig(w::ConfigField {
        field: field.to_string(),
    });
    let described = py.detach(|| {
        runtime::call(GuestLimits::new(None, None), None, |store, quota| {
            runtime::describe(store, quota, error.clone())
        })
    });
    match described {
        Ok((e, message)) => invalid_input(py, &e, message),
        Err(e) => e.into_pyerr(py),
    }
}

pub fn guest_fault(py: Python<'_>, fault: &Fault) -> PyErr {
    raise(py, &GUEST_FAULT, "GuestFault", |cls| {
        cls.call1((fault.kind.as_str(), &fault.message))
    })
}

pub fn over_limit(py: Python<'_>, violations: Vec<Violation>, attempts: u32) -> PyErr {
    raise(py, &OVER_LIMIT, "OverLimit", |cls| {
        cls.call1((violations.into_bound_py_any(py)?, attempts))
    })
}

pub fn retries_exhausted(py: Python<'_>, attempts: u32) -> PyErr {
    raise(py, &RETRIES_EXHAUSTED, "RetriesExhausted", |cls| {
        cls.call1((attempts,))
    })
}

/// `StorageError(message, attempts)`, caused by the `StorageError` the
/// store raised (if it raised one rather than failing otherwise).
pub fn storage(py: Python<'_>, message: String, attempts: u32, cause: Option<PyErr>) -> PyErr {
    let err = raise(py, &STORAGE_ERROR, "StorageError", |cls| {
        cls.call1((message, attempts))
    });
    if let Some(cause) = cause {
        err.set_cause(py, Some(cause));
    }
    err
}
