//! How many units of a per-unit request fit now (what Nova computes for a
//! multi-create: "how many of these servers can I still boot?").

use crate::decide::Delta;
use crate::error::{Error, Result};
use crate::limits::Limit;
use crate::model::Config;
use crate::snapshot::{Snapshot, View, check_request};

/// The outcome of [`max_count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// No positive per-unit delta meets a finite limit.
    Unlimited,
    /// The largest n such that n times every per-unit delta would be
    /// admitted (so usage plus n deltas also fits in 64 bits at every node
    /// the model checks).
    Units(i64),
}

/// The largest number of units of `per_unit` that `project` can consume now.
/// Per-unit deltas must be zero or more; zeros do not constrain.
pub fn max_count(
    config: &Config,
    snapshot: &Snapshot,
    project: &str,
    per_unit: &[Delta],
) -> Result<Count> {
    let names: Vec<&str> = per_unit.iter().map(|d| d.resource.as_str()).collect();
    let mut order: Vec<usize> = (0..per_unit.len()).collect();
    order.sort_by(|&a, &b| per_unit[a].resource.cmp(&per_unit[b].resource));
    // A request-side check: after config and the shared request checks,
    // before the snapshot is looked at.
    config.effective_max_depth()?;
    check_request(project, &names)?;
    if let Some(&r) = order.iter().find(|&&r| per_unit[r].delta < 0) {
        return Err(Error::NegativeDelta {
            resource: per_unit[r].resource.clone(),
            delta: per_unit[r].delta,
        });
    }
    let view = View::build(config, snapshot, project, &names)?;
    let positive = || order.iter().filter(|&&r| per_unit[r].delta > 0);
    // The room under each finite limit, in units.
    let limited = positive()
        .flat_map(|&r| {
            let d = per_unit[r].delta;
            view.constraints[r]
                .iter()
                .filter_map(move |c| match c.limit {
                    Limit::Finite(limit) => Some((limit - c.usage).max(0) / d),
                    Limit::Unlimited => None,
                })
        })
        .min();
    // evaluate's checked arithmetic: usage plus the delta must fit in 64
    // bits at every node the model checks, unlimited ones included, or the
    // answer is overflow rather than an admission; so n units never go
    // past that either.
    let in_range = positive()
        .flat_map(|&r| {
            let d = per_unit[r].delta;
            view.constraints[r]
                .iter()
                .map(move |c| (i64::MAX - c.usage) / d)
        })
        .min();
    let fit = limited.map(|n| in_range.map_or(n, |m| n.min(m)));
    Ok(fit.map_or(Count::Unlimited, Count::Units))
}
