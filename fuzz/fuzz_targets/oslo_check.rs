//! `oslo_check` (oslo.limit's flat enforcer) on arbitrary inputs: no
//! panic, the same answer twice and in any listing order.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use delimiter_core::*;
use delimiter_fuzz as f;
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct Input(OsloCheck);

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let limit = |u: &mut Unstructured<'_>| -> Result<ResourceLimit> {
            Ok(ResourceLimit {
                resource: f::resource(u)?,
                limit: f::value(u)?,
            })
        };
        let n = |u: &mut Unstructured<'_>| u.int_in_range(0usize..=4);
        let registered = (0..n(u)?).map(|_| limit(u)).collect::<Result<_>>()?;
        let project = (0..n(u)?).map(|_| limit(u)).collect::<Result<_>>()?;
        let usage = (0..n(u)?)
            .map(|_| {
                Ok(ResourceUsage {
                    resource: f::resource(u)?,
                    usage: f::value(u)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Input(OsloCheck {
            project_id: if u.arbitrary()? {
                Some(f::id(u)?)
            } else {
                None
            },
            deltas: f::deltas(u)?,
            registered,
            project,
            usage,
        }))
    }
}

fuzz_target!(|input: Input| {
    let check = input.0;
    let got = oslo_check(&check);
    assert_eq!(got, oslo_check(&check));
    let mut r = check.clone();
    r.deltas.reverse();
    r.registered.reverse();
    r.project.reverse();
    r.usage.reverse();
    assert_eq!(got, oslo_check(&r), "depends on listing order");
    if let Ok(over) = &got {
        for o in over {
            assert!(
                check.deltas.iter().any(|d| d.resource == o.resource_name),
                "{o:?}"
            );
        }
    }
});
