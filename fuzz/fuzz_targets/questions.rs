//! `headroom` and `max_count` on arbitrary snapshots: deterministic and
//! order-independent, headroom never negative, and max_count the admission
//! boundary (n units admitted, n + 1 not).
#![no_main]

use delimiter_core::*;
use delimiter_fuzz::Scenario;
use libfuzzer_sys::fuzz_target;

fn scaled(request: &Request, n: i64) -> Option<Request> {
    let deltas = request
        .deltas
        .iter()
        .map(|d| Some(Delta::new(d.resource.clone(), d.delta.checked_mul(n)?)))
        .collect::<Option<Vec<_>>>()?;
    Some(Request::new(request.project.clone(), deltas))
}

fuzz_target!(|s: Scenario| {
    let (c, snap, req) = (&s.config, &s.snapshot, &s.request);
    let r = s.reversed();
    let names: Vec<String> = req.deltas.iter().map(|d| d.resource.clone()).collect();
    let room = headroom(c, snap, &req.project, &names);
    let mut reversed_names = names.clone();
    reversed_names.reverse();
    assert_eq!(
        room,
        headroom(&r.config, &r.snapshot, &r.request.project, &reversed_names)
    );
    for row in room.iter().flatten() {
        if let Room::Limited(left) = row.room {
            assert!(left >= 0, "negative headroom {row:?}");
        }
    }

    let count = max_count(c, snap, &req.project, &req.deltas);
    assert_eq!(
        count,
        max_count(
            &r.config,
            &r.snapshot,
            &r.request.project,
            &r.request.deltas
        )
    );
    if let Ok(Count::Units(n)) = count {
        // max_count reads no generation; evaluate needs the claim's. With
        // one for every project, only the limits decide.
        let mut ids: Vec<&str> = snap.projects.iter().map(|p| p.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let snap = &Snapshot {
            generations: ids
                .iter()
                .map(|id| Generation {
                    project: id.to_string(),
                    generation: 1,
                })
                .collect(),
            ..snap.clone()
        };
        // n units fit: admitted.
        if let Some(at_n) = scaled(req, n) {
            match evaluate(c, snap, &at_n) {
                Ok(Decision::Admitted { .. }) => {}
                other => panic!("{n} units should fit: {other:?}"),
            }
        }
        // n + 1 do not: refused, or past the 64-bit range.
        if let Some(past) = n.checked_add(1).and_then(|m| scaled(req, m)) {
            match evaluate(c, snap, &past) {
                Ok(Decision::Refused { .. }) | Err(Error::Overflow { .. }) => {}
                other => panic!("{} units should not fit: {other:?}", n + 1),
            }
        }
    }
});
