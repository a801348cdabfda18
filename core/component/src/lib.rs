//! Delimiter's core as a WebAssembly component (`wit/delimiter.wit`).
//!
//! This crate only converts: WIT values in, `delimiter_core` calls, WIT
//! values out. Every rule lives in the core. `consume` runs the core's own
//! retry loop over a [`delimiter_core::Store`] whose methods call the
//! host's imported `store` interface, so the loop exists once for every host.
//!
//! Build: `just component` (wasm32-unknown-unknown, then
//! `delimiter-component-encode` wraps the module into a component).
//!
//! On any other target the crate is empty, so that `cargo build
//! --workspace` and `cargo test --workspace` work natively (a native cdylib
//! cannot export the component's `name:space/interface#function` symbols).

#![cfg(target_arch = "wasm32")]

use delimiter_core as core;
use std::cell::RefCell;

wit_bindgen::generate!({
    world: "delimiter",
    path: "../../wit",
});

use delimiter::quota::store as host;
use delimiter::quota::types as wit;
use exports::delimiter::quota::quota::{Guest, GuestPrepared};

struct Component;

export!(Component);

impl Guest for Component {
    type Prepared = Prepared;

    fn prepare(
        config: wit::Config,
        projects: Vec<wit::Project>,
        limits: wit::Limits,
    ) -> Result<exports::delimiter::quota::quota::Prepared, wit::Invalid> {
        let projects: Vec<core::Project> = projects.into_iter().map(Into::into).collect();
        let prepared =
            core::Prepared::new(&config.into(), &projects, &limits.into()).map_err(error_out)?;
        Ok(exports::delimiter::quota::quota::Prepared::new(Prepared(
            RefCell::new(prepared),
        )))
    }

    fn evaluate(
        config: wit::Config,
        snapshot: wit::Snapshot,
        request: wit::Request,
    ) -> Result<wit::Decision, wit::Invalid> {
        let decision =
            core::evaluate(&config.into(), &snapshot.into(), &request.into()).map_err(error_out)?;
        Ok(decision_out(decision))
    }

    fn headroom(
        config: wit::Config,
        snapshot: wit::Snapshot,
        project: String,
        resources: Vec<String>,
    ) -> Result<Vec<wit::ResourceHeadroom>, wit::Invalid> {
        let rows = core::headroom(&config.into(), &snapshot.into(), &project, &resources)
            .map_err(error_out)?;
        Ok(rows
            .into_iter()
            .map(|h| wit::ResourceHeadroom {
                resource: h.resource,
                room: match h.room {
                    core::Room::Unlimited => wit::Room::Unlimited,
                    core::Room::Limited(n) => wit::Room::Limited(n),
                },
            })
            .collect())
    }

    fn max_count(
        config: wit::Config,
        snapshot: wit::Snapshot,
        request: wit::Request,
    ) -> Result<wit::Count, wit::Invalid> {
        let request: core::Request = request.into();
        let count = core::max_count(
            &config.into(),
            &snapshot.into(),
            &request.project,
            &request.deltas,
        )
        .map_err(error_out)?;
        Ok(match count {
            core::Count::Unlimited => wit::Count::Unlimited,
            core::Count::Units(n) => wit::Count::Units(n),
        })
    }

    fn validate(
        config: wit::Config,
        projects: Vec<wit::Project>,
        limits: wit::Limits,
    ) -> Vec<wit::Finding> {
        let projects: Vec<core::Project> = projects.into_iter().map(Into::into).collect();
        core::validate(&config.into(), &projects, &limits.into())
            .into_iter()
            .map(|f| match f {
                core::Finding::Invalid(e) => wit::Finding::Invalid(error_out(e)),
                core::Finding::ChildLimitExceedsParent {
                    parent,
                    child,
                    resource,
                    parent_limit,
                    child_limit,
                } => wit::Finding::ChildLimitExceedsParent(wit::ChildLimitExcess {
                    parent,
                    child,
                    resource,
                    parent_limit,
                    child_limit,
                }),
            })
            .collect()
    }

