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
/// (Until the batch target, 7 draws in 13 gave the empty id: most
/// questions were about an empty project.)
pub fn id(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0u8..=12)? {
        12 => "",
        i => IDS[usize::from(i) % (IDS.len() - 1)],
    }
    .to_string())
}

/// A resource name from the small alphabet (the empty one rarely).
pub fn resource(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0u8..=10)? {
        10 => "",
        i => RESOURCES[usize::from(i) % (RESOURCES.len() - 1)],
    }
    .to_string())
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

// ---------------------------------------------------------------------
// The consume drivers (`consume`, `consume_batch`): retry policies, a
// virtual clock, and the oracles on the retry loop that both share.

/// A retry policy: mostly one that `check()` accepts (base <= max <=
/// deadline), with budgets small enough that the deadline, and not only the
/// attempt cap, ends a call; sometimes an invalid one. At most 100 attempts
/// (the default cap): with a clock that does not move, the cap is what ends
/// a call, and each attempt costs a decision.
pub fn policy(u: &mut Unstructured<'_>) -> Result<RetryPolicy> {
    let deadline_us = match u.int_in_range(0u8..=7)? {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => 2_000_000,
        4 => u.arbitrary()?,
        _ => u64::from(u.int_in_range(1u16..=20_000)?),
    };
    let max_delay_us = match u.int_in_range(0u8..=5)? {
        0 => deadline_us,
        1 => 0,
        2 => u.arbitrary()?,
        _ => u.int_in_range(0..=deadline_us)?,
    };
    let base_delay_us = match u.int_in_range(0u8..=6)? {
        0 => max_delay_us,
        1 => 0,
        2 => 1,
        3 => u.arbitrary()?,
        _ => u.int_in_range(0..=max_delay_us)?,
    };
    Ok(RetryPolicy {
        max_attempts: match u.int_in_range(0u8..=5)? {
            0 => 0,
            1 => 100,
            _ => u.int_in_range(1..=100)?,
        },
        deadline_us,
        base_delay_us,
        max_delay_us,
        seed: u.arbitrary()?,
        // Lone consumes lock after a conflict when this is set (the batch
        // driver ignores it); the consume target's store may or may not
        // take locks.
        lock_after_conflict: u.arbitrary()?,
    })
}

/// A lost or won commit, as a store reports it.
pub fn commit_outcome(u: &mut Unstructured<'_>) -> Result<CommitOutcome> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => CommitOutcome::Committed,
        1 => CommitOutcome::ConflictAfterWait,
        _ => CommitOutcome::Conflict,
    })
}

/// A virtual clock (microseconds, saturating as a u64 clock would) that
/// each store call moves on by the next of a few scripted costs, and a
/// backoff by its delay; and the entropy the store hands out.
#[derive(Debug, Clone)]
pub struct Clock {
    pub now: u64,
    costs: Vec<u64>,
    next: usize,
    pub entropy: u64,
}

impl<'a> Arbitrary<'a> for Clock {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let now = match u.int_in_range(0u8..=3)? {
            0 => 0,
            1 => u64::MAX - u64::from(u.arbitrary::<u16>()?),
            _ => u.arbitrary()?,
        };
        let costs = list(u, 4, |u| {
            Ok(match u.int_in_range(0u8..=4)? {
                0 => 0,
                1 => 1,
                2 => u64::from(u.arbitrary::<u32>()?),
                _ => u64::from(u.int_in_range(0u16..=5_000)?),
            })
        })?;
        Ok(Clock {
            now,
            costs,
            next: 0,
            entropy: u.arbitrary()?,
        })
    }
}

impl Clock {
    /// One store call's worth of time.
    pub fn spend(&mut self) {
        if !self.costs.is_empty() {
            let cost = self.costs[self.next % self.costs.len()];
            self.next += 1;
            self.now = self.now.saturating_add(cost);
        }
    }
}

