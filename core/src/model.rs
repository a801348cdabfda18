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

impl FromStr for MissingLimit {
    type Err = Error;

    /// Accepts `zero` and `unlimited`; anything else is
    /// [`Error::InvalidConfig`] for the field `missing-limit`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "zero" => Ok(MissingLimit::Zero),
            "unlimited" => Ok(MissingLimit::Unlimited),
            _ => Err(Error::InvalidConfig {
                field: "missing-limit",
            }),
        }
    }
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

    /// A config from its textual settings, checked in the order the
    /// conformance suite fixes for config: the model name (`unknown-model`),
    /// then `max_depth` (0 is `invalid-config` for `max-depth`, as every
    /// decision would report it), then the missing-limit rule (`zero` or
    /// `unlimited`, else `invalid-config` for `missing-limit`).
    pub fn parse(model: &str, max_depth: u32, missing_limit: &str) -> Result<Config> {
        let model = model.parse::<Model>()?;
        let config = Config {
            model,
            max_depth,
            missing_limit: MissingLimit::Zero,
        };
        config.effective_max_depth()?;
        Ok(Config {
            missing_limit: missing_limit.parse()?,
            ..config
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_limit_parses_its_two_names_only() {
        assert_eq!("zero".parse(), Ok(MissingLimit::Zero));
        assert_eq!("unlimited".parse(), Ok(MissingLimit::Unlimited));
        for bad in ["", "Zero", "UNLIMITED", "none", " zero", "-1"] {
            assert_eq!(
                bad.parse::<MissingLimit>(),
                Err(Error::InvalidConfig {
                    field: "missing-limit"
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn config_parse_builds_the_config() {
        assert_eq!(
            Config::parse("strict_two_level", 5, "unlimited"),
            Ok(Config {
                model: Model::StrictTwoLevel,
                max_depth: 5,
                missing_limit: MissingLimit::Unlimited,
            })
        );
        assert_eq!(
            Config::parse("nested", DEFAULT_MAX_DEPTH, "zero"),
            Ok(Config::default())
        );
        assert_eq!(
            Config::parse("flat", 1, "zero"),
            Ok(Config {
                max_depth: 1,
                ..Config::new(Model::Flat)
            })
        );
    }

    #[test]
    fn config_parse_checks_model_then_depth_then_missing_limit() {
        let unknown = Error::UnknownModel {
            name: "cgroup".into(),
        };
        assert_eq!(Config::parse("cgroup", 0, "bogus"), Err(unknown.clone()));
        assert_eq!(Config::parse("cgroup", 64, "zero"), Err(unknown));
        let depth = Error::InvalidConfig { field: "max-depth" };
        assert_eq!(Config::parse("flat", 0, "bogus"), Err(depth.clone()));
        assert_eq!(Config::parse("nested", 0, "zero"), Err(depth));
        assert_eq!(
            Config::parse("nested", 64, "bogus"),
            Err(Error::InvalidConfig {
                field: "missing-limit"
            })
        );
    }

    #[test]
    fn invalid_config_names_its_field() {
        let e = Config::parse("nested", 64, "x").unwrap_err();
        assert_eq!(e.kind(), "invalid-config");
        assert_eq!(
            e.to_string(),
            "configuration value missing-limit is out of range"
        );
        assert_eq!(
            Config::parse("nested", 0, "zero").unwrap_err().to_string(),
            "configuration value max-depth is out of range"
        );
    }
}
