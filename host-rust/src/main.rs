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
use delimiter::vector::*;
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

/// The file: the conformance vectors' shapes ([`delimiter::vector`]).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    config: ConfigShape,
    #[serde(default)]
    snapshot: SnapshotShape,
    request: Option<Request>,
    project: Option<String>,
    resources: Option<Vec<String>>,
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
        self.config.config(&mut Enforcer::new())
    }

    fn request(&self) -> Result<&Request, CliError> {
        self.request
            .as_ref()
            .ok_or_else(|| CliError::Input("the file has no `request`".into()))
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
    let decision = evaluate(&config, &input.snapshot.snapshot(), request)?;
    if as_json {
        println!("{}", pretty(&decision_json(&decision)));
    } else {
        let asked: Vec<String> = request
            .deltas
            .iter()
            .map(|d| format!("{} {}", d.resource, signed(d.delta)))
            .collect();
        match &decision {
            Decision::Admitted(claim) => {
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
            Decision::Refused(violations) => {
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
    let rows = headroom(&config, &input.snapshot.snapshot(), &project, &resources)?;
    if as_json {
        println!("{}", pretty(&headroom_json(&rows)));
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

fn validate_cmd(input: &Input, as_json: bool) -> Result<u8, CliError> {
    let config = input.config()?;
    let snapshot = input.snapshot.snapshot();
    let findings = validate(&config, &snapshot.projects, &snapshot.limits)?;
    if as_json {
        let rendered: Vec<Value> = findings
            .iter()
            .map(|f| {
                let mut value = finding_json(f);
                if let (Finding::Invalid(e), Value::Object(m)) = (f, &mut value) {
                    m.insert("message".into(), json!(e.message));
                }
                value
            })
            .collect();
        println!("{}", pretty(&Value::Array(rendered)));
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
                Finding::Invalid(e) => println!("  {}: {}", e.kind(), e.message),
                Finding::ChildLimitExceedsParent(x) => println!(
                    "  child-limit-exceeds-parent: {}'s limit of {} for {} is above {}'s {}",
                    x.child,
                    if x.child_limit == UNLIMITED {
                        "unlimited".to_string()
                    } else {
                        x.child_limit.to_string()
                    },
                    x.resource,
                    x.parent,
                    x.parent_limit
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
        m.extend(invalid_fields(&e.input));
    }
    json!({ "error": m })
}
