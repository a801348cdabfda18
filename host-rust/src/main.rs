//! `delimiter`: ask the quota component a question about a file.
//!
//! The file (YAML, or JSON when it ends in `.json`; `-` reads YAML from
//! standard input) uses the shapes of the conformance vectors:
//!
//! ```yaml
//! config: {model: nested}            # optional: model, max_depth, missing_limit
//! snapshot:
//!   projects: [{id: org}, {id: a, parent: org}]
//!   registered_limits: [{resource: servers, limit: 10}]
//!   project_limits: [{project: a, resource: servers, limit: 4}]
//!   usage: {local: [{project: a, resource: servers, usage: 3}]}
//!   generations: [{project: a, generation: 7}, {project: org, generation: 2}]
//! request: {project: a, deltas: [{resource: servers, delta: 1}]}
//! # headroom only (defaults: the request's project and resources):
//! project: a
//! resources: [servers]
//! ```
//!
//! Exit status: 0 admitted / valid / answered, 1 refused / findings,
//! 2 invalid input or unreadable file, 3 guest fault.

use clap::{Parser, Subcommand};
use delimiter::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "delimiter",
    version,
    about = "Quota decisions from a file, by Delimiter's WebAssembly component"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Admit or refuse the file's request; an admission lists the claim.
    Evaluate(Args),
    /// How much of each resource the project could still consume.
    Headroom(Args),
    /// Check the tree and limits (and Keystone's strict-two-level rule).
    Validate(Args),
}