/// What the retry loop did, as the store saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An attempt's read started at `at`.
    Attempt { at: u64 },
    /// The attempt's commit lost with `outcome`, returning at `at`.
    Lost { outcome: CommitOutcome, at: u64 },
    /// `Store::backoff(attempt, delay)`.
    Backoff { attempt: u32, delay: u64 },
    /// `Store::read_locked`, answered (a locked attempt begins: an
    /// `Attempt` follows) or not (the store takes no locks).
    LockedRead { answered: bool },
}

/// The clock, entropy and backoff side of a scripted store, recording what
/// the driver asked of it.
#[derive(Debug)]
pub struct Retries {
    pub policy: RetryPolicy,
    pub clock: Clock,
    pub entropy_calls: u32,
    /// The first clock reading, taken when the call starts its budget.
    pub start: Option<u64>,
    pub events: Vec<Event>,
    /// Whether the driver takes locked attempts under this policy (lone
    /// consumes do, when the policy asks; batches never do).
    pub locked_attempts: bool,
}

/// The cap of the backoff after the `attempt`-th conflict, computed without
/// the core: min(max, base * 2^(attempt - 1)), exactly.
pub fn backoff_cap(policy: &RetryPolicy, attempt: u32) -> u64 {
    let exp = attempt.saturating_sub(1);
    let full: u128 = if policy.base_delay_us == 0 {
        0
    } else if exp >= 64 {
        u128::MAX
    } else {
        u128::from(policy.base_delay_us) << exp
    };
    full.min(u128::from(policy.max_delay_us)) as u64
}

impl Retries {
    pub fn new(policy: RetryPolicy, clock: Clock) -> Self {
        Retries {
            policy,
            clock,
            entropy_calls: 0,
            start: None,
            events: Vec::new(),
            locked_attempts: false,
        }
    }

    /// A lone consume's model: locked attempts when the policy asks.
    pub fn lone(policy: RetryPolicy, clock: Clock) -> Self {
        Retries {
            locked_attempts: policy.lock_after_conflict,
            ..Retries::new(policy, clock)
        }
    }

    /// A locked read was asked for; `answered`: the store took the locks.
    pub fn locked_read(&mut self, answered: bool) {
        self.events.push(Event::LockedRead { answered });
    }

    pub fn now_us(&mut self) -> u64 {
        self.start.get_or_insert(self.clock.now);
        self.clock.now
    }

    pub fn entropy(&mut self) -> u64 {
        self.entropy_calls += 1;
        self.clock.entropy
    }

    /// An attempt's read begins (then takes its time).
    pub fn attempt(&mut self) {
        self.events.push(Event::Attempt { at: self.clock.now });
        self.clock.spend();
    }

    /// A commit (or read) takes its time.
    pub fn spend(&mut self) {
        self.clock.spend();
    }

    /// The attempt's commit lost.
    pub fn lost(&mut self, outcome: CommitOutcome) {
        assert_ne!(outcome, CommitOutcome::Committed);
        self.events.push(Event::Lost {
            outcome,
            at: self.clock.now,
        });
    }

    pub fn backoff(&mut self, attempt: u32, delay_us: u64) {
        self.events.push(Event::Backoff {
            attempt,
            delay: delay_us,
        });
        self.clock.now = self.clock.now.saturating_add(delay_us);
    }

