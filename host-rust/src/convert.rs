//! The edge: this crate's types to the WIT bindings' types (module [`wit`])
//! and back (the functions at the top level). Nothing else converts.

use crate::runtime::wit_types as w;
use crate::*;

/// This crate's types, as WIT values.
pub(crate) mod wit {
    use super::w;
    use crate::*;

    pub fn config(c: &Config) -> w::Config {
        w::Config {
            model: match c.model {
                Model::Flat => w::Model::Flat,
                Model::StrictTwoLevel => w::Model::StrictTwoLevel,
                Model::Nested => w::Model::Nested,
            },
            max_depth: c.max_depth,
            missing_limit: match c.missing_limit {
                MissingLimit::Zero => w::MissingLimit::Zero,
                MissingLimit::Unlimited => w::MissingLimit::Unlimited,
            },
        }
    }

    pub fn project(p: &Project) -> w::Project {
        w::Project {
            id: p.id.clone(),
            parent: p.parent.clone(),
        }
    }

    pub fn limits(l: &Limits) -> w::Limits {
        w::Limits {
            registered: l
                .registered
                .iter()
                .map(|r| w::RegisteredLimit {
                    resource_name: r.resource.clone(),
                    limit: r.limit,
                })
                .collect(),
            project: l
                .project
                .iter()
                .map(|p| w::ProjectLimit {
                    project: p.project.clone(),
                    resource_name: p.resource.clone(),
                    limit: p.limit,
                })
                .collect(),
        }
    }

    fn usage_entry(u: &UsageEntry) -> w::UsageEntry {
        w::UsageEntry {
            project: u.project.clone(),
            resource_name: u.resource.clone(),
            usage: u.usage,
        }
    }

    fn resource_usage(u: &ResourceUsage) -> w::ResourceUsage {
        w::ResourceUsage {
            resource_name: u.resource.clone(),
            usage: u.usage,
        }
    }

    pub fn snapshot(s: &Snapshot) -> w::Snapshot {
        w::Snapshot {
            projects: s.projects.iter().map(project).collect(),
            limits: limits(&s.limits),
            usage: match &s.usage {
                Usage::Local(entries) => w::Usage::Local(entries.iter().map(usage_entry).collect()),
                Usage::Path(path) => w::Usage::Path(w::PathUsage {
                    local: path.local.iter().map(resource_usage).collect(),
                    subtree: path.subtree.iter().map(usage_entry).collect(),
                }),
            },
            generations: s
                .generations
                .iter()
                .map(|g| w::Generation {
                    project: g.project.clone(),
                    generation: g.generation,
                })
                .collect(),
        }
    }

    pub fn delta(d: &Delta) -> w::Delta {
        w::Delta {
            resource_name: d.resource.clone(),
            delta: d.delta,
        }
    }

    pub fn request(r: &Request) -> w::Request {
        w::Request {
            project: r.project.clone(),
            deltas: r.deltas.iter().map(delta).collect(),
        }
    }

    pub fn policy(p: &RetryPolicy) -> w::RetryPolicy {
        w::RetryPolicy {
            max_attempts: p.max_attempts,
            base_delay_us: p.base_delay_us,
            max_delay_us: p.max_delay_us,
            seed: p.seed,
        }
    }

    pub fn oslo(o: &OsloCheck) -> w::OsloRequest {
        let limits = |list: &[ResourceLimit]| {
            list.iter()
                .map(|l| w::ResourceLimit {
                    resource_name: l.resource.clone(),
                    limit: l.limit,
                })
                .collect()
        };
        w::OsloRequest {
            project_id: o.project_id.clone(),
            deltas: o.deltas.iter().map(delta).collect(),
            registered: limits(&o.registered),
            project: limits(&o.project),
            usage: o.usage.iter().map(resource_usage).collect(),
        }
    }