    fn oslo_check(check: wit::OsloRequest) -> Result<Vec<wit::OverLimitInfo>, wit::Invalid> {
        let limits = |list: Vec<wit::ResourceLimit>| {
            list.into_iter()
                .map(|l| core::ResourceLimit {
                    resource: l.resource,
                    limit: l.limit,
                })
                .collect()
        };
        let check = core::OsloCheck {
            project_id: check.project_id,
            deltas: check.deltas.into_iter().map(Into::into).collect(),
            registered: limits(check.registered),
            project: limits(check.project),
            usage: check.usage.into_iter().map(Into::into).collect(),
        };
        let over = core::oslo_check(&check).map_err(error_out)?;
        Ok(over
            .into_iter()
            .map(|o| wit::OverLimitInfo {
                resource_name: o.resource_name,
                limit: o.limit,
                current_usage: o.current_usage,
                delta: o.delta,
            })
            .collect())
    }

    fn parse_model(name: String) -> Result<wit::Model, wit::Invalid> {
        let model: core::Model = name.parse().map_err(error_out)?;
        Ok(model_out(model))
    }

    fn parse_config(
        model: String,
        max_depth: u32,
        missing_limit: String,
    ) -> Result<wit::Config, wit::Invalid> {
        let config = core::Config::parse(&model, max_depth, &missing_limit).map_err(error_out)?;
        Ok(config_out(config))
    }

    fn consume(
        config: wit::Config,
        policy: wit::RetryPolicy,
        request: wit::Request,
    ) -> Result<wit::Consumed, wit::ConsumeError> {
        core::consume(
            &config.into(),
            &policy.into(),
            &mut HostStore,
            &request.into(),
        )
        .map(consumed_out)
        .map_err(consume_error_out)
    }

    fn evaluate_batch(
        config: wit::Config,
        snapshot: wit::Snapshot,
        requests: Vec<wit::Request>,
    ) -> Vec<Result<wit::Decision, wit::Invalid>> {
        let requests: Vec<core::Request> = requests.into_iter().map(Into::into).collect();
        core::evaluate_batch(&config.into(), &snapshot.into(), &requests)
            .into_iter()
            .map(|d| d.map(decision_out).map_err(error_out))
            .collect()
    }

    fn consume_batch(
        config: wit::Config,
        policy: wit::RetryPolicy,
        requests: Vec<wit::Request>,
    ) -> Vec<Result<wit::Consumed, wit::ConsumeError>> {
        let requests: Vec<core::Request> = requests.into_iter().map(Into::into).collect();
        core::consume_batch(&config.into(), &policy.into(), &mut HostStore, &requests)
            .into_iter()
            .map(|r| r.map(consumed_out).map_err(consume_error_out))
            .collect()
    }
}

fn consumed_out(done: core::Consumed) -> wit::Consumed {
    wit::Consumed {
        claim: claim_out(done.claim),
        attempts: done.attempts,
    }
}

fn consume_error_out(error: core::ConsumeError) -> wit::ConsumeError {
    match error {
        core::ConsumeError::OverLimit {
            violations,
            attempts,
        } => wit::ConsumeError::OverLimit(wit::OverLimit {
            violations: violations_out(violations),
            attempts,
        }),
        core::ConsumeError::RetriesExhausted { attempts } => {
            wit::ConsumeError::RetriesExhausted(attempts)
        }
        core::ConsumeError::Storage { error, attempts } => {
            wit::ConsumeError::Storage(wit::StorageFailure {
                message: error.message,
                attempts,
            })
        }
        core::ConsumeError::Invalid(e) => wit::ConsumeError::Invalid(error_out(e)),
    }
}

/// The guest side of the `prepared` resource: the core's own, held in the
/// component's memory between calls. A `RefCell` because numbering a new
/// resource name changes it, and resource methods get `&self` (the
/// component runs one call at a time, so a borrow never meets another).
struct Prepared(RefCell<core::Prepared>);

impl GuestPrepared for Prepared {
    fn number_request(
        &self,
        project: String,
        resources: Vec<String>,
    ) -> Result<wit::NumberedRequest, wit::Invalid> {
        let names: Vec<&str> = resources.iter().map(String::as_str).collect();
        let mut prepared = self.0.borrow_mut();
        let numbered = prepared
            .number_request(&project, &names)
            .map_err(error_out)?;
        Ok(wit::NumberedRequest {
            node: numbered.node,
            path: numbered.path,
            resources: numbered.resources,
            kept: numbered.kept,
        })
    }

