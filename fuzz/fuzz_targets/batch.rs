//! Batches: `evaluate_batch` and the `consume_batch` driver on arbitrary
//! snapshots (both usage forms, every model) and lists of requests.
//!
//! evaluate_batch: no panic; the same answer twice; a batch of one is
//! `evaluate`; a prefix of a batch is decided as the whole batch decides
//! it; up to the first admission every member is decided as `evaluate`
//! decides it alone; an admitted member claims what a lone admission on the
//! snapshot claims; and, for local usage, the answer is an independent
//! one-by-one oracle's: each request decided by `evaluate` on the snapshot
//! whose local usage has been updated, by hand, with the deltas of every
//! request admitted before it.
//!
//! consume_batch, against a scripted `BatchStore` (snapshots, conflicts,
//! members whose rows fail, storage errors, a virtual clock): one result
//! per request, each exactly what a model of the driver expects; no member
//! is Ok unless a `commit_batch` returned Committed with it among the
//! members; every `commit_batch` carries exactly the members the batch
//! admits on the snapshot just read (without those whose rows failed), and
//! the union of their claims with each project once, sorted by depth and
//! then id; and the retry loop keeps its budget (`Retries::check`).
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use delimiter_core::Result as Decided;
use delimiter_core::*;
use delimiter_fuzz::{self as f, Clock, Retries};
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
enum Script {
    Outcome(BatchOutcome),
    Fails,
}

#[derive(Debug)]
struct Input {
    config: Config,
    snapshot: Snapshot,
    requests: Vec<Request>,
    // The store's script, for consume_batch.
    policy: RetryPolicy,
    /// What reads after the first return, in turn (the last one repeats).
    rereads: Vec<Snapshot>,
    reads_fail_at: Option<u8>,
    commits: Vec<Script>,
    then: BatchOutcome,
    clock: Clock,
}

fn outcome(u: &mut Unstructured<'_>) -> Result<BatchOutcome> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 | 1 => BatchOutcome::Committed,
        2 => BatchOutcome::Conflict(CommitOutcome::Conflict),
        3 => BatchOutcome::Conflict(CommitOutcome::ConflictAfterWait),
        _ => {
            // Mostly a member of the commit, sometimes past its end.
            let index = match u.int_in_range(0u8..=7)? {
                7 => u.arbitrary()?,
                i => u32::from(i),
            };
            BatchOutcome::MemberFailed {
                index,
                error: StorageError::new(format!("rows of member {index} failed")),
            }
        }
    })
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut s: f::Scenario = u.arbitrary()?;
        // Half the time a snapshot that passes the checks and requests it
        // can decide, so that admissions (and commits) are common.
        let tidy = u.arbitrary()?;
        if tidy {
            s.snapshot = f::tidy_snapshot(u)?;
            s.request = f::tidy_request(u, &s.snapshot)?;
        }
        let mut requests = vec![s.request];
        for _ in 0..u.int_in_range(0u8..=5)? {
            requests.push(if tidy {
                f::tidy_request(u, &s.snapshot)?
            } else {
                Request::new(f::id(u)?, f::deltas(u)?)
            });
        }
        if u.ratio(1u8, 16u8)? {
            requests.clear();
        }
        let mut rereads = Vec::new();
        for _ in 0..u.int_in_range(0u8..=2)? {
            let mut next = s.snapshot.clone();
            next.usage = f::usage(u)?;
            for g in &mut next.generations {
                g.generation = f::generation(u)?;
            }
            rereads.push(next);
        }
        let commits = (0..u.int_in_range(0u8..=6)?)
            .map(|_| {
                Ok(match u.int_in_range(0u8..=7)? {
                    0 => Script::Fails,
                    _ => Script::Outcome(outcome(u)?),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Input {
            config: s.config,
            snapshot: s.snapshot,
            requests,
            policy: f::policy(u)?,
            rereads,
            reads_fail_at: u.arbitrary()?,
            commits,
            then: if u.arbitrary()? {
                BatchOutcome::Committed
            } else {
                outcome(u)?
            },
            clock: u.arbitrary()?,
        })
    }
}

// ---------------------------------------------------------------------
// evaluate_batch

/// The one-by-one oracle for local usage: `evaluate` each request on the
/// snapshot, adding each admitted request's deltas to its project's local
/// usage before the next is decided.
fn one_by_one(
    config: &Config,
    snapshot: &Snapshot,
    requests: &[Request],
) -> Vec<Decided<Decision>> {
    let mut snap = snapshot.clone();
    requests
        .iter()
        .map(|r| {
            let got = evaluate(config, &snap, r);
            if let Ok(Decision::Admitted { .. }) = got {
                let Usage::Local(entries) = &mut snap.usage else {
                    unreachable!("local usage only")
                };
                for d in &r.deltas {
                    match entries
                        .iter_mut()
                        .find(|e| e.project == r.project && e.resource == d.resource)
                    {
                        Some(e) => {
                            e.usage = e.usage.checked_add(d.delta).unwrap_or_else(|| {
                                panic!("admitted {r:?}, but its own usage {} overflows", e.usage)
                            })
                        }
                        None => entries.push(UsageEntry {
                            project: r.project.clone(),
                            resource: d.resource.clone(),
                            usage: d.delta,
                        }),
                    }
                }
            }
            got
        })
        .collect()
}

fn check_evaluate_batch(input: &Input) {
    let (c, snap, reqs) = (&input.config, &input.snapshot, &input.requests);
    let got = evaluate_batch(c, snap, reqs);
    assert_eq!(got.len(), reqs.len());
    assert_eq!(got, evaluate_batch(c, snap, reqs), "not deterministic");
    for r in reqs {
        assert_eq!(
            evaluate_batch(c, snap, std::slice::from_ref(r)),
            vec![evaluate(c, snap, r)],
            "a batch of one is not evaluate"
        );
    }
    if !reqs.is_empty() {
        let n = reqs.len() - 1;
        assert_eq!(
            evaluate_batch(c, snap, &reqs[..n]).as_slice(),
            &got[..n],
            "a member decided on a later one"
        );
    }
    let mut any_admitted = false;
    for (r, g) in reqs.iter().zip(&got) {
        let alone = evaluate(c, snap, r);
        if !any_admitted {
            assert_eq!(g, &alone, "decided on no admission, yet not as alone");
        }
        if let (Ok(Decision::Admitted { claim }), Ok(Decision::Admitted { claim: lone })) =
            (g, &alone)
        {
            assert_eq!(claim, lone, "not the claim of a lone admission");
        }
        any_admitted |= matches!(g, Ok(Decision::Admitted { .. }));
    }
    if let Usage::Local(_) = snap.usage {
        assert_eq!(got, one_by_one(c, snap, reqs), "not as one by one");
    }
}

// ---------------------------------------------------------------------
// consume_batch

type Outcome = std::result::Result<Consumed, ConsumeError>;

/// What the model expects of one member.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Exactly(Outcome),
    /// A storage error of attempt `attempts` whose text is the driver's.
    AnyStorage {
        attempts: u32,
    },
}

