//! The project tree.

use crate::runtime::w;
use pyo3::prelude::*;

/// A project of the tree. `parent=None` means a root.
#[pyclass(module = "delimiter", frozen, eq, hash, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Project {
    pub id: String,
    pub parent: Option<String>,
}

#[pymethods]
impl Project {
    #[new]
    #[pyo3(signature = (id, parent = None))]
    fn new(id: String, parent: Option<String>) -> Self {
        Project { id, parent }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(py, "Project", id = self.id, parent = self.parent)
    }
}

impl Project {
    pub fn to_wit(&self) -> w::Project {
        w::Project {
            id: self.id.clone(),
            parent: self.parent.clone(),
        }
    }
}
