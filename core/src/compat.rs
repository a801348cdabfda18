//! oslo.limit 2.12's flat check, reproduced exactly, quirks included.
//!
//! It differs from [`crate::evaluate`] on purpose, because services depend
//! on it: every resource in the deltas is checked whatever the sign of its
//! delta; any negative limit is unlimited; a resource with no limit at all
//! has limit 0; missing usage is an error (oslo.limit's ValueError), raised
//! for the first such resource in name order even if others are over;
//! usage values are taken as given (no sign check), as oslo.limit does; and
//! the empty string is a resource name like any other (oslo.limit accepts
//! it in the deltas, the limits and the usage), while an empty project id
//! is rejected, as oslo.limit rejects it.

use crate::decide::Delta;
use crate::error::{Error, IdKind, Result};
use crate::usage::ResourceUsage;
use std::collections::BTreeMap;

/// A limit of one resource (oslo.limit's `(resource_name, limit)` pair).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceLimit {
    pub resource: String,
    pub limit: i64,
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

/// Runs the check: an empty list means the request is within limits;
/// otherwise the list is `ProjectOverLimit.over_limit_info_list`, in
/// resource-name order.
pub fn oslo_check(check: &OsloCheck) -> Result<Vec<OverLimitInfo>> {
    if check.project_id.as_deref() == Some("") {
        return Err(Error::EmptyId {
            what: IdKind::Project,
        });
    }
    let owner = check.project_id.clone().unwrap_or_default();
    let deltas = unique(
        check.deltas.iter().map(|d| (d.resource.as_str(), d.delta)),
        |resource| Error::DuplicateResource { resource },
    )?;
    let registered = unique(
        check
            .registered
            .iter()
            .map(|l| (l.resource.as_str(), l.limit)),
        |resource| Error::DuplicateLimit {
            project: None,
            resource,
        },
    )?;
    let project = unique(
        check.project.iter().map(|l| (l.resource.as_str(), l.limit)),
        |resource| Error::DuplicateLimit {
            project: check.project_id.clone(),
            resource,
        },
    )?;
    let usage = unique(
        check.usage.iter().map(|u| (u.resource.as_str(), u.usage)),
        |resource| Error::DuplicateUsage {
            project: owner.clone(),
            resource,
        },
    )?;

    let mut over = Vec::new();
    // BTreeMap iteration is oslo.limit's `resources_to_check.sort()`.
    for (&resource, &delta) in &deltas {
        let limit = check
            .project_id
            .as_ref()
            .and_then(|_| project.get(resource))
            .or_else(|| registered.get(resource))
            .copied()
            .unwrap_or(0);
        let Some(&current) = usage.get(resource) else {
            return Err(Error::MissingUsage {
                resource: resource.to_string(),
            });
        };
        if limit < 0 {
            continue;
        }
        let proposed = current.checked_add(delta).ok_or_else(|| Error::Overflow {
            project: owner.clone(),
            resource: resource.to_string(),
        })?;
        if proposed > limit {
            over.push(OverLimitInfo {
                resource_name: resource.to_string(),
                limit,
                current_usage: current,
                delta,
            });
        }
    }
    Ok(over)
}

/// Indexes `(resource, value)` pairs, reporting the smallest repeated name
/// through `repeated` (oslo.limit takes dicts, which cannot repeat a key).
/// An empty name is a name: oslo.limit accepts it.
fn unique<'a>(
    pairs: impl Iterator<Item = (&'a str, i64)>,
    repeated: impl FnOnce(String) -> Error,
) -> Result<BTreeMap<&'a str, i64>> {
    let mut map = BTreeMap::new();
    let mut smallest: Option<&str> = None;
    for (resource, value) in pairs {
        if map.insert(resource, value).is_some() && smallest.is_none_or(|r| resource < r) {
            smallest = Some(resource);
        }
    }
    match smallest {
        Some(resource) => Err(repeated(resource.to_string())),
        None => Ok(map),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(resource: &str, limit: i64) -> ResourceLimit {
        ResourceLimit {
            resource: resource.into(),
            limit,
        }
    }

    fn usage(resource: &str, usage: i64) -> ResourceUsage {
        ResourceUsage {
            resource: resource.into(),
            usage,
        }
    }

    #[test]
    fn the_empty_resource_name_is_a_name() {
        let check = |delta: i64, usage_list: Vec<ResourceUsage>| {
            oslo_check(&OsloCheck {
                project_id: Some("p".into()),
                deltas: vec![Delta::new("", delta), Delta::new("servers", 1)],
                registered: vec![limit("", 5), limit("servers", 10)],
                project: vec![limit("", 3)],
                usage: usage_list,
            })
        };
        assert_eq!(
            check(1, vec![usage("", 2), usage("servers", 0)]),
            Ok(vec![])
        );
        assert_eq!(
            check(2, vec![usage("servers", 0), usage("", 2)]),
            Ok(vec![OverLimitInfo {
                resource_name: String::new(),
                limit: 3,
                current_usage: 2,
                delta: 2,
            }])
        );
        assert_eq!(
            check(1, vec![usage("servers", 0)]),
            Err(Error::MissingUsage {
                resource: String::new()
            })
        );
        // Still one value per name, and still a non-empty project id.
        assert_eq!(
            check(1, vec![usage("", 1), usage("", 1), usage("servers", 0)]),
            Err(Error::DuplicateUsage {
                project: "p".into(),
                resource: String::new()
            })
        );
        let empty_project = OsloCheck {
            project_id: Some(String::new()),
            deltas: vec![Delta::new("", 1)],
            ..OsloCheck::default()
        };
        assert_eq!(
            oslo_check(&empty_project),
            Err(Error::EmptyId {
                what: IdKind::Project
            })
        );
    }
}