    pub fn attempts(&self) -> u32 {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Attempt { .. }))
            .count() as u32
    }

    /// The oracles on the loop, once the call returned (`exhausted`: it
    /// returned retries-exhausted): the jitter's seed is the policy's or one
    /// draw of entropy per call; no attempt starts at or after the deadline
    /// (so with this clock a call never lasts longer than the deadline plus
    /// its last attempt); a backoff follows a conflict that did not wait,
    /// never one that did, and lasts within [cap / 2, cap] of its attempt;
    /// the call gives up after a conflict exactly when the attempt cap or
    /// the deadline says so, and only then.
    pub fn check(&self, exhausted: bool) {
        let p = &self.policy;
        if p.check().is_err() {
            assert!(self.events.is_empty(), "an invalid policy ran: {self:?}");
            assert_eq!(self.entropy_calls, 0);
            return;
        }
        let attempts = self.attempts();
        assert!(
            attempts <= p.max_attempts,
            "{attempts} > {}",
            p.max_attempts
        );
        assert!(
            self.entropy_calls <= 1,
            "entropy drawn {} times",
            self.entropy_calls
        );
        if p.seed.is_some() {
            assert_eq!(self.entropy_calls, 0, "a seeded policy drew entropy");
        } else if attempts > 0 {
            assert_eq!(self.entropy_calls, 1, "no fresh jitter for this call");
        }
        if attempts == 0 {
            assert!(!exhausted);
            return;
        }
        let start = self.start.expect("the budget's clock was never read");
        let seed = p.seed.unwrap_or(self.clock.entropy);
        let mut attempt = 0u32;
        let mut last_at = start;
        // Whether the store takes locks, once a locked read has told.
        let mut store_locks: Option<bool> = None;
        let mut i = 0;
        while i < self.events.len() {
            match self.events[i] {
                Event::LockedRead { answered } => {
                    assert!(self.locked_attempts, "a locked read the policy did not ask for");
                    assert!(
                        i > 0 && matches!(self.events[i - 1], Event::Lost { .. }),
                        "a locked read not right after a lost commit: {self:?}"
                    );
                    assert_ne!(store_locks, Some(false), "asked again a store that takes no locks");
                    store_locks.get_or_insert(answered);
                    assert!(
                        matches!(self.events.get(i + 1), Some(Event::Attempt { .. })),
                        "no attempt after a locked read"
                    );
                }
                Event::Attempt { at } => {
                    attempt += 1;
                    assert!(at >= start);
                    if attempt > 1 {
                        assert!(
                            at - start < p.deadline_us,
                            "attempt {attempt} started {} us after the start, deadline {}",
                            at - start,
                            p.deadline_us
                        );
                    }
                    last_at = at;
                }
                Event::Lost { outcome, at } => {
                    // The next attempt is a locked one (it queues on the
                    // rows: no backoff) unless the store said it takes none.
                    let locking = self.locked_attempts && store_locks != Some(false);
                    let outcome = if locking {
                        CommitOutcome::ConflictAfterWait
                    } else {
                        outcome
                    };
                    let delay = match outcome {
                        CommitOutcome::ConflictAfterWait => 0,
                        _ => p.delay_us(seed, attempt),
                    };
                    let may_retry = attempt < p.max_attempts
                        && (at - start).saturating_add(delay) < p.deadline_us;
                    match self.events.get(i + 1) {
                        Some(&Event::Backoff {
                            attempt: a,
                            delay: d,
                        }) => {
                            assert_eq!(
                                outcome,
                                CommitOutcome::Conflict,
                                "a backoff after a waited conflict"
                            );
                            assert_eq!(a, attempt);
                            let cap = backoff_cap(p, attempt);
                            assert!(
                                cap / 2 <= d && d <= cap && d > 0,
                                "backoff {d} after attempt {attempt}, cap {cap}: {p:?}"
                            );
                            assert_eq!(d, delay, "not the call's jitter");
                            assert!(may_retry, "backed off past the budget: {self:?}");
                            assert!(
                                matches!(self.events.get(i + 2), Some(Event::Attempt { .. })),
                                "no attempt after a backoff"
                            );
                            i += 1;
                        }
                        Some(Event::Attempt { .. } | Event::LockedRead { .. }) => {
                            assert_eq!(
                                matches!(self.events.get(i + 1), Some(Event::LockedRead { .. })),
                                locking,
                                "a locked read exactly when the policy asks and the store may lock"
                            );
                            assert!(may_retry, "retried past the budget: {self:?}");
                            if outcome == CommitOutcome::Conflict {
                                assert!(
                                    backoff_cap(p, attempt) <= 1 && delay == 0,
                                    "no backoff after a conflict that did not wait"
                                );
                            }
                        }
                        Some(other) => panic!("{other:?} after a lost commit"),
                        None => {
                            assert!(!may_retry, "gave up with budget left: {self:?}");
                            assert!(exhausted, "a lost last commit, but not exhausted");
                        }
                    }
                }
                Event::Backoff { .. } => panic!("a backoff not after a lost commit: {self:?}"),
            }
            i += 1;
        }
        if exhausted {
            assert!(matches!(self.events.last(), Some(Event::Lost { .. })));
        }
        // Never longer than the deadline plus its last attempt.
        let end = self.clock.now;
        assert!(end.saturating_sub(start) <= p.deadline_us.saturating_add(end - last_at));
    }
}

