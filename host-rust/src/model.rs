//! Enforcement models and the settings that shape every decision.

/// How usage in a project tree counts against limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// A model by name, as the component reads it: `flat`,
    /// `strict-two-level` (or Keystone's `strict_two_level`) or `nested`.
    /// Anything else is [`InvalidInput::UnknownModel`](crate::InvalidInput::UnknownModel).
    pub fn parse(name: &str) -> Result<Model, crate::Error> {
        crate::with_enforcer(|e| e.parse_model(name))
    }
}

impl std::str::FromStr for Model {
    type Err = crate::Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Model::parse(name)
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a resource with neither a project nor a registered limit is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MissingLimit {
    /// Treated as 0, as oslo.limit does: an unregistered resource cannot be
    /// consumed.
    #[default]
    Zero,
    /// Treated as unlimited.
    Unlimited,
}

/// The default maximum depth of a project tree.
pub const DEFAULT_MAX_DEPTH: u32 = 64;

/// Settings for every call. `Config::default()` is the nested model with
/// the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    pub model: Model,
    /// Deepest allowed project (a root is at depth 1; 0 is invalid).
    /// Strict-two-level additionally caps the depth at 2.
    pub max_depth: u32,
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

impl Config {
    /// A config for `model` with the other settings at their defaults.
    pub fn new(model: Model) -> Self {
        Config {
            model,
            ..Config::default()
        }
    }
}