#[derive(Debug, Clone)]
enum Step {
    Read(Snapshot),
    ReadFails,
    Commit(Vec<Request>, BatchOutcome),
    CommitFails,
}

struct Scripted<'i> {
    input: &'i Input,
    log: Vec<Step>,
    reads: usize,
    commits: usize,
    retries: Retries,
    /// The members without an outcome yet (indices into the requests).
    pending: Vec<usize>,
    expect: Vec<Option<Expect>>,
}

/// Depth of every project of a snapshot whose tree is valid (admissions
/// were made on it), by walking parents; `None` for the rest.
fn depths(snapshot: &Snapshot) -> BTreeMap<&str, usize> {
    let parent: BTreeMap<&str, Option<&str>> = snapshot
        .projects
        .iter()
        .map(|p| (p.id.as_str(), p.parent.as_deref()))
        .collect();
    parent
        .keys()
        .filter_map(|&id| {
            let mut at = id;
            for depth in 0..=parent.len() {
                match parent.get(at)? {
                    None => return Some((id, depth)),
                    Some(up) => at = up,
                }
            }
            None
        })
        .collect()
}

fn decided(decision: Decided<Decision>, attempts: u32) -> Outcome {
    match decision {
        Ok(Decision::Admitted { claim }) => Ok(Consumed { claim, attempts }),
        Ok(Decision::Refused { violations }) => Err(ConsumeError::OverLimit {
            violations,
            attempts,
        }),
        Err(e) => Err(ConsumeError::Invalid(e)),
    }
}