#[derive(clap::Args)]
struct Args {
    /// YAML or JSON file with config, snapshot and request (`-` for stdin).
    file: PathBuf,
    /// Print machine-readable JSON (the conformance vectors' shapes).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (Command::Evaluate(args) | Command::Headroom(args) | Command::Validate(args)) =
        &cli.command;
    let input = match read_input(&args.file) {
        Ok(input) => input,
        Err(message) => {
            eprintln!("delimiter: {}: {message}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Command::Evaluate(_) => evaluate_cmd(&input, args.json),
        Command::Headroom(_) => headroom_cmd(&input, args.json),
        Command::Validate(_) => validate_cmd(&input, args.json),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(CliError::Input(message)) => {
            eprintln!("delimiter: {}: {message}", args.file.display());
            ExitCode::from(2)
        }
        Err(CliError::Delimiter(error)) => {
            if args.json {
                println!("{}", pretty(&error_json(&error)));
            } else {
                eprintln!("delimiter: {error}");
            }
            ExitCode::from(if error.guest_fault().is_some() { 3 } else { 2 })
        }
    }
}

enum CliError {
    /// The file is missing something the command needs.
    Input(String),
    /// The component's answer was an error.
    Delimiter(Error),
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Delimiter(e)
    }
}

// ---- the input file -------------------------------------------------------

#[derive(Deserialize, Default)]
struct Input {
    #[serde(default)]
    config: ConfigIn,
    #[serde(default)]
    snapshot: SnapshotIn,
    request: Option<RequestIn>,
    project: Option<String>,
    resources: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigIn {
    model: Option<String>,
    max_depth: Option<u32>,
    missing_limit: Option<MissingLimitIn>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum MissingLimitIn {
    Zero,
    Unlimited,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SnapshotIn {
    #[serde(default)]
    projects: Vec<ProjectIn>,
    #[serde(default)]
    registered_limits: Vec<RegisteredLimitIn>,
    #[serde(default)]
    project_limits: Vec<ProjectLimitIn>,
    /// `{local: [...]}` or `{path: {...}}`, as in the vectors (not YAML tags).
    #[serde(default, with = "serde_norway::with::singleton_map")]
    usage: Option<UsageIn>,
    #[serde(default)]
    generations: Vec<GenerationIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectIn {
    id: String,
    parent: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisteredLimitIn {
    resource: String,
    limit: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectLimitIn {
    project: String,
    resource: String,
    limit: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum UsageIn {
    Local(Vec<UsageEntryIn>),
    Path(PathUsageIn),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageEntryIn {
    project: String,
    resource: String,
    usage: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceUsageIn {
    resource: String,
    usage: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathUsageIn {
    #[serde(default)]
    local: Vec<ResourceUsageIn>,
    #[serde(default)]
    subtree: Vec<UsageEntryIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerationIn {
    project: String,
    generation: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestIn {
    project: String,
    #[serde(default)]
    deltas: Vec<DeltaIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeltaIn {
    resource: String,
    delta: i64,
}

fn read_input(path: &Path) -> Result<Input, String> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())?
    } else {
        std::fs::read_to_string(path).map_err(|e| e.to_string())?
    };
    if path.extension().is_some_and(|x| x == "json") {
        serde_json::from_str(&text).map_err(|e| format!("not valid input JSON: {e}"))
    } else {
        serde_norway::from_str(&text).map_err(|e| format!("not valid input YAML: {e}"))
    }
}

impl Input {
    fn config(&self) -> Result<Config, Error> {
        let mut config = Config::default();
        if let Some(name) = &self.config.model {
            config.model = Model::parse(name)?;
        }
        if let Some(depth) = self.config.max_depth {
            config.max_depth = depth;
        }
        if let Some(missing) = self.config.missing_limit {
            config.missing_limit = match missing {
                MissingLimitIn::Zero => MissingLimit::Zero,
                MissingLimitIn::Unlimited => MissingLimit::Unlimited,
            };
        }
        Ok(config)
    }

    fn snapshot(&self) -> Snapshot {
        let s = &self.snapshot;
        let entry = |u: &UsageEntryIn| UsageEntry::new(&u.project, &u.resource, u.usage);
        Snapshot {
            projects: s
                .projects
                .iter()
                .map(|p| Project {
                    id: p.id.clone(),
                    parent: p.parent.clone(),
                })
                .collect(),
            limits: Limits {
                registered: s
                    .registered_limits
                    .iter()
                    .map(|l| RegisteredLimit::new(&l.resource, l.limit))
                    .collect(),
                project: s
                    .project_limits
                    .iter()
                    .map(|l| ProjectLimit::new(&l.project, &l.resource, l.limit))
                    .collect(),
            },
            usage: match &s.usage {
                None => Usage::default(),
                Some(UsageIn::Local(entries)) => Usage::Local(entries.iter().map(entry).collect()),
                Some(UsageIn::Path(path)) => Usage::Path(PathUsage {
                    local: path
                        .local
                        .iter()
                        .map(|u| ResourceUsage::new(&u.resource, u.usage))
                        .collect(),
                    subtree: path.subtree.iter().map(entry).collect(),
                }),
            },
            generations: s
                .generations
                .iter()
                .map(|g| Generation::new(&g.project, g.generation))
                .collect(),
        }
    }

    fn request(&self) -> Result<Request, CliError> {
        let r = self
            .request
            .as_ref()
            .ok_or_else(|| CliError::Input("the file has no `request`".into()))?;
        Ok(Request::new(
            &r.project,
            r.deltas
                .iter()
                .map(|d| Delta::new(&d.resource, d.delta))
                .collect(),
        ))
    }
}

// ---- commands -------------------------------------------------------------

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialize")
}

fn signed(n: i64) -> String {
    format!("{n:+}")
}

fn evaluate_cmd(input: &Input, as_json: bool) -> Result<u8, CliError> {
    let config = input.config()?;
    let request = input.request()?;
    let decision = evaluate(&config, &input.snapshot(), &request)?;
    if as_json {
        let value = match &decision {
            Decision::Admitted { claim } => json!({
                "admitted": true,
                "claim": claim.iter().map(|c| json!({"project": c.project, "generation": c.generation})).collect::<Vec<_>>(),
            }),
            Decision::Refused { violations } => json!({
                "admitted": false,
                "violations": violations.iter().map(|v| json!({
                    "project": v.project, "resource": v.resource, "limit": v.limit,
                    "usage": v.usage, "delta": v.delta,
                })).collect::<Vec<_>>(),
            }),
        };
        println!("{}", pretty(&value));
    } else {
        let asked: Vec<String> = request
            .deltas
            .iter()
            .map(|d| format!("{} {}", d.resource, signed(d.delta)))
            .collect();
        match &decision {
            Decision::Admitted { claim } => {
                println!(
                    "admitted: {} may change {} ({} model)",
                    request.project,
                    asked.join(", "),
                    config.model
                );
                if claim.is_empty() {
                    println!("no claim: nothing increases, no generation needs checking");
                } else {
                    println!("claim: in ONE transaction with the usage rows, compare-and-update");
                    let width = claim.iter().map(|c| c.project.len()).max().unwrap_or(0);
                    for c in claim {
                        println!("  {:width$}  generation {}", c.project, c.generation);
                    }
                }
            }
            Decision::Refused { violations } => {
                println!(
                    "refused: {} may not change {} ({} model)",
                    request.project,
                    asked.join(", "),
                    config.model
                );
                for v in violations {
                    println!(
                        "  {} of {}: usage {} {} would pass the limit of {}",
                        v.resource,
                        v.project,
                        v.usage,
                        signed(v.delta),
                        v.limit
                    );
                }
            }
        }
    }
    Ok(if decision.is_admitted() { 0 } else { 1 })
}

fn headroom_cmd(input: &Input, as_json: bool) -> Result<u8, CliError> {
    let config = input.config()?;
    let request = input.request.as_ref();
    let project = input
        .project
        .clone()
        .or_else(|| request.map(|r| r.project.clone()))
        .ok_or_else(|| CliError::Input("the file has neither `project` nor `request`".into()))?;
    let resources = input
        .resources
        .clone()
        .or_else(|| request.map(|r| r.deltas.iter().map(|d| d.resource.clone()).collect()))
        .ok_or_else(|| CliError::Input("the file has neither `resources` nor `request`".into()))?;
    let rows = headroom(&config, &input.snapshot(), &project, &resources)?;
    if as_json {
        let list: Vec<Value> = rows
            .iter()
            .map(|h| {
                let room = match h.room {
                    Room::Unlimited => json!("unlimited"),
                    Room::Limited(n) => json!(n),
                };
                json!({"resource": h.resource, "headroom": room})
            })
            .collect();
        println!("{}", pretty(&Value::Array(list)));
    } else {
        println!("headroom of {project} ({} model):", config.model);
        let width = rows.iter().map(|h| h.resource.len()).max().unwrap_or(0);
        for h in &rows {
            match h.room {
                Room::Unlimited => println!("  {:width$}  unlimited", h.resource),
                Room::Limited(n) => println!("  {:width$}  {n}", h.resource),
            }
        }
    }
    Ok(0)
}

fn finding_json(f: &Finding) -> Value {
    match f {
        Finding::Invalid(e) => {
            let mut m = Map::new();
            m.insert("kind".into(), json!(e.kind()));
            if let Some(p) = e.project() {
                m.insert("project".into(), json!(p));
            }
            if let Some(r) = e.resource() {
                m.insert("resource".into(), json!(r));
            }
            m.insert("message".into(), json!(e.to_string()));
            Value::Object(m)
        }
        Finding::ChildLimitExceedsParent {
            parent,
            child,
            resource,
            parent_limit,
            child_limit,
        } => json!({
            "kind": "child-limit-exceeds-parent", "parent": parent, "child": child,
            "resource": resource, "parent_limit": parent_limit, "child_limit": child_limit,
        }),
    }
}

fn validate_cmd(input: &Input, as_json: bool) -> Result<u8, CliError> {
    let config = input.config()?;
    let snapshot = input.snapshot();
    let findings = validate(&config, &snapshot.projects, &snapshot.limits)?;
    if as_json {
        println!(
            "{}",
            pretty(&Value::Array(findings.iter().map(finding_json).collect()))
        );
    } else if findings.is_empty() {
        println!(
            "valid: {} projects, {} limits ({} model)",
            snapshot.projects.len(),
            snapshot.limits.registered.len() + snapshot.limits.project.len(),
            config.model
        );
    } else {
        println!("{} finding(s) ({} model):", findings.len(), config.model);
        for f in &findings {
            match f {
                Finding::Invalid(e) => println!("  {}: {e}", e.kind()),
                Finding::ChildLimitExceedsParent {
                    parent,
                    child,
                    resource,
                    parent_limit,
                    child_limit,
                } => println!(
                    "  child-limit-exceeds-parent: {child}'s limit of {} for {resource} is above {parent}'s {parent_limit}",
                    if *child_limit == UNLIMITED {
                        "unlimited".to_string()
                    } else {
                        child_limit.to_string()
                    }
                ),
            }
        }
    }
    Ok(if findings.is_empty() { 0 } else { 1 })
}

fn error_json(error: &Error) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!(error.kind()));
    m.insert("message".into(), json!(error.to_string()));
    if let Error::Invalid(e) = error {
        if let Some(p) = e.project() {
            m.insert("project".into(), json!(p));
        }
        if let Some(r) = e.resource() {
            m.insert("resource".into(), json!(r));
        }
    }
    json!({ "error": m })
}
