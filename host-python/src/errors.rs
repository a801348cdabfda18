//! Every error as the exception classes of `delimiter._errors` (Python, so
//! that they carry their fields as attributes and a store can raise
//! `StorageError` itself), in one place.
//!
//! An `InvalidInput` takes its kind from the WIT case, its fields from the
//! case's payload record (serialized as it is: WIT field names in
//! snake_case) and its message from the component, verbatim.

use crate::data::Violation;
use delimiter_embed::types::{Invalid, InvalidInput};
use delimiter_embed::{Error, StorageError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use serde_json::Value;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// A class of `delimiter._errors`.
pub fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let module = ERRORS.get_or_try_init(py, || {
        PyModule::import(py, "delimiter._errors").map(Bound::unbind)
    })?;
    module.bind(py).getattr(name)
}

/// The exception for `error`.
pub fn to_pyerr(py: Python<'_>, error: Error) -> PyErr {
    let built = match error {
        Error::Invalid(invalid) => invalid_input(py, &invalid),
        Error::OverLimit(over) => {
            let violations: Vec<Violation> = over.violations.into_iter().map(Violation).collect();
            class(py, "OverLimit").and_then(|c| c.call1((violations, over.attempts)))
        }
        Error::RetriesExhausted { attempts } => {
            class(py, "RetriesExhausted").and_then(|c| c.call1((attempts,)))
        }
        Error::Storage { error, attempts } => storage(py, error, attempts),
        Error::GuestFault(fault) => {
            class(py, "GuestFault").and_then(|c| c.call1((fault.kind.as_str(), fault.message)))
        }
    };
    match built {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// An `InvalidInput` instance (raised, or kept by a validation finding).
pub fn invalid_input<'py>(py: Python<'py>, invalid: &Invalid) -> PyResult<Bound<'py, PyAny>> {
    let fields = PyDict::new(py);
    match &invalid.input {
        // serde would write the id kind as its Rust case name (`Project`).
        InvalidInput::EmptyId(info) => fields.set_item("what", info.what.as_str())?,
        // `{"Case": {field: value, ...}}`.
        other => {
            let case = serde_json::to_value(other).map_err(|e| {
                pyo3::exceptions::PyRuntimeError::new_err(format!("invalid-input payload: {e}"))
            })?;
            if let Value::Object(case) = case {
                for payload in case.into_values() {
                    if let Value::Object(record) = payload {
                        for (name, value) in record {
                            fields.set_item(name, scalar(py, value)?)?;
                        }
                    }
                }
            }
        }
    }
    class(py, "InvalidInput")?.call((invalid.kind(), &invalid.message), Some(&fields))
}

/// A payload field's value (the payload records hold strings, integers
/// and options of them).
fn scalar<'py>(py: Python<'py>, value: Value) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    match value {
        Value::Null => Ok(py.None().into_bound(py)),
        Value::Bool(b) => b.into_bound_py_any(py),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_bound_py_any(py),
            (None, Some(u)) => u.into_bound_py_any(py),
            _ => n.as_f64().into_bound_py_any(py),
        },
        Value::String(s) => s.into_bound_py_any(py),
        other => other.to_string().into_bound_py_any(py),
    }
}

/// `StorageError(message, attempts, original)` caused by the storage's own
/// exception: the exception the store's method raised or, when that is a
/// `StorageError` carrying an `original` (a database error the store
/// wrapped), that one.
fn storage<'py>(
    py: Python<'py>,
    error: StorageError,
    attempts: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let raised = error
        .source
        .as_deref()
        .and_then(|source| source.downcast_ref::<PyErr>())
        .map(|err| err.value(py).clone().into_any());
    let original = match raised {
        Some(raised) => match raised.getattr("original") {
            Ok(inner) if !inner.is_none() => Some(inner),
            _ => Some(raised),
        },
        None => None,
    };
    let value = class(py, "StorageError")?.call1((error.message, attempts, &original))?;
    if let Some(original) = original {
        value.setattr("__cause__", original)?;
    }
    Ok(value)
}
