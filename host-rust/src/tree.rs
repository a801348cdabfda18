//! Projects: the nodes of the tree.

/// One project: a non-empty id and an optional parent id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Project {
    pub id: String,
    pub parent: Option<String>,
}

impl Project {
    /// A root project.
    pub fn root(id: impl Into<String>) -> Self {
        Project {
            id: id.into(),
            parent: None,
        }
    }

    /// A project under `parent`.
    pub fn child(id: impl Into<String>, parent: impl Into<String>) -> Self {
        Project {
            id: id.into(),
            parent: Some(parent.into()),
        }
    }
}
