//! How many units of a per-unit request fit now.

/// The outcome of [`max_count`](crate::max_count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Count {
    /// No positive per-unit delta meets a finite limit.
    Unlimited,
    /// The largest n such that n times every per-unit delta would be admitted.
    Units(i64),
}
