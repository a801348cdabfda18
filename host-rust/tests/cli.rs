//! The `delimiter` binary on the example input: readable and JSON output,
//! and exit statuses.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quota.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_delimiter"))
        .args(
            args.iter()
                .map(|a| if *a == "EXAMPLE" { example } else { a }),
        )
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn evaluate_refuses_with_the_violation() {
    let (code, text) = run(&["evaluate", "EXAMPLE"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("refused") && text.contains("servers of org: usage 9 +2"),
        "{text}"
    );

    let (code, text) = run(&["evaluate", "EXAMPLE", "--json"]);
    assert_eq!(code, 1, "{text}");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["admitted"], false);
    assert_eq!(value["violations"][0]["project"], "org");
}

#[test]
fn headroom_and_validate() {
    let (code, text) = run(&["headroom", "EXAMPLE", "--json"]);
    assert_eq!(code, 0, "{text}");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value,
        serde_json::json!([{"resource": "servers", "headroom": 1}])
    );

    let (code, text) = run(&["validate", "EXAMPLE"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("valid"), "{text}");
}

#[test]
fn a_missing_file_is_reported() {
    let (code, text) = run(&["evaluate", "/nonexistent/quota.yaml"]);
    assert_eq!(code, 2);
    assert!(text.contains("/nonexistent/quota.yaml"), "{text}");
}