    pub fn error(e: &InvalidInput) -> w::Error {
        use InvalidInput as I;
        use w::Error as W;
        let project_ref = |p: &String| w::ProjectRef { project: p.clone() };
        let usage_ref = |p: &String, r: &String| w::UsageRef {
            project: p.clone(),
            resource_name: r.clone(),
        };
        let resource_ref = |r: &String| w::ResourceRef {
            resource_name: r.clone(),
        };
        match e {
            I::EmptyId { what } => W::EmptyId(match what {
                IdKind::Project => w::IdKind::Project,
                IdKind::Parent => w::IdKind::Parent,
                IdKind::Resource => w::IdKind::ResourceName,
            }),
            I::DuplicateProject { project } => W::DuplicateProject(project_ref(project)),
            I::UnknownParent { project, parent } => W::UnknownParent(w::UnknownParentInfo {
                project: project.clone(),
                parent: parent.clone(),
            }),
            I::Cycle { project } => W::Cycle(project_ref(project)),
            I::TooDeep {
                project,
                depth,
                max_depth,
            } => W::TooDeep(w::TooDeepInfo {
                project: project.clone(),
                depth: *depth,
                max_depth: *max_depth,
            }),
            I::UnknownProject { project } => W::UnknownProject(project_ref(project)),
            I::InvalidLimit {
                project,
                resource,
                limit,
            } => W::InvalidLimit(w::InvalidLimitInfo {
                project: project.clone(),
                resource_name: resource.clone(),
                limit: *limit,
            }),
            I::DuplicateLimit { project, resource } => W::DuplicateLimit(w::LimitRef {
                project: project.clone(),
                resource_name: resource.clone(),
            }),
            I::NegativeUsage {
                project,
                resource,
                usage,
            } => W::NegativeUsage(w::NegativeUsageInfo {
                project: project.clone(),
                resource_name: resource.clone(),
                usage: *usage,
            }),
            I::DuplicateUsage { project, resource } => {
                W::DuplicateUsage(usage_ref(project, resource))
            }
            I::InconsistentUsage { project, resource } => {
                W::InconsistentUsage(usage_ref(project, resource))
            }
            I::DuplicateGeneration { project } => W::DuplicateGeneration(project_ref(project)),
            I::MissingGeneration { project } => W::MissingGeneration(project_ref(project)),
            I::DuplicateResource { resource } => W::DuplicateResource(resource_ref(resource)),
            I::ReleaseBelowZero {
                project,
                resource,
                usage,
                delta,
            } => W::ReleaseBelowZero(w::ReleaseInfo {
                project: project.clone(),
                resource_name: resource.clone(),
                usage: *usage,
                delta: *delta,
            }),
            I::NegativeDelta { resource, delta } => W::NegativeDelta(w::Delta {
                resource_name: resource.clone(),
                delta: *delta,
            }),
            I::Overflow { project, resource } => W::Overflow(usage_ref(project, resource)),
            I::UnknownModel { name } => W::UnknownModel(w::ModelName { name: name.clone() }),
            I::InvalidConfig { field } => W::InvalidConfig(w::ConfigField {
                field: field.clone(),
            }),
            I::MissingUsage { resource } => W::MissingUsage(resource_ref(resource)),
            I::ShapeMismatch {
                field,
                expected,
                actual,
            } => W::ShapeMismatch(w::ShapeMismatchInfo {
                field: field.clone(),
                expected: *expected,
                actual: *actual,
            }),
        }
    }
}

// ---- WIT -> this crate ------------------------------------------------------

pub(crate) fn model(m: w::Model) -> Model {
    match m {
        w::Model::Flat => Model::Flat,
        w::Model::StrictTwoLevel => Model::StrictTwoLevel,
        w::Model::Nested => Model::Nested,
    }
}

pub(crate) fn claim_entry(c: w::ClaimEntry) -> ClaimEntry {
    ClaimEntry {
        project: c.project,
        generation: c.generation,
    }
}

pub(crate) fn delta(d: w::Delta) -> Delta {
    Delta {
        resource: d.resource_name,
        delta: d.delta,
    }
}

pub(crate) fn request(r: w::Request) -> Request {
    Request {
        project: r.project,
        deltas: r.deltas.into_iter().map(delta).collect(),
    }
}

pub(crate) use w::PathDecision;

pub(crate) fn violation(v: w::Violation) -> Violation {
    Violation {
        project: v.project,
        resource: v.resource_name,
        limit: v.limit,
        usage: v.usage,
        delta: v.delta,
    }
}

pub(crate) fn decision(d: w::Decision) -> Decision {
    match d {
        w::Decision::Admitted(claim) => Decision::Admitted {
            claim: claim.into_iter().map(claim_entry).collect(),
        },
        w::Decision::Refused(violations) => Decision::Refused {
            violations: violations.into_iter().map(violation).collect(),
        },
    }
}

pub(crate) fn headroom(h: w::ResourceHeadroom) -> ResourceHeadroom {
    ResourceHeadroom {
        resource: h.resource_name,
        room: match h.room {
            w::Room::Unlimited => Room::Unlimited,
            w::Room::Limited(n) => Room::Limited(n),
        },
    }
}

