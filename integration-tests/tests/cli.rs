//! The command-line surface callers parse: `--version`, `spec`, `list`,
//! `ps`, `features`.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use corten_integration_tests::{require_root, runtime_bin, Bundle, OutputExt, Runtime};
use serde_json::Value;

/// runc 1.1.5's `spec` output, the reference for corten's defaults.
const RUNC_SPEC: &str = include_str!("fixtures/runc-spec.json");
/// runc 1.1.5's `spec --rootless` output (generated as root: host ids 0).
const RUNC_SPEC_ROOTLESS: &str = include_str!("fixtures/runc-spec-rootless.json");

#[test]
fn version_names_the_runtime_commit_and_spec() {
    require_root!();
    let rt = Runtime::new("version");
    let out = rt.cmd(&["--version"]).assert_success("--version");
    let text = out.stdout_str();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("corten version "),
        "first line {first:?} must start with `corten version `"
    );
    assert!(
        first.len() > "corten version ".len(),
        "no version number in {first:?}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("commit: ")),
        "no `commit:` line in {text:?}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("spec: 1.")),
        "no `spec: 1.x` line in {text:?}"
    );
}

/// Fails unless `actual` has the same structure as `expected`: the same
/// object keys in the same order, array lengths and value types,
/// recursively.
fn assert_same_shape(expected: &Value, actual: &Value, at: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let ek: BTreeSet<_> = e.keys().collect();
            let ak: BTreeSet<_> = a.keys().collect();
            assert_eq!(ek, ak, "keys differ at {at:?}");
            // And in runc's order (`process.terminal` on line 3, not 165).
            let eo: Vec<_> = e.keys().collect();
            let ao: Vec<_> = a.keys().collect();
            assert_eq!(eo, ao, "keys in another order than runc's at {at:?}");
            for (key, value) in e {
                assert_same_shape(value, &a[key], &format!("{at}/{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "array length differs at {at:?}: {actual}");
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_same_shape(ev, av, &format!("{at}/{i}"));
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        _ => panic!("type differs at {at:?}: expected like {expected}, got {actual}"),
    }
}

/// Run `spec <args>` in a fresh directory and parse what it wrote.
fn generate_spec(test: &str, args: &[&str]) -> Value {
    let rt = Runtime::new(test);
    let dir = rt.scratch().join("spec");
    fs::create_dir(&dir).expect("mkdir");
    let mut cmd = Command::new(runtime_bin());
    cmd.arg("spec").args(args).current_dir(&dir);
    rt.output(cmd).assert_success("spec");
    let text =
        fs::read_to_string(dir.join("config.json")).expect("spec writes config.json in the cwd");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("spec wrote invalid JSON ({e}): {text}"))
}

fn assert_matches_runc(spec: &Value, reference: &str) {
    let runc: Value = serde_json::from_str(reference).expect("fixture");
    assert_same_shape(&runc, spec, "");
    assert!(
        spec["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{}",
        spec["ociVersion"]
    );
    for pointer in [
        "/linux/maskedPaths",
        "/linux/readonlyPaths",
        "/linux/namespaces",
        "/linux/uidMappings",
        "/linux/gidMappings",
        "/linux/resources",
        "/process/capabilities",
        "/process/rlimits",
        "/process/noNewPrivileges",
        "/process/user",
        "/process/cwd",
        "/mounts",
        "/root",
    ] {
        assert_eq!(
            spec.pointer(pointer),
            runc.pointer(pointer),
            "{pointer} differs from runc's default"
        );
    }
}

#[test]
fn spec_default_matches_runc() {
    require_root!();
    let spec = generate_spec("spec", &[]);
    assert_matches_runc(&spec, RUNC_SPEC);
}

#[test]
fn spec_rootless_matches_runc() {
    require_root!();
    let spec = generate_spec("spec-rootless", &["--rootless"]);
    assert_matches_runc(&spec, RUNC_SPEC_ROOTLESS);
}

#[test]
fn spec_refuses_to_overwrite_config() {
    require_root!();
    let b = Bundle::new("spec-exists");
    let before = fs::read(b.path().join("config.json")).expect("config");
    let rt = Runtime::new("spec-exists");
    let path = b.path().to_str().expect("utf-8 path");
    rt.cmd(&["spec", "--bundle", path])
        .assert_failure("spec over an existing config.json");
    assert_eq!(
        fs::read(b.path().join("config.json")).expect("config"),
        before
    );
}

/// Columns of `list` (table) rows, keyed by id.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn list_formats_table_json_and_quiet() {
    require_root!();
    let rt = Runtime::new("list");
    let created = Bundle::new("list");
    let mut running = Bundle::new("list");
    running.args(&["sleep", "1000"]);
    rt.create(created.name(), &created).assert_success("create");
    rt.run_with(running.name(), &running, &["--detach"])
        .assert_success("run --detach");

    let table = rt.cmd(&["list"]).assert_success("list").stdout_str();
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let rows = table_rows(&table);
    assert_eq!(rows.len(), 2, "{table}");
    for (b, status) in [(&created, "created"), (&running, "running")] {
        let row = rows
            .iter()
            .find(|r| r[0] == b.name())
            .unwrap_or_else(|| panic!("{} not listed", b.name()));
        assert_eq!(row[1], rt.pid(b.name()).to_string());
        assert_eq!(row[2], status);
        assert_eq!(Some(row[3].as_str()), b.path().to_str());
    }

    let json: Value = serde_json::from_slice(
        &rt.cmd(&["list", "--format", "json"])
            .assert_success("list json")
            .stdout,
    )
    .expect("list --format json prints JSON");
    let items = json.as_array().expect("an array");
    assert_eq!(items.len(), 2);
    for item in items {
        for field in ["id", "pid", "status", "bundle", "created", "owner"] {
            assert!(
                item.get(field).is_some(),
                "list entry lacks {field}: {item}"
            );
        }
        let id = item["id"].as_str().expect("id");
        assert_eq!(item["status"], rt.status(id));
        assert_eq!(item["pid"], rt.pid(id));
    }

    let quiet = rt
        .cmd(&["list", "-q"])
        .assert_success("list -q")
        .stdout_str();
    let ids: BTreeSet<&str> = quiet.lines().collect();
    assert_eq!(ids, BTreeSet::from([created.name(), running.name()]));
}

#[test]
fn list_with_no_containers() {
    require_root!();
    let rt = Runtime::new("list-empty");
    let table = rt.cmd(&["list"]).assert_success("list").stdout_str();
    assert_eq!(table.lines().count(), 1, "only the header: {table:?}");
    assert!(table.starts_with("ID"));
    let json = rt
        .cmd(&["list", "--format", "json"])
        .assert_success("list json")
        .stdout_str();
    assert!(
        matches!(json.trim(), "null" | "[]"),
        "empty list as JSON: {json:?}"
    );
    assert_eq!(
        rt.cmd(&["list", "-q"])
            .assert_success("list -q")
            .stdout_str(),
        ""
    );
}

#[test]
fn ps_lists_the_container_processes() {
    require_root!();
    let mut b = Bundle::new("ps");
    b.sh("sleep 1000 & echo ready; wait");
    let rt = Runtime::new("ps");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.wait_output(id, "ready");
    let out = rt
        .cmd(&["ps", "--format", "json", id])
        .assert_success("ps --format json");
    let pids: Vec<i64> =
        serde_json::from_slice(&out.stdout).expect("ps prints a JSON array of pids");
    assert!(pids.contains(&rt.pid(id)), "{pids:?} lacks the init pid");
    assert_eq!(pids.len(), 2, "{pids:?}");
}

#[test]
fn features_lists_all_namespaces() {
    require_root!();
    let rt = Runtime::new("features");
    let out = rt.cmd(&["features"]).assert_success("features");
    let features: Value = serde_json::from_slice(&out.stdout).expect("features prints JSON");
    assert!(
        features["ociVersionMin"].is_string() && features["ociVersionMax"].is_string(),
        "{features}"
    );
    let namespaces: BTreeSet<&str> = features["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for ns in [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ] {
        assert!(
            namespaces.contains(ns),
            "features lacks namespace {ns}: {namespaces:?}"
        );
    }
}

#[test]
fn unknown_command_fails() {
    require_root!();
    let rt = Runtime::new("unknown-command");
    rt.cmd(&["frobnicate"]).assert_failure("unknown command");
}