/// A snapshot that passes the checks most of the time, so that decisions,
/// not input errors, are what an oracle compares: a tree of the alphabet's
/// ids (each parent listed before its children), a generation for nearly
/// every project, local usage of distinct (project, resource) pairs, small
/// or near the 64-bit top, and limits around it.
pub fn tidy_snapshot(u: &mut Unstructured<'_>) -> Result<Snapshot> {
    let n = u.int_in_range(1..=IDS.len() - 1)?;
    let mut projects = vec![Project::root(IDS[0])];
    for i in 1..n {
        projects.push(Project::child(IDS[i], IDS[u.int_in_range(0..=i - 1)?]));
    }
    let amount = |u: &mut Unstructured<'_>| -> Result<i64> {
        Ok(match u.int_in_range(0u8..=9)? {
            0 => i64::MAX,
            1 => i64::MAX - i64::from(u.int_in_range(0u8..=12)?),
            _ => i64::from(u.int_in_range(0u8..=12)?),
        })
    };
    let named = |u: &mut Unstructured<'_>| -> Result<String> {
        Ok(RESOURCES[u.int_in_range(0..=RESOURCES.len() - 2)?].to_string())
    };
    let mut usage: Vec<UsageEntry> = Vec::new();
    for _ in 0..u.int_in_range(0..=8)? {
        let project = IDS[u.int_in_range(0..=n - 1)?].to_string();
        let resource = named(u)?;
        if !usage
            .iter()
            .any(|e| e.project == project && e.resource == resource)
        {
            usage.push(UsageEntry {
                project,
                resource,
                usage: amount(u)?,
            });
        }
    }
    let limit = |u: &mut Unstructured<'_>| -> Result<i64> {
        Ok(if u.ratio(1u8, 5u8)? { -1 } else { amount(u)? })
    };
    let mut registered: Vec<RegisteredLimit> = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let resource = named(u)?;
        if !registered.iter().any(|l| l.resource == resource) {
            registered.push(RegisteredLimit {
                resource,
                limit: limit(u)?,
            });
        }
    }
    let mut project: Vec<ProjectLimit> = Vec::new();
    for _ in 0..u.int_in_range(0..=5)? {
        let (p, resource) = (IDS[u.int_in_range(0..=n - 1)?], named(u)?);
        if !project
            .iter()
            .any(|l| l.project == p && l.resource == resource)
        {
            project.push(ProjectLimit {
                project: p.to_string(),
                resource,
                limit: limit(u)?,
            });
        }
    }
    let mut generations = Vec::new();
    for p in &projects {
        if !u.ratio(1u8, 16u8)? {
            generations.push(Generation {
                project: p.id.clone(),
                generation: generation(u)?,
            });
        }
    }
    Ok(Snapshot {
        projects,
        limits: Limits {
            registered,
            project,
        },
        usage: Usage::Local(usage),
        generations,
    })
}

/// A request that a tidy snapshot can mostly decide: one of its projects
/// (now and then any id), distinct resource names, small amounts of either
/// sign, now and then any value.
pub fn tidy_request(u: &mut Unstructured<'_>, snapshot: &Snapshot) -> Result<Request> {
    let project = if snapshot.projects.is_empty() || u.ratio(1u8, 8u8)? {
        id(u)?
    } else {
        u.choose(&snapshot.projects)?.id.clone()
    };
    let mut deltas: Vec<Delta> = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let resource = RESOURCES[u.int_in_range(0..=RESOURCES.len() - 2)?];
        if deltas.iter().any(|d| d.resource == resource) {
            continue;
        }
        let amount = match u.int_in_range(0u8..=7)? {
            0 => value(u)?,
            1 => -i64::from(u.int_in_range(1u8..=4)?),
            _ => i64::from(u.int_in_range(0u8..=4)?),
        };
        deltas.push(Delta::new(resource, amount));
    }
    Ok(Request::new(project, deltas))
}
