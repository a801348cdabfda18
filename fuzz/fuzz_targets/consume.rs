//! The consume driver against a scripted store (snapshots, conflicts and
//! storage errors in any order): no panic; a commit only ever carries the
//! claim of an admission on the snapshot just read; the outcome says what
//! happened (a success is the last commit, committed; a refusal is final
//! and its violations are those of the last snapshot; retries run out only
//! after every attempt conflicted); one backoff between attempts.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use delimiter_core::*;
use delimiter_fuzz::{self as f};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Clone)]
enum Step {
    Read(Snapshot),
    ReadFails,
    Commit(CommitOutcome),
    CommitFails,
}

#[derive(Debug)]
struct Input {
    config: Config,
    policy: RetryPolicy,
    request: Request,
    /// The snapshots reads return, in turn (the last one repeats).
    snapshots: Vec<Snapshot>,
    reads_fail_at: Option<u8>,
    /// What each commit does, in turn (then: committed).
    commits: Vec<Option<CommitOutcome>>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let s: f::Scenario = u.arbitrary()?;
        let mut snapshots = vec![s.snapshot];
        for _ in 0..u.int_in_range(0u8..=3)? {
            let mut next = snapshots[0].clone();
            next.usage = f::usage(u)?;
            for g in &mut next.generations {
                g.generation = f::generation(u)?;
            }
            snapshots.push(next);
        }
        let commits = (0..u.int_in_range(0u8..=6)?)
            .map(|_| {
                Ok(match u.int_in_range(0u8..=4)? {
                    0 => None,
                    1 | 2 => Some(CommitOutcome::Conflict),
                    _ => Some(CommitOutcome::Committed),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Input {
            config: s.config,
            policy: RetryPolicy {
                max_attempts: u.int_in_range(0..=6)?,
                base_delay_us: u.arbitrary()?,
                max_delay_us: u.arbitrary()?,
                seed: u.arbitrary()?,
            },
            request: s.request,
            snapshots,
            reads_fail_at: u.arbitrary()?,
            commits,
        })
    }
}

struct Scripted<'i> {
    input: &'i Input,
    config: Config,
    log: Vec<Step>,
    reads: usize,
    commits: usize,
    backoffs: u32,
}

impl Store for Scripted<'_> {
    fn read(
        &mut self,
        project: &str,
        resources: &[&str],
    ) -> std::result::Result<Snapshot, StorageError> {
        assert_eq!(project, self.input.request.project);
        let at = self.reads;
        self.reads += 1;
        if self.input.reads_fail_at.map(usize::from) == Some(at) {
            self.log.push(Step::ReadFails);
            return Err(StorageError::new("read failed"));
        }
        let snaps = &self.input.snapshots;
        let snapshot = snaps[at.min(snaps.len() - 1)].clone();
        self.log.push(Step::Read(snapshot.clone()));
        Ok(snapshot)
    }

    fn commit(
        &mut self,
        claim: &[ClaimEntry],
        request: &Request,
    ) -> std::result::Result<CommitOutcome, StorageError> {
        assert_eq!(request, &self.input.request);
        // Only the claim of an admission on the snapshot just read.
        let Some(Step::Read(snapshot)) = self.log.last() else {
            panic!("a commit not right after a read: {:?}", self.log)
        };
        assert_eq!(
            evaluate(&self.config, snapshot, request),
            Ok(Decision::Admitted {
                claim: claim.to_vec()
            })
        );
        let at = self.commits;
        self.commits += 1;
        match self
            .input
            .commits
            .get(at)
            .copied()
            .unwrap_or(Some(CommitOutcome::Committed))
        {
            Some(outcome) => {
                self.log.push(Step::Commit(outcome));
                Ok(outcome)
            }
            None => {
                self.log.push(Step::CommitFails);
                Err(StorageError::new("commit failed"))
            }
        }
    }

    fn backoff(&mut self, attempt: u32, delay_us: u64) {
        self.backoffs += 1;
        assert_eq!(attempt, self.backoffs);
        assert!(delay_us <= self.input.policy.max_delay_us, "{delay_us}");
    }
}

fuzz_target!(|input: Input| {
    let mut store = Scripted {
        input: &input,
        config: input.config,
        log: vec![],
        reads: 0,
        commits: 0,
        backoffs: 0,
    };
    let got = consume(&input.config, &input.policy, &mut store, &input.request);
    let attempts = store.reads as u32;
    assert!(attempts <= input.policy.max_attempts);
    match &got {
        Ok(done) => {
            assert_eq!(done.attempts, attempts);
            assert!(matches!(
                store.log.last(),
                Some(Step::Commit(CommitOutcome::Committed))
            ));
        }
        Err(ConsumeError::OverLimit {
            violations,
            attempts: a,
        }) => {
            assert_eq!(*a, attempts);
            let Some(Step::Read(snapshot)) = store.log.last() else {
                panic!("{:?}", store.log)
            };
            assert_eq!(
                evaluate(&input.config, snapshot, &input.request),
                Ok(Decision::Refused {
                    violations: violations.clone()
                })
            );
        }
        Err(ConsumeError::RetriesExhausted { attempts: a }) => {
            assert_eq!(
                (*a, attempts),
                (input.policy.max_attempts, input.policy.max_attempts)
            );
            assert_eq!(store.commits as u32, attempts, "every attempt committed");
            let conflicts = store
                .log
                .iter()
                .filter(|s| matches!(s, Step::Commit(CommitOutcome::Conflict)))
                .count();
            assert_eq!(conflicts as u32, attempts, "and every commit conflicted");
        }
        Err(ConsumeError::Storage { attempts: a, .. }) => {
            assert_eq!(*a, attempts);
            assert!(matches!(
                store.log.last(),
                Some(Step::ReadFails | Step::CommitFails)
            ));
        }
        Err(ConsumeError::Invalid(_)) => {
            assert!(!matches!(
                store.log.last(),
                Some(Step::Commit(_) | Step::CommitFails)
            ));
        }
    }
    // One backoff between attempts, none after the last.
    assert_eq!(store.backoffs, attempts.saturating_sub(1));
});
