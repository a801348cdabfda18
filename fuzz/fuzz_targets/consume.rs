//! The consume driver against a scripted store (snapshots, conflicts that
//! did or did not wait, storage errors, a virtual clock and entropy, in any
//! order): no panic; a commit only ever carries the claim of an admission
//! on the snapshot just read; the outcome says what happened (a success is
//! the last commit, committed; a refusal is final, returned at once, and
//! its violations are those of the last snapshot; retries run out only
//! after every attempt lost, when the attempt cap or the deadline says
//! so); and the loop keeps its budget (`Retries::check`: no attempt starts
//! past the deadline, so a call never lasts longer than the deadline plus
//! one attempt; backoffs within [cap / 2, cap], none after a waited
//! conflict; one draw of entropy per unseeded call); with
//! `lock_after_conflict`, a locked read exactly after each lost commit
//! while the store may lock (none once it said it takes no locks, no
//! backoff before one), and a locked transaction that ends in its commit or
//! in `unlock`, never left open.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use delimiter_core::*;
use delimiter_fuzz::{self as f, Clock, Retries};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Clone)]
enum Step {
    Read(Snapshot),
    ReadFails,
    Commit(Vec<ClaimEntry>, CommitOutcome),
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
    /// What each commit does, in turn (None: a storage error) ...
    commits: Vec<Option<CommitOutcome>>,
    /// ... and then, every time.
    then: CommitOutcome,
    clock: Clock,
    /// Whether `read_locked` takes the locks (else it answers none).
    locks: bool,
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
                    _ => Some(f::commit_outcome(u)?),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Input {
            config: s.config,
            policy: f::policy(u)?,
            request: s.request,
            snapshots,
            reads_fail_at: u.arbitrary()?,
            commits,
            then: if u.arbitrary()? {
                CommitOutcome::Committed
            } else {
                f::commit_outcome(u)?
            },
            clock: u.arbitrary()?,
            locks: u.arbitrary()?,
        })
    }
}

struct Scripted<'i> {
    input: &'i Input,
    log: Vec<Step>,
    reads: usize,
    commits: usize,
    retries: Retries,
    /// A locked transaction is open (a locked read answered).
    held: bool,
    unlocks: u32,
}

impl Store for Scripted<'_> {
    fn read(
        &mut self,
        project: &str,
        resources: &[&str],
    ) -> std::result::Result<Snapshot, StorageError> {
        assert_eq!(project, self.input.request.project);
        let wanted: Vec<&str> = self
            .input
            .request
            .deltas
            .iter()
            .map(|d| d.resource.as_str())
            .collect();
        assert_eq!(resources, wanted.as_slice());
        // A read follows the start, a lost commit or a backoff: never a
        // read whose decision was final.
        assert!(
            matches!(self.log.last(), None | Some(Step::Commit(_, _))),
            "a read after {:?}",
            self.log.last()
        );
        assert!(!self.held, "a plain read inside a locked transaction");
        self.next_read()
    }

    fn read_locked(
        &mut self,
        project: &str,
        resources: &[&str],
    ) -> std::result::Result<Option<Snapshot>, StorageError> {
        assert_eq!(project, self.input.request.project);
        assert!(
            matches!(self.log.last(), Some(Step::Commit(_, _))),
            "a locked read after {:?}",
            self.log.last()
        );
        assert!(!self.held);
        let _ = resources;
        self.retries.locked_read(self.input.locks);
        if !self.input.locks {
            return Ok(None);
        }
        let read = self.next_read();
        // A failed locked read has rolled back: nothing is held.
        self.held = read.is_ok();
        read.map(Some)
    }

    fn unlock(&mut self) {
        assert!(self.held, "unlock without a locked transaction");
        // Only after a decision that will not commit: a refusal or invalid
        // input on the locked snapshot.
        let Some(Step::Read(snapshot)) = self.log.last() else {
            panic!("unlock after {:?}", self.log.last())
        };
        assert!(!matches!(
            evaluate(&self.input.config, snapshot, &self.input.request),
            Ok(Decision::Admitted { .. })
        ));
        self.held = false;
        self.unlocks += 1;
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
            evaluate(&self.input.config, snapshot, request),
            Ok(Decision::Admitted {
                claim: claim.to_vec()
            })
        );
        self.retries.spend();
        // A locked transaction ends with its commit, whatever comes of it.
        self.held = false;
        let at = self.commits;
        self.commits += 1;
        match self
            .input
            .commits
            .get(at)
            .copied()
            .unwrap_or(Some(self.input.then))
        {
            Some(outcome) => {
                self.log.push(Step::Commit(claim.to_vec(), outcome));
                if outcome != CommitOutcome::Committed {
                    self.retries.lost(outcome);
                }
                Ok(outcome)
            }
            None => {
                self.log.push(Step::CommitFails);
                Err(StorageError::new("commit failed"))
            }
        }
    }

    fn backoff(&mut self, attempt: u32, delay_us: u64) {
        self.retries.backoff(attempt, delay_us);
    }

    fn now_us(&mut self) -> u64 {
        self.retries.now_us()
    }

    fn entropy(&mut self) -> u64 {
        self.retries.entropy()
    }
}

impl Scripted<'_> {
    /// The next read's step, plain or locked: an attempt begins.
    fn next_read(&mut self) -> std::result::Result<Snapshot, StorageError> {
        self.retries.attempt();
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
}

fuzz_target!(|input: Input| {
    let mut store = Scripted {
        input: &input,
        log: vec![],
        reads: 0,
        commits: 0,
        retries: Retries::lone(input.policy, input.clock.clone()),
        held: false,
        unlocks: 0,
    };
    let got = consume(&input.config, &input.policy, &mut store, &input.request);
    let attempts = store.reads as u32;
    assert_eq!(attempts, store.retries.attempts());
    match &got {
        Ok(done) => {
            assert_eq!(done.attempts, attempts);
            let Some(Step::Commit(claim, CommitOutcome::Committed)) = store.log.last() else {
                panic!("a success without a commit: {:?}", store.log)
            };
            assert_eq!(&done.claim, claim);
        }
        Err(ConsumeError::OverLimit {
            violations,
            attempts: a,
        }) => {
            assert_eq!(*a, attempts);
            // Final: the last thing the driver did was the read it was
            // refused on.
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
            assert_eq!(*a, attempts);
            assert_eq!(store.commits as u32, attempts, "every attempt committed");
            assert!(
                store
                    .log
                    .iter()
                    .all(|s| !matches!(s, Step::Commit(_, CommitOutcome::Committed))),
                "and every commit lost"
            );
        }
        Err(ConsumeError::Storage { attempts: a, .. }) => {
            assert_eq!(*a, attempts);
            assert!(matches!(
                store.log.last(),
                Some(Step::ReadFails | Step::CommitFails)
            ));
        }
        Err(ConsumeError::Invalid(e)) => match input.policy.check() {
            Err(bad) => {
                assert_eq!(e, &bad);
                assert!(store.log.is_empty());
            }
            Ok(()) => {
                let Some(Step::Read(snapshot)) = store.log.last() else {
                    panic!("{:?}", store.log)
                };
                assert_eq!(
                    evaluate(&input.config, snapshot, &input.request),
                    Err(e.clone())
                );
            }
        },
    }
    assert!(!store.held, "a locked transaction left open: {:?}", store.log);
    if !input.policy.lock_after_conflict {
        assert_eq!(store.unlocks, 0);
    }
    store
        .retries
        .check(matches!(got, Err(ConsumeError::RetriesExhausted { .. })));
});