    fn evaluate(
        &self,
        node: u32,
        deltas: Vec<(u32, i64)>,
        local: Vec<i64>,
        subtree: Vec<i64>,
        generations: Vec<u64>,
    ) -> Result<wit::PathDecision, wit::Invalid> {
        let decision = self
            .0
            .borrow()
            .evaluate_numbers(node, &deltas, &local, &subtree, &generations)
            .map_err(error_out)?;
        Ok(match decision {
            core::PathDecision::Admitted { claim } => wit::PathDecision::Admitted(claim),
            core::PathDecision::Refused { violations } => {
                wit::PathDecision::Refused(violations_out(violations))
            }
        })
    }

    fn evaluate_batch(
        &self,
        members: Vec<wit::PreparedMember>,
    ) -> Vec<Result<wit::Decision, wit::Invalid>> {
        let members: Vec<core::PreparedMember> = members
            .into_iter()
            .map(|m| core::PreparedMember {
                request: m.request.into(),
                local: m.local,
                subtree: m.subtree,
                generations: m.generations,
            })
            .collect();
        self.0
            .borrow()
            .evaluate_batch(&members)
            .into_iter()
            .map(|d| d.map(decision_out).map_err(error_out))
            .collect()
    }
}

/// The core's storage interface, answered by the host's imports.
struct HostStore;

impl core::Store for HostStore {
    fn read(
        &mut self,
        project: &str,
        resources: &[&str],
    ) -> Result<core::Snapshot, core::StorageError> {
        let resources: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
        host::read(project, &resources)
            .map(Into::into)
            .map_err(core::StorageError::new)
    }

    fn commit(
        &mut self,
        claim: &[core::ClaimEntry],
        request: &core::Request,
    ) -> Result<core::CommitOutcome, core::StorageError> {
        host::commit(&claim_out(claim.to_vec()), &request_out(request))
            .map(commit_outcome_in)
            .map_err(core::StorageError::new)
    }

    fn backoff(&mut self, attempt: u32, delay_us: u64) {
        host::backoff(attempt, delay_us);
    }

    fn now_us(&mut self) -> u64 {
        host::now_us()
    }

    fn entropy(&mut self) -> u64 {
        host::entropy()
    }

    fn read_locked(
        &mut self,
        project: &str,
        resources: &[&str],
    ) -> Result<Option<core::Snapshot>, core::StorageError> {
        let resources: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
        host::read_locked(project, &resources)
            .map(|locked| locked.map(Into::into))
            .map_err(core::StorageError::new)
    }

    fn unlock(&mut self) {
        host::unlock();
    }
}

impl core::BatchStore for HostStore {
    fn read_batch(
        &mut self,
        projects: &[&str],
        resources: &[&str],
    ) -> Result<core::Snapshot, core::StorageError> {
        let projects: Vec<String> = projects.iter().map(|p| p.to_string()).collect();
        let resources: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
        host::read_batch(&projects, &resources)
            .map(Into::into)
            .map_err(core::StorageError::new)
    }

    fn commit_batch(
        &mut self,
        claim: &[core::ClaimEntry],
        members: &[&core::Request],
    ) -> Result<core::BatchOutcome, core::StorageError> {
        let members: Vec<wit::Request> = members.iter().map(|r| request_out(r)).collect();
        match host::commit_batch(&claim_out(claim.to_vec()), &members) {
            Ok(wit::BatchOutcome::Committed) => Ok(core::BatchOutcome::Committed),
            Ok(wit::BatchOutcome::Conflict(lost)) => {
                Ok(core::BatchOutcome::Conflict(commit_outcome_in(lost)))
            }
            Ok(wit::BatchOutcome::MemberFailed(failure)) => Ok(core::BatchOutcome::MemberFailed {
                index: failure.index,
                error: core::StorageError::new(failure.message),
            }),
            Err(message) => Err(core::StorageError::new(message)),
        }
    }
}

fn commit_outcome_in(outcome: wit::CommitOutcome) -> core::CommitOutcome {
    match outcome {
        wit::CommitOutcome::Committed => core::CommitOutcome::Committed,
        wit::CommitOutcome::Conflict => core::CommitOutcome::Conflict,
        wit::CommitOutcome::ConflictAfterWait => core::CommitOutcome::ConflictAfterWait,
    }
}

