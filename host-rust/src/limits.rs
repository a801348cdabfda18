//! Limits as the caller knows them (Keystone unified limits or any source).

/// The value that means "no limit", as in Keystone's unified limits.
pub const UNLIMITED: i64 = -1;

/// The default limit of a resource for every project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegisteredLimit {
    pub resource: String,
    pub limit: i64,
}

impl RegisteredLimit {
    pub fn new(resource: impl Into<String>, limit: i64) -> Self {
        RegisteredLimit {
            resource: resource.into(),
            limit,
        }
    }
}

/// An override of the registered limit for one project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectLimit {
    pub project: String,
    pub resource: String,
    pub limit: i64,
}

impl ProjectLimit {
    pub fn new(project: impl Into<String>, resource: impl Into<String>, limit: i64) -> Self {
        ProjectLimit {
            project: project.into(),
            resource: resource.into(),
            limit,
        }
    }
}

/// All limits known to the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub registered: Vec<RegisteredLimit>,
    pub project: Vec<ProjectLimit>,
}
