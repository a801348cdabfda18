//! How much of each resource a project could still consume.

use crate::error::Result;
use crate::limits::Limit;
use crate::model::Config;
use crate::snapshot::{Snapshot, View};

/// The room left for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// No finite limit on the constraining path.
    Unlimited,
    /// The minimum of L(a, r) - U(a, r) over the constraining path, never
    /// below zero.
    Limited(i64),
}

/// Headroom of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceHeadroom {
    pub resource: String,
    pub room: Room,
}

/// The headroom of `project` for each of `resources`, sorted by resource name.
pub fn headroom(
    config: &Config,
    snapshot: &Snapshot,
    project: &str,
    resources: &[String],
) -> Result<Vec<ResourceHeadroom>> {
    let names: Vec<&str> = resources.iter().map(String::as_str).collect();
    let view = View::build(config, snapshot, project, &names)?;
    let mut out: Vec<ResourceHeadroom> = names
        .iter()
        .enumerate()
        .map(|(r, name)| {
            let room = view.constraints[r]
                .iter()
                .filter_map(|c| match c.limit {
                    // L >= 0 and U >= 0, so L - U cannot overflow.
                    Limit::Finite(limit) => Some((limit - c.usage).max(0)),
                    Limit::Unlimited => None,
                })
                .min();
            ResourceHeadroom {
                resource: name.to_string(),
                room: room.map_or(Room::Unlimited, Room::Limited),
            }
        })
        .collect();
    out.sort_by(|a, b| a.resource.cmp(&b.resource));
    Ok(out)
}