impl Scripted<'_> {
    fn last_snapshot(&self) -> &Snapshot {
        self.log
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Read(snapshot) => Some(snapshot),
                _ => None,
            })
            .expect("a read before")
    }

    fn attempts(&self) -> u32 {
        self.reads as u32
    }

    fn pending_requests(&self) -> Vec<Request> {
        self.pending
            .iter()
            .map(|&i| self.input.requests[i].clone())
            .collect()
    }

    /// Every pending member gets `e`.
    fn settle(&mut self, e: Expect) {
        for i in std::mem::take(&mut self.pending) {
            self.expect[i] = Some(e.clone());
        }
    }

    /// The pending members as decided on the last snapshot, with no
    /// admission among them (the driver returns without a commit).
    fn settle_without_commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let decisions = evaluate_batch(
            &self.input.config,
            self.last_snapshot(),
            &self.pending_requests(),
        );
        assert!(
            !decisions
                .iter()
                .any(|d| matches!(d, Ok(Decision::Admitted { .. }))),
            "an admitted member was never committed: {decisions:?}"
        );
        let attempts = self.attempts();
        for (i, d) in std::mem::take(&mut self.pending).into_iter().zip(decisions) {
            self.expect[i] = Some(Expect::Exactly(decided(d, attempts)));
        }
    }
}

impl Store for Scripted<'_> {
    fn read(&mut self, _: &str, _: &[&str]) -> std::result::Result<Snapshot, StorageError> {
        panic!("consume_batch read for one member")
    }

    fn commit(
        &mut self,
        _: &[ClaimEntry],
        _: &Request,
    ) -> std::result::Result<CommitOutcome, StorageError> {
        panic!("consume_batch committed one member alone")
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

impl BatchStore for Scripted<'_> {
    fn read_batch(
        &mut self,
        projects: &[&str],
        resources: &[&str],
    ) -> std::result::Result<Snapshot, StorageError> {
        // Every member's project and resource, each once, in arrival order.
        let mut want_p: Vec<&str> = Vec::new();
        let mut want_r: Vec<&str> = Vec::new();
        for r in &self.input.requests {
            if !want_p.contains(&r.project.as_str()) {
                want_p.push(&r.project);
            }
            for d in &r.deltas {
                if !want_r.contains(&d.resource.as_str()) {
                    want_r.push(&d.resource);
                }
            }
        }
        assert_eq!(projects, want_p.as_slice());
        assert_eq!(resources, want_r.as_slice());
        // The first read, or one after a lost commit: never a read once an
        // outcome was final.
        assert!(
            matches!(
                self.log.last(),
                None | Some(Step::Commit(_, BatchOutcome::Conflict(_)))
            ),
            "a read after {:?}",
            self.log.last()
        );
        assert!(!self.pending.is_empty(), "a read with every member decided");
        self.retries.attempt();
        let at = self.reads;
        self.reads += 1;
        if self.input.reads_fail_at.map(usize::from) == Some(at) {
            self.log.push(Step::ReadFails);
            self.settle(Expect::Exactly(Err(ConsumeError::Storage {
                error: StorageError::new("read failed"),
                attempts: self.attempts(),
            })));
            return Err(StorageError::new("read failed"));
        }
        let snapshot = match at {
            0 => self.input.snapshot.clone(),
            n => {
                let rereads = &self.input.rereads;
                if rereads.is_empty() {
                    self.input.snapshot.clone()
                } else {
                    rereads[(n - 1).min(rereads.len() - 1)].clone()
                }
            }
        };
        self.log.push(Step::Read(snapshot.clone()));
        Ok(snapshot)
    }

    fn commit_batch(
        &mut self,
        claim: &[ClaimEntry],
        members: &[&Request],
    ) -> std::result::Result<BatchOutcome, StorageError> {
        assert!(
            matches!(
                self.log.last(),
                Some(Step::Read(_) | Step::Commit(_, BatchOutcome::MemberFailed { .. }))
            ),
            "a commit not after a read or a member's failure: {:?}",
            self.log.last()
        );
        let config = self.input.config;
        let snapshot = self.last_snapshot().clone();
        let pending = self.pending_requests();
        let decisions = evaluate_batch(&config, &snapshot, &pending);
        let admitted: Vec<usize> = (0..pending.len())
            .filter(|&m| matches!(decisions[m], Ok(Decision::Admitted { .. })))
            .collect();
        // Exactly the admitted members, in arrival order.
        let want: Vec<&Request> = admitted.iter().map(|&m| &pending[m]).collect();
        assert_eq!(members, want.as_slice(), "not the admitted members");
        assert!(!members.is_empty(), "a commit of nothing");
        // The union of their claims, each project once, by depth then id.
        let mut union: BTreeSet<(&str, u64)> = BTreeSet::new();
        for &m in &admitted {
            let Ok(Decision::Admitted { claim: c }) = &decisions[m] else {
                unreachable!()
            };
            union.extend(c.iter().map(|e| (e.project.as_str(), e.generation)));
        }
        let given: BTreeSet<(&str, u64)> = claim
            .iter()
            .map(|e| (e.project.as_str(), e.generation))
            .collect();
        assert_eq!(given, union, "not the union of the members' claims");
        let depth = depths(&snapshot);
        let keys: Vec<(usize, &str)> = claim
            .iter()
            .map(|e| {
                let d = *depth
                    .get(e.project.as_str())
                    .unwrap_or_else(|| panic!("claimed {} off the tree", e.project));
                (d, e.project.as_str())
            })
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "claim not each project once, by depth then id: {claim:?}"
        );

        self.retries.spend();
        let at = self.commits;
        self.commits += 1;
        let script = self
            .input
            .commits
            .get(at)
            .cloned()
            .unwrap_or_else(|| Script::Outcome(self.input.then.clone()));
        let attempts = self.attempts();
        let members: Vec<Request> = members.iter().map(|&r| r.clone()).collect();
        match script {
            Script::Fails => {
                self.log.push(Step::CommitFails);
                self.settle(Expect::Exactly(Err(ConsumeError::Storage {
                    error: StorageError::new("commit failed"),
                    attempts,
                })));
                Err(StorageError::new("commit failed"))
            }
            Script::Outcome(outcome) => {
                self.log.push(Step::Commit(members, outcome.clone()));
                match &outcome {
                    BatchOutcome::Committed => {
                        let pending = std::mem::take(&mut self.pending);
                        for (i, d) in pending.into_iter().zip(decisions) {
                            self.expect[i] = Some(Expect::Exactly(decided(d, attempts)));
                        }
                    }
                    BatchOutcome::Conflict(lost) => self.retries.lost(*lost),
                    BatchOutcome::MemberFailed { index, error } => {
                        match admitted.get(*index as usize) {
                            Some(&m) => {
                                let i = self.pending.remove(m);
                                self.expect[i] =
                                    Some(Expect::Exactly(Err(ConsumeError::Storage {
                                        error: error.clone(),
                                        attempts,
                                    })));
                            }
                            None => self.settle(Expect::AnyStorage { attempts }),
                        }
                    }
                }
                Ok(outcome)
            }
        }
    }
}

