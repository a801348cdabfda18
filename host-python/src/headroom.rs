//! Headroom: the room left per resource.

use crate::model::Config;
use crate::runtime::{self, GuestLimits, w};
use crate::snapshot::Snapshot;
use pyo3::prelude::*;

/// The room left for one resource: `room` is the minimum of limit minus
/// usage over the constraining path (never below zero), or None when no
/// finite limit applies (`unlimited` is then True).
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceHeadroom {
    pub resource: String,
    pub room: Option<i64>,
}

#[pymethods]
impl ResourceHeadroom {
    #[new]
    #[pyo3(signature = (resource, room))]
    fn new(resource: String, room: Option<i64>) -> Self {
        ResourceHeadroom { resource, room }
    }

    /// True when no finite limit applies.
    #[getter]
    fn unlimited(&self) -> bool {
        self.room.is_none()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "ResourceHeadroom",
            resource = self.resource,
            room = self.room
        )
    }
}

/// The headroom of `project` for each of `resources`, sorted by resource.
#[pyfunction]
#[pyo3(signature = (snapshot, project, resources, config = None, *, fuel = None, memory_limit = None))]
pub fn headroom(
    py: Python<'_>,
    snapshot: &Bound<'_, Snapshot>,
    project: &str,
    resources: Vec<String>,
    config: Option<&Bound<'_, Config>>,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Vec<ResourceHeadroom>> {
    let (c, s) = (Config::wit_of(config), snapshot.get().to_wit());
    let out = py
        .detach(|| {
            runtime::call(
                GuestLimits::new(fuel, memory_limit),
                None,
                |store, quota| {
                    Ok(
                        match quota.call_headroom(&mut *store, c, &s, project, &resources)? {
                            Ok(rows) => Ok(rows),
                            Err(e) => Err(runtime::describe(store, quota, e)?),
                        },
                    )
                },
            )
        })
        .map_err(|e| e.into_pyerr(py))?;
    match out {
        Ok(rows) => Ok(rows
            .into_iter()
            .map(|h| ResourceHeadroom {
                resource: h.resource_name,
                room: match h.room {
                    w::Room::Unlimited => None,
                    w::Room::Limited(n) => Some(n),
                },
            })
            .collect()),
        Err((e, message)) => Err(crate::error::invalid_input(py, &e, message)),
    }
}
