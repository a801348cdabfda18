//! A snapshot of what the caller read.

use crate::{Generation, Limits, Project, Usage};

/// Everything read from the caller's storage at one point in time: the
/// project tree, the limits, the usage and the generations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub projects: Vec<Project>,
    pub limits: Limits,
    pub usage: Usage,
    pub generations: Vec<Generation>,
}
