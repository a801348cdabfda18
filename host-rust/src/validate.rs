//! Findings of a validation of a tree and its limits.

use crate::InvalidInput;

/// One problem found by [`validate`](crate::validate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Something that would make every decision fail with this error.
    Invalid(InvalidInput),
    /// Strict-two-level: a child's limit is above its parent's (-1 counts as
    /// above any finite limit; a parent of -1 constrains no child).
    ChildLimitExceedsParent {
        parent: String,
        child: String,
        resource: String,
        parent_limit: i64,
        child_limit: i64,
    },
}
