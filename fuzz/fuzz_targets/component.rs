//! The component through the Rust host on arbitrary inputs: never a guest
//! fault (no trap, and the default fuel and memory suffice for inputs this
//! small), and the same answer as the native core, message for message.
#![no_main]

use delimiter as h;
use delimiter_core as c;
use delimiter_fuzz::Scenario;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    // One enforcer for the run: compiling the component per input would
    // make the target a benchmark of cranelift.
    static ENFORCER: RefCell<h::Enforcer> = RefCell::new(h::Enforcer::new());
}

fn config(c: &c::Config) -> h::Config {
    h::Config {
        model: match c.model {
            c::Model::Flat => h::Model::Flat,
            c::Model::StrictTwoLevel => h::Model::StrictTwoLevel,
            c::Model::Nested => h::Model::Nested,
        },
        max_depth: c.max_depth,
        missing_limit: match c.missing_limit {
            c::MissingLimit::Zero => h::MissingLimit::Zero,
            c::MissingLimit::Unlimited => h::MissingLimit::Unlimited,
        },
    }
}

fn entry(e: &c::UsageEntry) -> h::UsageEntry {
    h::UsageEntry {
        project: e.project.clone(),
        resource: e.resource.clone(),
        usage: e.usage,
    }
}

fn snapshot(s: &c::Snapshot) -> h::Snapshot {
    h::Snapshot {
        projects: s
            .projects
            .iter()
            .map(|p| h::Project {
                id: p.id.clone(),
                parent: p.parent.clone(),
            })
            .collect(),
        limits: h::Limits {
            registered: s
                .limits
                .registered
                .iter()
                .map(|l| h::RegisteredLimit {
                    resource: l.resource.clone(),
                    limit: l.limit,
                })
                .collect(),
            project: s
                .limits
                .project
                .iter()
                .map(|l| h::ProjectLimit {
                    project: l.project.clone(),
                    resource: l.resource.clone(),
                    limit: l.limit,
                })
                .collect(),
        },
        usage: match &s.usage {
            c::Usage::Local(entries) => h::Usage::Local(entries.iter().map(entry).collect()),
            c::Usage::Path(p) => h::Usage::Path(h::PathUsage {
                local: p
                    .local
                    .iter()
                    .map(|u| h::ResourceUsage {
                        resource: u.resource.clone(),
                        usage: u.usage,
                    })
                    .collect(),
                subtree: p.subtree.iter().map(entry).collect(),
            }),
        },
        generations: s
            .generations
            .iter()
            .map(|g| h::Generation {
                project: g.project.clone(),
                generation: g.generation,
            })
            .collect(),
    }
}

fn request(r: &c::Request) -> h::Request {
    h::Request {
        project: r.project.clone(),
        deltas: r
            .deltas
            .iter()
            .map(|d| h::Delta {
                resource: d.resource.clone(),
                delta: d.delta,
            })
            .collect(),
    }
}

/// The host's answer in the core's terms (an error as its message).
fn as_core(got: Result<h::Decision, h::Error>) -> Result<c::Decision, String> {
    match got {
        Ok(h::Decision::Admitted(claim)) => Ok(c::Decision::Admitted {
            claim: claim
                .into_iter()
                .map(|e| c::ClaimEntry {
                    project: e.project,
                    generation: e.generation,
                })
                .collect(),
        }),
        Ok(h::Decision::Refused(violations)) => Ok(c::Decision::Refused {
            violations: violations
                .into_iter()
                .map(|v| c::Violation {
                    project: v.project,
                    resource: v.resource,
                    limit: v.limit,
                    usage: v.usage,
                    delta: v.delta,
                })
                .collect(),
        }),
        Err(h::Error::Invalid(i)) => Err(i.message),
        Err(other) => panic!("the component failed: {other}"),
    }
}

fuzz_target!(|s: Scenario| {
    let got = ENFORCER.with(|e| {
        e.borrow_mut().evaluate(
            &config(&s.config),
            &snapshot(&s.snapshot),
            &request(&s.request),
        )
    });
    let native = c::evaluate(&s.config, &s.snapshot, &s.request).map_err(|e| e.to_string());
    assert_eq!(as_core(got), native);
});