pub(crate) fn count(c: w::Count) -> Count {
    match c {
        w::Count::Unlimited => Count::Unlimited,
        w::Count::Units(n) => Count::Units(n),
    }
}

pub(crate) fn finding(f: w::Finding) -> Finding {
    match f {
        w::Finding::Invalid(e) => Finding::Invalid(invalid_input(e)),
        w::Finding::ChildLimitExceedsParent(x) => Finding::ChildLimitExceedsParent {
            parent: x.parent,
            child: x.child,
            resource: x.resource_name,
            parent_limit: x.parent_limit,
            child_limit: x.child_limit,
        },
    }
}

pub(crate) fn over_limit_info(o: w::OverLimitInfo) -> OverLimitInfo {
    OverLimitInfo {
        resource_name: o.resource_name,
        limit: o.limit,
        current_usage: o.current_usage,
        delta: o.delta,
    }
}

pub(crate) fn consumed(c: w::Consumed) -> Consumed {
    Consumed {
        claim: c.claim.into_iter().map(claim_entry).collect(),
        attempts: c.attempts,
    }
}

pub(crate) fn consume_error(e: w::ConsumeError) -> Error {
    match e {
        w::ConsumeError::OverLimit(o) => Error::OverLimit {
            violations: o.violations.into_iter().map(violation).collect(),
            attempts: o.attempts,
        },
        w::ConsumeError::RetriesExhausted(attempts) => Error::RetriesExhausted { attempts },
        w::ConsumeError::Storage(s) => Error::Storage {
            message: s.message,
            attempts: s.attempts,
        },
        w::ConsumeError::Invalid(e) => invalid(e),
    }
}

pub(crate) fn invalid(e: w::Error) -> Error {
    Error::Invalid(invalid_input(e))
}

pub(crate) fn invalid_input(e: w::Error) -> InvalidInput {
    use InvalidInput as I;
    use w::Error as W;
    match e {
        W::EmptyId(what) => I::EmptyId {
            what: match what {
                w::IdKind::Project => IdKind::Project,
                w::IdKind::Parent => IdKind::Parent,
                w::IdKind::ResourceName => IdKind::Resource,
            },
        },
        W::DuplicateProject(r) => I::DuplicateProject { project: r.project },
        W::UnknownParent(i) => I::UnknownParent {
            project: i.project,
            parent: i.parent,
        },
        W::Cycle(r) => I::Cycle { project: r.project },
        W::TooDeep(i) => I::TooDeep {
            project: i.project,
            depth: i.depth,
            max_depth: i.max_depth,
        },
        W::UnknownProject(r) => I::UnknownProject { project: r.project },
        W::InvalidLimit(i) => I::InvalidLimit {
            project: i.project,
            resource: i.resource_name,
            limit: i.limit,
        },
        W::DuplicateLimit(r) => I::DuplicateLimit {
            project: r.project,
            resource: r.resource_name,
        },
        W::NegativeUsage(i) => I::NegativeUsage {
            project: i.project,
            resource: i.resource_name,
            usage: i.usage,
        },
        W::DuplicateUsage(r) => I::DuplicateUsage {
            project: r.project,
            resource: r.resource_name,
        },
        W::InconsistentUsage(r) => I::InconsistentUsage {
            project: r.project,
            resource: r.resource_name,
        },
        W::DuplicateGeneration(r) => I::DuplicateGeneration { project: r.project },
        W::MissingGeneration(r) => I::MissingGeneration { project: r.project },
        W::DuplicateResource(r) => I::DuplicateResource {
            resource: r.resource_name,
        },
        W::ReleaseBelowZero(i) => I::ReleaseBelowZero {
            project: i.project,
            resource: i.resource_name,
            usage: i.usage,
            delta: i.delta,
        },
        W::NegativeDelta(d) => I::NegativeDelta {
            resource: d.resource_name,
            delta: d.delta,
        },
        W::Overflow(r) => I::Overflow {
            project: r.project,
            resource: r.resource_name,
        },
        W::UnknownModel(m) => I::UnknownModel { name: m.name },
        W::InvalidConfig(f) => I::InvalidConfig { field: f.field },
        W::MissingUsage(r) => I::MissingUsage {
            resource: r.resource_name,
        },
        W::ShapeMismatch(s) => I::ShapeMismatch {
            field: s.field,
            expected: s.expected,
            actual: s.actual,
        },
    }
}