fn request_out(request: &core::Request) -> wit::Request {
    wit::Request {
        project: request.project.clone(),
        deltas: request
            .deltas
            .iter()
            .map(|d| wit::Delta {
                resource: d.resource.clone(),
                delta: d.delta,
            })
            .collect(),
    }
}

// ---- WIT -> core -----------------------------------------------------------

impl From<wit::Config> for core::Config {
    fn from(c: wit::Config) -> Self {
        core::Config {
            model: match c.model {
                wit::Model::Flat => core::Model::Flat,
                wit::Model::StrictTwoLevel => core::Model::StrictTwoLevel,
                wit::Model::Nested => core::Model::Nested,
            },
            max_depth: c.max_depth,
            missing_limit: match c.missing_limit {
                wit::MissingLimit::Zero => core::MissingLimit::Zero,
                wit::MissingLimit::Unlimited => core::MissingLimit::Unlimited,
            },
        }
    }
}

impl From<wit::Project> for core::Project {
    fn from(p: wit::Project) -> Self {
        core::Project {
            id: p.id,
            parent: p.parent,
        }
    }
}

impl From<wit::Limits> for core::Limits {
    fn from(l: wit::Limits) -> Self {
        core::Limits {
            registered: l
                .registered
                .into_iter()
                .map(|r| core::RegisteredLimit {
                    resource: r.resource,
                    limit: r.limit,
                })
                .collect(),
            project: l
                .project
                .into_iter()
                .map(|p| core::ProjectLimit {
                    project: p.project,
                    resource: p.resource,
                    limit: p.limit,
                })
                .collect(),
        }
    }
}

impl From<wit::UsageEntry> for core::UsageEntry {
    fn from(u: wit::UsageEntry) -> Self {
        core::UsageEntry {
            project: u.project,
            resource: u.resource,
            usage: u.usage,
        }
    }
}

impl From<wit::ResourceUsage> for core::ResourceUsage {
    fn from(u: wit::ResourceUsage) -> Self {
        core::ResourceUsage {
            resource: u.resource,
            usage: u.usage,
        }
    }
}

impl From<wit::Snapshot> for core::Snapshot {
    fn from(s: wit::Snapshot) -> Self {
        core::Snapshot {
            projects: s.projects.into_iter().map(Into::into).collect(),
            limits: s.limits.into(),
            usage: match s.usage {
                wit::Usage::Local(entries) => {
                    core::Usage::Local(entries.into_iter().map(Into::into).collect())
                }
                wit::Usage::Path(path) => core::Usage::Path(core::PathUsage {
                    local: path.local.into_iter().map(Into::into).collect(),
                    subtree: path.subtree.into_iter().map(Into::into).collect(),
                }),
            },
            generations: s
                .generations
                .into_iter()
                .map(|g| core::Generation {
                    project: g.project,
                    generation: g.generation,
                })
                .collect(),
        }
    }
}

impl From<wit::Delta> for core::Delta {
    fn from(d: wit::Delta) -> Self {
        core::Delta {
            resource: d.resource,
            delta: d.delta,
        }
    }
}

impl From<wit::RetryPolicy> for core::RetryPolicy {
    fn from(p: wit::RetryPolicy) -> Self {
        core::RetryPolicy {
            max_attempts: p.max_attempts,
            deadline_us: p.deadline_us,
            base_delay_us: p.base_delay_us,
            max_delay_us: p.max_delay_us,
            seed: p.seed,
            lock_after_conflict: p.lock_after_conflict,
        }
    }
}

impl From<wit::Request> for core::Request {
    fn from(r: wit::Request) -> Self {
        core::Request {
            project: r.project,
            deltas: r.deltas.into_iter().map(Into::into).collect(),
        }
    }
}

// ---- core -> WIT -----------------------------------------------------------

fn claim_out(claim: Vec<core::ClaimEntry>) -> Vec<wit::ClaimEntry> {
    claim
        .into_iter()
        .map(|c| wit::ClaimEntry {
            project: c.project,
            generation: c.generation,
        })
        .collect()
}

fn violations_out(violations: Vec<core::Violation>) -> Vec<wit::Violation> {
    violations
        .into_iter()
        .map(|v| wit::Violation {
            project: v.project,
            resource: v.resource,
            limit: v.limit,
            usage: v.usage,
            delta: v.delta,
        })
        .collect()
}

