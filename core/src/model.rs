//! Enforcement models and the settings that shape every decision.

use crate::error::{Error, Result};
use std::str::FromStr;

/// How usage in a project tree counts against limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Only the project itself counts: `u(p, r) + d(r) <= L(p, r)`.
    Flat,
    /// Keystone's model: at most two levels; a parent's limit caps the parent
    /// and its children together.
    StrictTwoLevel,
    /// Any depth (the cgroup v2 model): every ancestor with a finite limit
    /// caps its whole subtree.
    Nested,
}

impl Model {
    /// The canonical (kebab-case) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Flat => "flat",
            Model::StrictTwoLevel => "strict-two-level",
            Model::Nested => "nested",
        }
    }
}

impl FromStr for Model {
    type Err = Error;

    /// Accepts the canonical names plus Keystone's `strict_two_level`
    /// (oslo.limit looks for `strict-two-level`; both are in the wild).
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "flat" => Ok(Model::Flat),
            "strict-two-level" | "strict_two_level" => Ok(Model::StrictTwoLevel),
            "nested" => Ok(Model::Nested),
            _ => Err(Error::UnknownModel {
                name: name.to_string(),
            }),
        }
    }
}

/// What a resource with neither a project nor a registered limit is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingLimit {
    /// Treated as 0, as oslo.limit does: an unregistered resource cannot be
    /// consumed.
    #[default]
    Zero,
    /// Treated as unlimited.
    Unlimited,
}

/// Settings for every call. `Config::default()` is the nested model with
/// the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub model: Model,
    /// Deepest allowed project (a root is at depth 1). Strict-two-level
    /// additionally caps the depth at 2.
    pub max_depth: u32,
    pub missing_limit: MissingLimit,
}

/// The default maximum depth of a project tree.
pub const DEFAULT_MAX_DEPTH: u32 = 64;

impl Default for Config {
    fn default() -> Self {
        Config {
            model: Model::Nested,
            max_depth: DEFAULT_MAX_DEPTH,
            missing_limit: MissingLimit::Zero,
        }
    }
}

impl Config {
    /// A config for `model` with the other settings at their defaults.
    pub fn new(model: Model) -> Self {
        Config {
            model,
            ..Config::default()
        }
    }

    /// The depth limit that actually applies under this model.
    pub(crate) fn effective_max_depth(&self) -> Result<u32> {
        if self.max_depth == 0 {
            return Err(Error::InvalidConfig { field: "max-depth" });
        }
        Ok(match self.model {
            Model::StrictTwoLevel => self.max_depth.min(2),
            Model::Flat | Model::Nested => self.max_depth,
        })
    }
}
