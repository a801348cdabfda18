//! Enforcement models and the settings that shape every decision.

use crate::runtime::{self, GuestLimits, w};
use pyo3::prelude::*;

/// How usage in a project tree counts against limits.
#[pyclass(module = "delimiter", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// Only the project itself counts.
    #[pyo3(name = "FLAT")]
    Flat,
    /// Keystone's model: at most two levels; a parent's limit caps the
    /// parent and its children together.
    #[pyo3(name = "STRICT_TWO_LEVEL")]
    StrictTwoLevel,
    /// Any depth: every ancestor with a finite limit caps its subtree.
    #[pyo3(name = "NESTED")]
    Nested,
}

#[pymethods]
impl Model {
    /// The canonical (kebab-case) name: `flat`, `strict-two-level`, `nested`.
    #[getter]
    fn value(&self) -> &'static str {
        self.as_str()
    }

    fn __str__(&self) -> &'static str {
        self.as_str()
    }
}

impl Model {
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Flat => "flat",
            Model::StrictTwoLevel => "strict-two-level",
            Model::Nested => "nested",
        }
    }

    pub fn to_wit(self) -> w::Model {
        match self {
            Model::Flat => w::Model::Flat,
            Model::StrictTwoLevel => w::Model::StrictTwoLevel,
            Model::Nested => w::Model::Nested,
        }
    }

    pub fn from_wit(m: w::Model) -> Model {
        match m {
            w::Model::Flat => Model::Flat,
            w::Model::StrictTwoLevel => Model::StrictTwoLevel,
            w::Model::Nested => Model::Nested,
        }
    }

    /// A `Model`, or a name of one: the canonical names directly, anything
    /// else (Keystone's `strict_two_level`, or an unknown name) through the
    /// component's `parse-model`, which owns the rule.
    fn from_python(value: &Bound<'_, PyAny>) -> PyResult<Model> {
        if let Ok(model) = value.cast::<Model>() {
            return Ok(*model.get());
        }
        let name: String = value.extract()?;
        for model in [Model::Flat, Model::StrictTwoLevel, Model::Nested] {
            if name == model.as_str() {
                return Ok(model);
            }
        }
        parse_model_with(value.py(), &name, GuestLimits::new(None, None))
    }
}

/// What a resource with neither a project nor a registered limit is worth.
#[pyclass(module = "delimiter", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MissingLimit {
    /// Treated as 0 (oslo.limit's behaviour): it cannot be consumed.
    #[pyo3(name = "ZERO")]
    Zero,
    /// Treated as unlimited.
    #[pyo3(name = "UNLIMITED")]
    Unlimited,
}

#[pymethods]
impl MissingLimit {
    /// The canonical name: `zero` or `unlimited`.
    #[getter]
    fn value(&self) -> &'static str {
        self.as_str()
    }

    fn __str__(&self) -> &'static str {
        self.as_str()
    }
}

impl MissingLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            MissingLimit::Zero => "zero",
            MissingLimit::Unlimited => "unlimited",
        }
    }

    fn from_python(value: &Bound<'_, PyAny>) -> PyResult<MissingLimit> {
        if let Ok(m) = value.cast::<MissingLimit>() {
            return Ok(*m.get());
        }
        let name: String = value.extract()?;
        match name.as_str() {
            "zero" => Ok(MissingLimit::Zero),
            "unlimited" => Ok(MissingLimit::Unlimited),
            _ => Err(crate::error::invalid_config(value.py(), "missing-limit")),
        }
    }
}

/// The default maximum depth of a project tree.
pub const DEFAULT_MAX_DEPTH: u32 = 64;

/// Settings for every call. `Config()` is the nested model, depth 64,
/// missing limits treated as 0.
#[pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    #[pyo3(get)]
    pub model: Model,
    /// Deepest allowed project, a root being at depth 1 (0 is invalid).
    #[pyo3(get)]
    pub max_depth: u32,
    #[pyo3(get)]
    pub missing_limit: MissingLimit,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: Model::Nested,
            max_depth: DEFAULT_MAX_DEPTH,
            missing_limit: MissingLimit::Zero,
        }
    }
}

#[pymethods]
impl Config {
    #[new]
    #[pyo3(signature = (model = None, max_depth = DEFAULT_MAX_DEPTH, missing_limit = None))]
    fn new(
        model: Option<&Bound<'_, PyAny>>,
        max_depth: u32,
        missing_limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Config {
            model: model
                .map(Model::from_python)
                .transpose()?
                .unwrap_or(Model::Nested),
            max_depth,
            missing_limit: missing_limit
                .map(MissingLimit::from_python)
                .transpose()?
                .unwrap_or(MissingLimit::Zero),
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::repr!(
            py,
            "Config",
            model = self.model,
            max_depth = self.max_depth,
            missing_limit = self.missing_limit
        )
    }
}

impl Config {
    pub fn to_wit(self) -> w::Config {
        w::Config {
            model: self.model.to_wit(),
            max_depth: self.max_depth,
            missing_limit: match self.missing_limit {
                MissingLimit::Zero => w::MissingLimit::Zero,
                MissingLimit::Unlimited => w::MissingLimit::Unlimited,
            },
        }
    }

    /// The WIT config of an optional Python `Config` (the default if None).
    pub fn wit_of(config: Option<&Bound<'_, Config>>) -> w::Config {
        config.map(|c| *c.get()).unwrap_or_default().to_wit()
    }
}

/// A model by name: `flat`, `strict-two-level` (or Keystone's
/// `strict_two_level`) or `nested`; anything else raises
/// `InvalidInput(kind="unknown-model")`.
#[pyfunction]
#[pyo3(signature = (name, *, fuel = None, memory_limit = None))]
pub fn parse_model(
    py: Python<'_>,
    name: &str,
    fuel: Option<u64>,
    memory_limit: Option<usize>,
) -> PyResult<Model> {
    parse_model_with(py, name, GuestLimits::new(fuel, memory_limit))
}

fn parse_model_with(py: Python<'_>, name: &str, limits: GuestLimits) -> PyResult<Model> {
    let out = py
        .detach(|| {
            runtime::call(limits, None, |store, quota| {
                Ok(match quota.call_parse_model(&mut *store, name)? {
                    Ok(m) => Ok(m),
                    Err(e) => Err(runtime::describe(store, quota, e)?),
                })
            })
        })
        .map_err(|e| e.into_pyerr(py))?;
    match out {
        Ok(m) => Ok(Model::from_wit(m)),
        Err((e, message)) => Err(crate::error::invalid_input(py, &e, message)),
    }
}