fn decision_out(decision: core::Decision) -> wit::Decision {
    match decision {
        core::Decision::Admitted { claim } => wit::Decision::Admitted(claim_out(claim)),
        core::Decision::Refused { violations } => {
            wit::Decision::Refused(violations_out(violations))
        }
    }
}

fn model_out(model: core::Model) -> wit::Model {
    match model {
        core::Model::Flat => wit::Model::Flat,
        core::Model::StrictTwoLevel => wit::Model::StrictTwoLevel,
        core::Model::Nested => wit::Model::Nested,
    }
}

fn config_out(c: core::Config) -> wit::Config {
    wit::Config {
        model: model_out(c.model),
        max_depth: c.max_depth,
        missing_limit: match c.missing_limit {
            core::MissingLimit::Zero => wit::MissingLimit::Zero,
            core::MissingLimit::Unlimited => wit::MissingLimit::Unlimited,
        },
    }
}

/// An invalid input with the core's own description, which every host
/// shows as is.
fn error_out(e: core::Error) -> wit::Invalid {
    let message = e.to_string();
    wit::Invalid {
        input: input_out(e),
        message,
    }
}

fn input_out(e: core::Error) -> wit::InvalidInput {
    use core::Error as E;
    use wit::InvalidInput as W;
    let project_ref = |project| wit::ProjectRef { project };
    let usage_ref = |project, resource| wit::UsageRef { project, resource };
    match e {
        E::EmptyId { what } => W::EmptyId(wit::EmptyIdInfo {
            what: match what {
                core::IdKind::Project => wit::IdKind::Project,
                core::IdKind::Parent => wit::IdKind::Parent,
                core::IdKind::Resource => wit::IdKind::Resource,
            },
        }),
        E::DuplicateProject { project } => W::DuplicateProject(project_ref(project)),
        E::UnknownParent { project, parent } => {
            W::UnknownParent(wit::UnknownParentInfo { project, parent })
        }
        E::Cycle { project } => W::Cycle(project_ref(project)),
        E::TooDeep {
            project,
            depth,
            max_depth,
        } => W::TooDeep(wit::TooDeepInfo {
            project,
            depth,
            max_depth,
        }),
        E::UnknownProject { project } => W::UnknownProject(project_ref(project)),
        E::InvalidLimit {
            project,
            resource,
            limit,
        } => W::InvalidLimit(wit::InvalidLimitInfo {
            project,
            resource,
            limit,
        }),
        E::DuplicateLimit { project, resource } => {
            W::DuplicateLimit(wit::LimitRef { project, resource })
        }
        E::NegativeUsage {
            project,
            resource,
            usage,
        } => W::NegativeUsage(wit::NegativeUsageInfo {
            project,
            resource,
            usage,
        }),
        E::DuplicateUsage { project, resource } => W::DuplicateUsage(usage_ref(project, resource)),
        E::InconsistentUsage { project, resource } => {
            W::InconsistentUsage(usage_ref(project, resource))
        }
        E::DuplicateGeneration { project } => W::DuplicateGeneration(project_ref(project)),
        E::MissingGeneration { project } => W::MissingGeneration(project_ref(project)),
        E::DuplicateResource { resource } => W::DuplicateResource(wit::ResourceRef { resource }),
        E::ReleaseBelowZero {
            project,
            resource,
            usage,
            delta,
        } => W::ReleaseBelowZero(wit::ReleaseInfo {
            project,
            resource,
            usage,
            delta,
        }),
        E::NegativeDelta { resource, delta } => W::NegativeDelta(wit::Delta { resource, delta }),
        E::Overflow { project, resource } => W::Overflow(usage_ref(project, resource)),
        E::UnknownModel { name } => W::UnknownModel(wit::ModelName { model: name }),
        E::InvalidConfig { field } => W::InvalidConfig(wit::ConfigField {
            field: field.to_string(),
        }),
        E::MissingUsage { resource } => W::MissingUsage(wit::ResourceRef { resource }),
        E::ShapeMismatch {
            field,
            expected,
            actual,
        } => W::ShapeMismatch(wit::ShapeMismatchInfo {
            field: field.to_string(),
            expected,
            actual,
        }),
    }
}
