//! oslo.limit 2.12's flat check, with oslo.limit's names.

use crate::{Delta, ResourceUsage};

/// A limit of one resource (oslo.limit's `(resource_name, limit)` pair).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceLimit {
    pub resource: String,
    pub limit: i64,
}

impl ResourceLimit {
    pub fn new(resource: impl Into<String>, limit: i64) -> Self {
        ResourceLimit {
            resource: resource.into(),
            limit,
        }
    }
}

/// One `enforce(project_id, deltas)` call of oslo.limit's flat enforcer,
/// with its limits and usage already fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsloCheck {
    /// `None` checks against registered limits only.
    pub project_id: Option<String>,
    pub deltas: Vec<Delta>,
    /// Registered (default) limits.
    pub registered: Vec<ResourceLimit>,
    /// The project's own limits (ignored when `project_id` is `None`).
    pub project: Vec<ResourceLimit>,
    /// What the usage callback returned.
    pub usage: Vec<ResourceUsage>,
}

/// oslo.limit's `OverLimitInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OverLimitInfo {
    pub resource_name: String,
    pub limit: i64,
    pub current_usage: i64,
    pub delta: i64,
}