fn check_consume_batch(input: &Input) {
    let n = input.requests.len();
    let mut store = Scripted {
        input,
        log: vec![],
        reads: 0,
        commits: 0,
        retries: Retries::new(input.policy, input.clock.clone()),
        pending: (0..n).collect(),
        expect: vec![None; n],
    };
    let got = consume_batch(&input.config, &input.policy, &mut store, &input.requests);
    assert_eq!(got.len(), n, "not one result per request");
    assert_eq!(store.attempts(), store.retries.attempts());

    // What the driver's last step leaves to the members still pending.
    if let Err(bad) = input.policy.check() {
        assert!(store.log.is_empty());
        store.settle(Expect::Exactly(Err(ConsumeError::Invalid(bad))));
    }
    match store.log.last().cloned() {
        None => assert!(store.pending.is_empty(), "no read, yet members pending"),
        Some(Step::Read(_) | Step::Commit(_, BatchOutcome::MemberFailed { .. })) => {
            store.settle_without_commit()
        }
        Some(Step::Commit(_, BatchOutcome::Conflict(_))) => {
            let attempts = store.attempts();
            store.settle(Expect::Exactly(Err(ConsumeError::RetriesExhausted {
                attempts,
            })));
        }
        Some(Step::Commit(_, BatchOutcome::Committed) | Step::ReadFails | Step::CommitFails) => {
            assert!(store.pending.is_empty())
        }
    }
    for (i, g) in got.iter().enumerate() {
        match store.expect[i]
            .as_ref()
            .expect("a member the model left pending")
        {
            Expect::Exactly(want) => assert_eq!(g, want, "member {i}"),
            Expect::AnyStorage { attempts } => assert!(
                matches!(g, Err(ConsumeError::Storage { attempts: a, .. }) if a == attempts),
                "member {i}: {g:?}"
            ),
        }
    }
    // Said directly: an Ok member was among the members of a commit that
    // returned Committed (the last one).
    let committed: Vec<&Request> = match store.log.last() {
        Some(Step::Commit(members, BatchOutcome::Committed)) => members.iter().collect(),
        _ => Vec::new(),
    };
    let oks: Vec<&Request> = got
        .iter()
        .zip(&input.requests)
        .filter(|(g, _)| g.is_ok())
        .map(|(_, r)| r)
        .collect();
    assert_eq!(oks, committed, "an Ok without its commit");
    store.retries.check(matches!(
        store.log.last(),
        Some(Step::Commit(_, BatchOutcome::Conflict(_)))
    ));
}

fuzz_target!(|input: Input| {
    check_evaluate_batch(&input);
    check_consume_batch(&input);
});
