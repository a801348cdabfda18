//! How much of each resource a project could still consume.

/// The room left for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Room {
    /// No finite limit on the constraining path.
    Unlimited,
    /// The minimum of L(a, r) - U(a, r) over the constraining path, never
    /// below zero.
    Limited(i64),
}

/// Headroom of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceHeadroom {
    pub resource: String,
    pub room: Room,
}
