//! The conformance vectors' shapes (`conformance/README.md`), read straight
//! into this crate's types (the WIT's generated ones, which deserialize
//! with serde) and written back as the vectors write results. The CLI reads
//! its files in these shapes and the Rust conformance runner reads every
//! vector with them, so the two cannot drift apart.
//!
//! Only what the vectors lay out differently from the WIT is spelled here:
//! a snapshot's limits as two top-level lists, usage as `{local: ...}` or
//! `{path: ...}`, names for the model and missing-limit rule (checked by
//! the core), and oslo.limit's field names.

use crate::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// A case's `config`: names, checked by the core (`parse-config`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigShape {
    pub model: Option<String>,
    pub max_depth: Option<u32>,
    pub missing_limit: Option<String>,
}

impl ConfigShape {
    /// The config, with the documented defaults for what is missing.
    pub fn config(&self, enforcer: &mut Enforcer) -> Result<Config, Error> {
        let default = Config::default();
        enforcer.parse_config(
            self.model.as_deref().unwrap_or(default.model.as_str()),
            self.max_depth.unwrap_or(default.max_depth),
            self.missing_limit
                .as_deref()
                .unwrap_or(default.missing_limit.as_str()),
        )
    }
}

/// A case's `snapshot`; every list may be missing (empty).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotShape {
    #[serde(default)]
    pub projects: Vec<Project>,
    #[serde(default)]
    pub registered_limits: Vec<RegisteredLimit>,
    #[serde(default)]
    pub project_limits: Vec<ProjectLimit>,
    /// `{local: [...]}` or `{path: {...}}` (a map in YAML too, not a tag).
    #[serde(default, with = "serde_norway::with::singleton_map")]
    pub usage: Option<UsageShape>,
    #[serde(default)]
    pub generations: Vec<Generation>,
}

/// Usage as the vectors write it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum UsageShape {
    Local(Vec<UsageEntry>),
    Path(PathUsageShape),
}

/// Path usage with either list allowed to be missing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathUsageShape {
    #[serde(default)]
    pub local: Vec<ResourceUsage>,
    #[serde(default)]
    pub subtree: Vec<UsageEntry>,
}

impl SnapshotShape {
    pub fn limits(&self) -> Limits {
        Limits {
            registered: self.registered_limits.clone(),
            project: self.project_limits.clone(),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            projects: self.projects.clone(),
            limits: self.limits(),
            usage: match &self.usage {
                None => Usage::default(),
                Some(UsageShape::Local(entries)) => Usage::Local(entries.clone()),
                Some(UsageShape::Path(p)) => Usage::Path(PathUsage {
                    local: p.local.clone(),
                    subtree: p.subtree.clone(),
                }),
            },
            generations: self.generations.clone(),
        }
    }
}

/// An oslo-check case's `oslo`, in oslo.limit's terms.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsloShape {
    pub project_id: Option<String>,
    #[serde(default)]
    pub deltas: Vec<Delta>,
    #[serde(default)]
    pub registered_limits: Vec<ResourceLimit>,
    #[serde(default)]
    pub project_limits: Vec<ResourceLimit>,
    #[serde(default)]
    pub usage: Vec<ResourceUsage>,
}

impl OsloShape {
    pub fn request(&self) -> OsloRequest {
        OsloRequest {
            project_id: self.project_id.clone(),
            deltas: self.deltas.clone(),
            registered: self.registered_limits.clone(),
            project: self.project_limits.clone(),
            usage: self.usage.clone(),
        }
    }
}

// ---- results, as the vectors write them -----------------------------------

pub fn claim_json(claim: &[ClaimEntry]) -> Value {
    serde_json::to_value(claim).expect("claims serialize")
}

pub fn decision_json(decision: &Decision) -> Value {
    match decision {
        Decision::Admitted(claim) => json!({"admitted": true, "claim": claim_json(claim)}),
        Decision::Refused(violations) => json!({
            "admitted": false,
            "violations": serde_json::to_value(violations).expect("violations serialize"),
        }),
    }
}

pub fn headroom_json(rows: &[ResourceHeadroom]) -> Value {
    rows.iter()
        .map(|h| {
            let room = match h.room {
                Room::Unlimited => json!("unlimited"),
                Room::Limited(n) => json!(n),
            };
            json!({"resource": h.resource, "headroom": room})
        })
        .collect()
}

pub fn count_json(count: &Count) -> Value {
    match count {
        Count::Unlimited => json!({"count": "unlimited"}),
        Count::Units(n) => json!({"count": n}),
    }
}

pub fn over_limit_json(over: &[OverLimitInfo]) -> Value {
    json!({"over_limit": serde_json::to_value(over).expect("over-limit info serializes")})
}

/// The fields of an input error's payload, by WIT field name (`%resource`
/// is `resource`), enum values by their WIT case names.
pub fn invalid_fields(input: &InvalidInput) -> Map<String, Value> {
    let value = serde_json::to_value(input).expect("input errors serialize");
    // An externally tagged variant: {"Case": payload}.
    let payload = match value {
        Value::Object(case) => case.into_iter().next().map(|(_, p)| p),
        _ => None,
    };
    match payload {
        Some(Value::Object(mut fields)) => {
            // serde writes an enum value as its Rust case name (`Project`).
            if let InvalidInput::EmptyId(info) = input {
                fields.insert("what".into(), json!(info.what.as_str()));
            }
            fields
        }
        _ => Map::new(),
    }
}

/// A finding as `validate` vectors write it: the error kind with the
/// project and resource it names, or a child limit above its parent's.
pub fn finding_json(finding: &Finding) -> Value {
    match finding {
        Finding::Invalid(e) => {
            let fields = invalid_fields(&e.input);
            let mut m = Map::new();
            m.insert("kind".into(), json!(e.input.kind()));
            for key in ["project", "resource"] {
                if let Some(v) = fields.get(key).filter(|v| !v.is_null()) {
                    m.insert(key.into(), v.clone());
                }
            }
            Value::Object(m)
        }
        Finding::ChildLimitExceedsParent(x) => json!({
            "kind": "child-limit-exceeds-parent", "parent": x.parent, "child": x.child,
            "resource": x.resource, "parent_limit": x.parent_limit, "child_limit": x.child_limit,
        }),
    }
}
