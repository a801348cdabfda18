//! Measures what the README and the fuel and memory constants quote: the
//! component's size and load time (compiled, or read from the on-disk
//! cache), and the fuel, memory and time of a small decision and of one on
//! a 10,000-project tree.
//!
//! `cargo run --release -p delimiter --example measure`

use delimiter::*;
use std::time::Instant;

fn tree(children: usize, grandchildren: usize) -> Snapshot {
    let mut projects = vec![Project::root("root")];
    let mut usage = Vec::new();
    let mut generations = vec![Generation::new("root", 1)];
    for c in 0..children {
        let child = format!("c{c:03}");
        projects.push(Project::child(&child, "root"));
        generations.push(Generation::new(&child, 1));
        for g in 0..grandchildren {
            let leaf = format!("c{c:03}-g{g:03}");
            projects.push(Project::child(&leaf, &child));
            usage.push(UsageEntry::new(&leaf, "servers", 1));
            usage.push(UsageEntry::new(&leaf, "cores", 4));
            generations.push(Generation::new(&leaf, 1));
        }
    }
    Snapshot {
        projects,
        limits: Limits {
            registered: vec![
                RegisteredLimit::new("servers", 1_000_000),
                RegisteredLimit::new("cores", 4_000_000),
            ],
            project: vec![],
        },
        usage: Usage::Local(usage),
        generations,
    }
}

fn measure(label: &str, snapshot: &Snapshot, request: &Request) {
    let mut enforcer = Enforcer::new();
    let config = Config::new(Model::Nested);
    let started = Instant::now();
    let first = enforcer
        .evaluate(&config, snapshot, request)
        .expect("decision");
    let first_time = started.elapsed();
    let fuel = enforcer.last_fuel_used().unwrap();
    let runs = 50;
    let started = Instant::now();
    for _ in 0..runs {
        assert_eq!(
            enforcer
                .evaluate(&config, snapshot, request)
                .expect("decision"),
            first
        );
    }
    let per_call = started.elapsed() / runs;
    println!(
        "{label}: {} projects, fuel {fuel}, memory {} KiB, first call {first_time:?} (with instantiation), then {per_call:?} per call",
        snapshot.projects.len(),
        enforcer.memory_high_water() / 1024,
    );
}

fn main() {
    println!("component: {} bytes", component_size());
    let started = Instant::now();
    let load = load_info().expect("component loads");
    println!(
        "load (Engine + component from {}{} + InstancePre): {:.3}s (measured {:?} around it)",
        load.source,
        load.note.map(|n| format!(": {n}")).unwrap_or_default(),
        load.seconds,
        started.elapsed()
    );

    let request = Request::new(
        "c007-g042",
        vec![Delta::new("servers", 1), Delta::new("cores", 4)],
    );
    let small = Request::new("c001-g042", request.deltas.clone());
    measure("small", &tree(2, 50), &small);
    measure("10k", &tree(100, 99), &request);
}
