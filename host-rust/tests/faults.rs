//! Guest faults are errors of their own: fuel exhaustion, a memory-limit
//! hit (here reached through a store callback during consume), a trap, and
//! a component that does not load all come back as `Error::GuestFault`,
//! never as an over-limit, an invalid input or a storage error. Each is
//! produced for real by the component, not mocked.

use delimiter::*;

/// A nested tree: `root`, `children` children, each with `leaves` leaves
/// using one server each.
fn tree(children: usize, leaves: usize) -> Snapshot {
    let mut projects = vec![Project::root("root")];
    let mut usage = Vec::new();
    let mut generations = vec![Generation::new("root", 1)];
    for c in 0..children {
        let child = format!("c{c}");
        projects.push(Project::child(&child, "root"));
        generations.push(Generation::new(&child, 1));
        for l in 0..leaves {
            let leaf = format!("c{c}-l{l}");
            projects.push(Project::child(&leaf, &child));
            usage.push(UsageEntry::new(&leaf, "servers", 1));
            generations.push(Generation::new(&leaf, 1));
        }
    }
    Snapshot {
        projects,
        limits: Limits {
            registered: vec![RegisteredLimit::new("servers", 1_000_000)],
            project: vec![],
        },
        usage: Usage::Local(usage),
        generations,
    }
}

fn one_server(project: &str) -> Request {
    Request::new(project, vec![Delta::new("servers", 1)])
}

fn fault_kind(result: Result<impl std::fmt::Debug, Error>) -> FaultKind {
    match result {
        Err(Error::GuestFault(fault)) => {
            assert!(!fault.message.is_empty());
            fault.kind
        }
        other => panic!("expected a guest fault, got {other:?}"),
    }
}

#[test]
fn out_of_fuel_is_a_guest_fault_and_the_next_call_starts_afresh() {
    let config = Config::default();
    let snapshot = tree(3, 3);
    let request = one_server("c0-l0");

    let mut measured = Enforcer::new();
    measured.evaluate(&config, &snapshot, &request).unwrap();
    let needed = measured.last_fuel_used().expect("fuel was counted");
    assert!(needed > 1_000, "a decision costs real fuel ({needed})");

    let mut starved = Enforcer::new().with_fuel(needed / 2);
    let err = starved.evaluate(&config, &snapshot, &request).unwrap_err();
    assert_eq!(err.kind(), "guest-fault");
    assert_eq!(err.guest_fault().unwrap().kind, FaultKind::OutOfFuel);
    assert!(err.to_string().contains("out-of-fuel"), "{err}");

    // The trapped instance is discarded; with enough fuel the same handle
    // answers again.
    let mut enough = Enforcer::new().with_fuel(needed);
    assert!(
        enough
            .evaluate(&config, &snapshot, &request)
            .unwrap()
            .is_admitted()
    );
    assert!(
        starved
            .evaluate(&config, &tree(0, 0), &one_server("root"))
            .is_ok()
    );
}

#[test]
fn out_of_fuel_during_consume_is_not_a_storage_error() {
    let snapshot = tree(3, 3);
    let mut store = MemoryStore::new(snapshot.projects.clone(), snapshot.limits.clone());
    let mut starved = Enforcer::new().with_fuel(20_000);
    let result = starved.consume(
        &Config::default(),
        &RetryPolicy::default(),
        &mut store,
        &one_server("c1-l1"),
    );
    assert_eq!(fault_kind(result), FaultKind::OutOfFuel);
    assert_eq!(store.usage("c1-l1", "servers"), 0, "nothing was committed");
}

/// A store whose snapshot is far bigger than the instance may hold: the
/// guest's allocator fails while the host lowers the snapshot into it, the
/// guest aborts (a trap), and the limiter's record makes it a memory-limit
/// fault.
struct HugeStore {
    snapshot: Snapshot,
    commits: u32,
}

impl Store for HugeStore {
    fn read(&mut self, _project: &str, _resources: &[String]) -> Result<Snapshot, StorageError> {
        Ok(self.snapshot.clone())
    }

    fn commit(&mut self, _: &[ClaimEntry], _: &Request) -> Result<CommitOutcome, StorageError> {
        self.commits += 1;
        Ok(CommitOutcome::Committed)
    }
}

#[test]
fn a_memory_limit_hit_in_a_store_callback_is_a_guest_fault() {
    let mut store = HugeStore {
        snapshot: tree(40, 250),
        commits: 0,
    };
    let mut small = Enforcer::new().with_memory_limit(2 << 20);
    let result = small.consume(
        &Config::default(),
        &RetryPolicy::default(),
        &mut store,
        &one_server("c0-l0"),
    );
    let err = result.unwrap_err();
    let fault = err
        .guest_fault()
        .unwrap_or_else(|| panic!("not a guest fault: {err:?}"));
    assert_eq!(fault.kind, FaultKind::MemoryLimit, "{fault}");
    assert_eq!(store.commits, 0);

    // The default limit is plenty for the same input.
    let mut roomy = Enforcer::new();
    let done = roomy
        .consume(
            &Config::default(),
            &RetryPolicy::default(),
            &mut store,
            &one_server("c0-l0"),
        )
        .unwrap();
    assert_eq!(done.attempts, 1);
    assert!(roomy.memory_high_water() > 2 << 20);
}

#[test]
fn a_memory_limit_hit_on_evaluate_is_a_guest_fault() {
    let mut small = Enforcer::new().with_memory_limit(2 << 20);
    let result = small.evaluate(&Config::default(), &tree(40, 250), &one_server("c0-l0"));
    assert_eq!(fault_kind(result), FaultKind::MemoryLimit);
}

#[test]
fn a_stack_overflow_trap_is_a_guest_fault() {
    // A wasm stack far smaller than any call needs: the guest traps with
    // "call stack exhausted" on its first frames.
    let mut tiny = Enforcer::__with_runtime(None, Some(512)).expect("compiles");
    let result = tiny.evaluate(&Config::default(), &tree(1, 1), &one_server("c0-l0"));
    let err = result.unwrap_err();
    let fault = err
        .guest_fault()
        .unwrap_or_else(|| panic!("not a guest fault: {err:?}"));
    assert_eq!(fault.kind, FaultKind::Trap, "{fault}");
    assert!(fault.message.contains("stack"), "{fault}");
}

#[test]
fn a_corrupted_component_is_a_load_fault() {
    let mut bytes = Enforcer::__component().to_vec();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xA5;
    }
    let err = Enforcer::__with_runtime(Some(&bytes), None).unwrap_err();
    assert_eq!(
        err.guest_fault().map(|f| f.kind),
        Some(FaultKind::Load),
        "{err:?}"
    );
}
