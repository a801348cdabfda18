//! Usage as the caller supplies it, in one of two equivalent forms.

/// What one project uses of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageEntry {
    pub project: String,
    pub resource: String,
    pub usage: i64,
}

impl UsageEntry {
    pub fn new(project: impl Into<String>, resource: impl Into<String>, usage: i64) -> Self {
        UsageEntry {
            project: project.into(),
            resource: resource.into(),
            usage,
        }
    }
}

/// What the requesting project itself uses of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceUsage {
    pub resource: String,
    pub usage: i64,
}

impl ResourceUsage {
    pub fn new(resource: impl Into<String>, usage: i64) -> Self {
        ResourceUsage {
            resource: resource.into(),
            usage,
        }
    }
}

/// Usage pre-summed by the caller: the project's own local usage u(p, r)
/// and the subtree usage U(a, r) of the project and each of its ancestors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathUsage {
    pub local: Vec<ResourceUsage>,
    pub subtree: Vec<UsageEntry>,
}

/// Usage, in one of two forms. A (project, resource) pair not listed uses 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// Local usage u(p, r) of any project in the tree; subtrees are summed
    /// for you.
    Local(Vec<UsageEntry>),
    /// Pre-summed usage for the requesting project's path only (for trees
    /// too big to ship whole).
    Path(PathUsage),
}

impl Default for Usage {
    fn default() -> Self {
        Usage::Local(Vec::new())
    }
}
