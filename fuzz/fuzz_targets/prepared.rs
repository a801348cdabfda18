//! `Prepared` on arbitrary trees, limits, requests and path numbers (lists
//! of any length, numbers at the 64-bit extremes): no panic; preparing
//! fails exactly as evaluate does; number_request fails exactly as
//! evaluate does; by numbers is by names; where the lists fit the path,
//! the answer is evaluate's for the same numbers as path usage; and a
//! batch of the request twice starts with its lone answer.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use delimiter_core::*;
use delimiter_fuzz::{self as f, Scenario};
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct Input {
    s: Scenario,
    local: Vec<i64>,
    subtree: Vec<i64>,
    generations: Vec<u64>,
    /// Numbers to try that number_request did not give.
    stray: (u32, u32),
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let s: Scenario = u.arbitrary()?;
        let n = s.request.deltas.len();
        // Mostly the right lengths for a path of up to 4, sometimes not.
        let depth = u.int_in_range(1usize..=4)?;
        let fit = u.ratio(7u8, 8u8)?;
        let len = |u: &mut Unstructured<'_>, want: usize| -> Result<usize> {
            Ok(if fit {
                want
            } else {
                u.int_in_range(0..=want + 2)?
            })
        };
        let (l, t, g) = (len(u, n)?, len(u, n * depth)?, len(u, depth)?);
        Ok(Input {
            local: (0..l).map(|_| f::value(u)).collect::<Result<_>>()?,
            subtree: (0..t).map(|_| f::value(u)).collect::<Result<_>>()?,
            generations: (0..g).map(|_| f::generation(u)).collect::<Result<_>>()?,
            stray: (u.arbitrary()?, u.arbitrary()?),
            s,
        })
    }
}

fuzz_target!(|input: Input| {
    let Input {
        s,
        local,
        subtree,
        generations,
        stray,
    } = input;
    let (c, snap, req) = (&s.config, &s.snapshot, &s.request);
    let names: Vec<&str> = req.deltas.iter().map(|d| d.resource.as_str()).collect();
    // evaluate on the same numbers given as path usage (when they fit).
    let as_path = |path: &[&str]| -> Option<Snapshot> {
        let n = names.len();
        if local.len() != n || subtree.len() != n * path.len() || generations.len() != path.len() {
            return None;
        }
        let subtree_entries = (0..subtree.len())
            .map(|i| UsageEntry {
                project: path[i / n].to_string(),
                resource: names[i % n].to_string(),
                usage: subtree[i],
            })
            .collect();
        Some(Snapshot {
            projects: snap.projects.clone(),
            limits: snap.limits.clone(),
            usage: Usage::Path(PathUsage {
                local: names
                    .iter()
                    .zip(&local)
                    .map(|(r, &usage)| ResourceUsage {
                        resource: r.to_string(),
                        usage,
                    })
                    .collect(),
                subtree: subtree_entries,
            }),
            generations: path
                .iter()
                .zip(&generations)
                .map(|(p, &generation)| Generation {
                    project: p.to_string(),
                    generation,
                })
                .collect(),
        })
    };

    let mut prepared = match Prepared::new(c, &snap.projects, &snap.limits) {
        Ok(p) => p,
        Err(e) => {
            // Config, request, tree, limits: evaluate's order. Only when the
            // request passes its own checks is the tree's error the first.
            let plain = Snapshot {
                usage: Usage::default(),
                generations: vec![],
                ..snap.clone()
            };
            let want = evaluate(c, &plain, req);
            if !matches!(
                want,
                Err(Error::EmptyId { .. }) | Err(Error::DuplicateResource { .. })
            ) {
                assert_eq!(Err(e), want);
            }
            return;
        }
    };
    let by_names = prepared.evaluate(&req.project, &req.deltas, &local, &subtree, &generations);
    let numbered = match prepared.number_request(&req.project, &names) {
        Ok(numbered) => numbered,
        Err(e) => {
            assert_eq!(Err(e), by_names);
            return;
        }
    };
    let deltas = numbered.numbered_deltas(&req.deltas);
    let by_numbers =
        prepared.evaluate_numbers(numbered.node, &deltas, &local, &subtree, &generations);
    assert_eq!(by_numbers, by_names);
    let path: Vec<&str> = numbered.path.iter().map(String::as_str).collect();
    let lone = by_names.map(|d| d.named(&path, &generations));
    if let Some(snapshot) = as_path(&path) {
        assert_eq!(lone, evaluate(c, &snapshot, req));
    }
    // The request twice as a prepared batch, both on the same numbers: the
    // first is its lone decision; the second is the same again when the
    // first took no room (refused, failed, or no delta moved usage), and
    // otherwise what the numbers raised by the first's deltas decide
    // (extreme numbers make that overflow: an error, never a panic).
    let member = PreparedMember {
        request: req.clone(),
        local: local.clone(),
        subtree: subtree.clone(),
        generations: generations.clone(),
    };
    let batch = prepared.evaluate_batch(&[member.clone(), member]);
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0], lone);
    let moved = req.deltas.iter().any(|d| d.delta != 0);
    if !matches!(lone, Ok(Decision::Admitted { .. })) || !moved {
        assert_eq!(batch[1], lone);
    }
    // A number it never gave is a typed error, never a panic.
    let _ = prepared.evaluate_numbers(stray.0, &[(stray.1, 1)], &[0], &[0], &[0]);
    let bounded = numbered.kept as usize + names.len();
    assert!(
        prepared
            .evaluate_numbers(numbered.node, &[(bounded as u32, 1)], &[0], &[], &[])
            .is_err()
    );
});
