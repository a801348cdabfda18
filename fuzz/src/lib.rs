//! Structured inputs for the fuzz targets, and the cheap oracles they
//! assert besides "no panic".
//!
//! Ids and resource names come from small alphabets (the empty string
//! included) so that duplicates, cycles, unknown parents and unknown
//! projects happen often; numbers come mostly from the 64-bit extremes and
//! their neighbours; depths stay around the configured maximum.

use arbitrary::{Arbitrary, Result, Unstructured};
use delimiter_core::*;

const IDS: [&str; 7] = ["root", "a", "b", "c", "d", "e", ""];
const RESOURCES: [&str; 5] = ["r", "s", "servers", "t", ""];

/// An id from the small alphabet (the empty one rarely).
pub fn id(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(IDS[usize::from(u.int_in_range(0u8..=12)?).min(IDS.len() - 1)].to_string())
}

/// A resource name from the small alphabet (the empty one rarely).
pub fn resource(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(RESOURCES[usize::from(u.int_in_range(0u8..=10)?).min(RESOURCES.len() - 1)].to_string())
}

/// A signed value: small ones, -1 (unlimited), negatives, and the 64-bit
/// extremes with their neighbours.
pub fn value(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 => i64::MAX,
        1 => i64::MAX - 1,
        2 => i64::MIN,
        3 => -1,
        4 => -2,
        5 => i64::from(u.arbitrary::<i32>()?),
        6 => u.arbitrary()?,
        _ => i64::from(u.int_in_range(0u8..=12)?),
    })
}

pub fn generation(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=4)? {
        0 => u64::MAX,
        1 => 0,
        2 => u.arbitrary()?,
        _ => u64::from(u.int_in_range(1u8..=20)?),
    })
}

fn list<T>(
    u: &mut Unstructured<'_>,
    max: usize,
    mut item: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| item(u)).collect()
}

pub fn config(u: &mut Unstructured<'_>) -> Result<Config> {
    let model = *u.choose(&[Model::Flat, Model::StrictTwoLevel, Model::Nested])?;
    let max_depth = match u.int_in_range(0u8..=7)? {
        7 => DEFAULT_MAX_DEPTH,
        d => u32::from(d),
    };
    let missing_limit = *u.choose(&[MissingLimit::Zero, MissingLimit::Unlimited])?;
    Ok(Config {
        model,
        max_depth,
        missing_limit,
    })
}

pub fn projects(u: &mut Unstructured<'_>) -> Result<Vec<Project>> {
    list(u, 8, |u| {
        let id = id(u)?;
        Ok(match u.int_in_range(0u8..=3)? {
            0 => Project::root(id),
            _ => Project::child(id, self::id(u)?),
        })
    })
}

pub fn limits(u: &mut Unstructured<'_>) -> Result<Limits> {
    Ok(Limits {
        registered: list(u, 4, |u| {
            Ok(RegisteredLimit {
                resource: resource(u)?,
                limit: value(u)?,
            })
        })?,
        project: list(u, 6, |u| {
            Ok(ProjectLimit {
                project: id(u)?,
                resource: resource(u)?,
                limit: value(u)?,
            })
        })?,
    })
}

fn entry(u: &mut Unstructured<'_>) -> Result<UsageEntry> {
    Ok(UsageEntry {
        project: id(u)?,
        resource: resource(u)?,
        usage: value(u)?,
    })
}

pub fn usage(u: &mut Unstructured<'_>) -> Result<Usage> {
    Ok(if u.arbitrary()? {
        Usage::Local(list(u, 10, entry)?)
    } else {
        Usage::Path(PathUsage {
            local: list(u, 4, |u| {
                Ok(ResourceUsage {
                    resource: resource(u)?,
                    usage: value(u)?,
                })
            })?,
            subtree: list(u, 8, entry)?,
        })
    })
}

pub fn deltas(u: &mut Unstructured<'_>) -> Result<Vec<Delta>> {
    list(u, 4, |u| Ok(Delta::new(resource(u)?, value(u)?)))
}

/// One question: a config, a snapshot and a request.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub config: Config,
    pub snapshot: Snapshot,
    pub request: Request,
}

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Scenario {
            config: config(u)?,
            snapshot: Snapshot {
                projects: projects(u)?,
                limits: limits(u)?,
                usage: usage(u)?,
                generations: list(u, 8, |u| {
                    Ok(Generation {
                        project: id(u)?,
                        generation: generation(u)?,
                    })
                })?,
            },
            request: Request::new(id(u)?, deltas(u)?),
        })
    }
}

impl Scenario {
    /// The same question with every list the caller gives in reverse
    /// order: no answer (error, violation, finding) may depend on the order
    /// in which anything was listed.
    pub fn reversed(&self) -> Scenario {
        let mut s = self.clone();
        let snap = &mut s.snapshot;
        snap.projects.reverse();
        snap.limits.registered.reverse();
        snap.limits.project.reverse();
        match &mut snap.usage {
            Usage::Local(entries) => entries.reverse(),
            Usage::Path(path) => {
                path.local.reverse();
                path.subtree.reverse();
            }
        }
        snap.generations.reverse();
        s.request.deltas.reverse();
        s
    }
}

/// The oracles every decision must meet, whatever the input: the same
/// answer twice and in any listing order, and an admission that consumes
/// claims its project first (and, under flat, only it).
pub fn check_evaluate(s: &Scenario) {
    let got = evaluate(&s.config, &s.snapshot, &s.request);
    assert_eq!(
        got,
        evaluate(&s.config, &s.snapshot, &s.request),
        "not deterministic"
    );
    let r = s.reversed();
    assert_eq!(
        got,
        evaluate(&r.config, &r.snapshot, &r.request),
        "depends on listing order"
    );
    if let Ok(Decision::Admitted { claim }) = &got
        && s.request.deltas.iter().any(|d| d.delta > 0)
    {
        assert_eq!(
            claim.first().map(|c| c.project.as_str()),
            Some(s.request.project.as_str())
        );
        if s.config.model == Model::Flat {
            assert_eq!(claim.len(), 1, "flat claims the project alone");
        }
    }
}
