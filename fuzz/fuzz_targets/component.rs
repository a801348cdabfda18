//! The component through the Rust embedding (`delimiter-embed`, which every
//! Rust-written host stands on) on arbitrary inputs: never a guest fault (no
//! trap, and the default fuel and memory suffice for inputs this small), and
//! the same answer as the native core, message for message.
#![no_main]

use delimiter_core as c;
use delimiter_fuzz::Scenario;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

/// The host's names for the WIT's types, as the `delimiter` crate
/// re-exports them.
mod h {
    pub use delimiter_embed::types::*;
    pub use delimiter_embed::{Enforcer, Error};
}

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

/// An answer as (admitted, its claim or violations as printed): the host's
/// generated types and the core's have the same fields in the same order,
/// so equal answers print alike.
type Shown = Result<(bool, String), String>;

fn shown_host(got: Result<h::Decision, h::Error>) -> Shown {
    match got {
        Ok(h::Decision::Admitted(claim)) => Ok((true, format!("{claim:?}"))),
        Ok(h::Decision::Refused(violations)) => Ok((false, format!("{violations:?}"))),
        Err(h::Error::Invalid(i)) => Err(i.message),
        Err(other) => panic!("the component failed: {other}"),
    }
}

fn shown_core(got: Result<c::Decision, c::Error>) -> Shown {
    match got {
        Ok(c::Decision::Admitted { claim }) => Ok((true, format!("{claim:?}"))),
        Ok(c::Decision::Refused { violations }) => Ok((false, format!("{violations:?}"))),
        Err(e) => Err(e.to_string()),
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
    let native = c::evaluate(&s.config, &s.snapshot, &s.request);
    assert_eq!(shown_host(got), shown_core(native));
});
