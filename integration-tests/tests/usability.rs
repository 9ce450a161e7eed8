//! What a user meets around the containers (issue 21): help that lists a
//! command's own flags, suggestions for typos, possible values, `corten
//! check`, and the `--debug` timeline of create, start, exec and delete.

use std::fs;

use corten_integration_tests::{require_root, Bundle, OutputExt, Runtime};
use serde_json::Value;

#[test]
fn a_commands_help_lists_its_own_flags_and_the_top_level_help_the_global_ones() {
    require_root!();
    let rt = Runtime::new("help");
    let top = rt.cmd(&["--help"]).assert_success("--help").stdout_str();
    for needle in [
        "--root",
        "--log-format",
        "--cgroup-manager",
        "config.json",
        "Examples:",
        "corten check",
        "[possible values: text, json]",
        "[possible values: cgroupfs, systemd, disabled]",
    ] {
        assert!(
            top.contains(needle),
            "`corten --help` lacks {needle:?}:\n{top}"
        );
    }
    assert_eq!(
        rt.cmd(&["help"]).assert_success("help").stdout_str(),
        top,
        "`corten help` and `corten --help` differ"
    );
    let run = rt
        .cmd(&["help", "run"])
        .assert_success("help run")
        .stdout_str();
    assert!(run.contains("Usage: corten run"), "{run}");
    assert!(
        run.contains("--bundle") && run.contains("--detach"),
        "{run}"
    );
    assert!(
        run.contains("bundle"),
        "run's help does not say what a bundle is:\n{run}"
    );
    for global in ["--root", "--log-format", "--systemd-cgroup", "--criu"] {
        assert!(
            !run.contains(global),
            "`help run` lists the global {global}:\n{run}"
        );
    }
    assert_eq!(
        rt.cmd(&["run", "--help"])
            .assert_success("run --help")
            .stdout_str(),
        run,
        "`corten run --help` and `corten help run` differ"
    );
    let kill = rt
        .cmd(&["help", "kill"])
        .assert_success("help kill")
        .stdout_str();
    assert_eq!(
        kill.matches("SIGTERM").count(),
        1,
        "kill's help should name its default once:\n{kill}"
    );
}

#[test]
fn mistyped_commands_and_flags_get_runcs_error_and_a_suggestion() {
    require_root!();
    let rt = Runtime::new("typo");
    for (args, code, words) in [
        (
            &["strat", "x"][..],
            3,
            &["No help topic for 'strat'", "did you mean 'start'?"][..],
        ),
        (
            &["help", "lsit"],
            3,
            &["No help topic for 'lsit'", "did you mean 'list'?"],
        ),
        (
            &["run", "--bundel", "x", "id"],
            1,
            &[
                "flag provided but not defined: -bundel",
                "did you mean '--bundle'?",
            ],
        ),
        (&["frobnicate"], 3, &["No help topic for 'frobnicate'"]),
    ] {
        let out = rt.cmd(args);
        assert_eq!(out.code(), code, "{args:?}: {}", out.stderr_str());
        let err = out.stderr_str();
        for w in words {
            assert!(err.contains(w), "{args:?}: {w:?} not in {err:?}");
        }
        assert_eq!(
            err.lines().count(),
            1,
            "{args:?}: one error line, got {err:?}"
        );
    }
    let out = rt.cmd(&["frobnicate"]);
    assert!(
        !out.stderr_str().contains("did you mean"),
        "a suggestion for a name like no command: {}",
        out.stderr_str()
    );
}

const CHECKS: [&str; 18] = [
    "kernel",
    "clone3",
    "openat2",
    "close_range",
    "CLONE_INTO_CGROUP",
    "open_tree",
    "mount_setattr",
    "idmapped mounts",
    "seccomp",
    "seccomp user notification",
    "cgroups",
    "cgroup controllers",
    "systemd",
    "user namespaces",
    "subordinate ids",
    "AppArmor",
    "SELinux",
    "state root",
];

#[test]
fn check_reports_every_feature_as_text_and_json() {
    require_root!();
    let rt = Runtime::new("check");
    let out = rt
        .cmd(&["check", "--format", "json"])
        .assert_success("check --format json");
    let report: Value = serde_json::from_str(&out.stdout_str()).expect("check's JSON");
    assert_eq!(report["ready"], true, "{report}");
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(report["kernel"], release.trim(), "{report}");
    let checks = report["checks"].as_array().expect("checks");
    for name in CHECKS {
        let c = checks
            .iter()
            .find(|c| c["name"] == *name)
            .unwrap_or_else(|| panic!("no check {name:?} in {report}"));
        let status = c["status"].as_str().unwrap_or_default();
        assert!(
            ["ok", "fallback", "missing", "info", "error"].contains(&status),
            "{name}: status {status:?}"
        );
        assert!(
            !c["detail"].as_str().unwrap_or_default().is_empty(),
            "{name}: no detail"
        );
    }
    // What this kernel has is reported as such (the machines run Linux 6.x).
    for name in [
        "clone3",
        "openat2",
        "close_range",
        "mount_setattr",
        "seccomp",
    ] {
        let c = checks.iter().find(|c| c["name"] == name).expect("check");
        assert_eq!(c["status"], "ok", "{c}");
    }
    let systemd = checks
        .iter()
        .find(|c| c["name"] == "systemd")
        .expect("systemd");
    let booted = std::path::Path::new("/run/systemd/system").is_dir();
    assert_eq!(
        systemd["status"],
        if booted { "ok" } else { "info" },
        "{systemd}"
    );
    let text = rt.cmd(&["check"]).assert_success("check").stdout_str();
    assert!(
        text.starts_with("corten check: this host can run"),
        "{text}"
    );
    for c in checks {
        let line = format!(
            "{:<9} {:<26} {}",
            c["status"].as_str().unwrap_or_default(),
            c["name"].as_str().unwrap_or_default(),
            c["detail"].as_str().unwrap_or_default()
        );
        assert!(text.contains(&line), "text lacks {line:?}:\n{text}");
    }
    let bad = rt.cmd(&["check", "--format", "xml"]);
    assert_eq!(bad.code(), 1);
    assert!(
        bad.stderr_str().contains("invalid format"),
        "{}",
        bad.stderr_str()
    );
}

/// The debug step lines a log holds: (msg, µs).
fn debug_steps(log: &str, json: bool) -> Vec<(String, u64)> {
    log.lines()
        .filter_map(|l| {
            let msg = if json {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["level"] == "debug")
                    .then(|| v["msg"].as_str().unwrap_or_default().to_string())?
            } else {
                let rest = l.split_once(" level=debug msg=\"")?.1;
                rest.strip_suffix('"')?.to_string()
            };
            let us = msg.rsplit_once(" (")?.1.strip_suffix("µs)")?.parse().ok()?;
            Some((msg, us))
        })
        .collect()
}

#[test]
fn debug_prints_each_step_of_create_start_exec_and_delete_with_its_microseconds() {
    require_root!();
    for json in [false, true] {
        let rt = Runtime::new("debug-timeline");
        let log = rt.scratch().join("debug.log");
        let mut global = vec!["--debug", "--log", log.to_str().expect("utf-8")];
        if json {
            global.extend(["--log-format", "json"]);
        }
        let rt = rt.with_global_args(&global);
        let mut b = Bundle::new("debug-timeline");
        b.args(&["sleep", "1000"]);
        let id = b.name().to_string();
        let mut seen = 0;
        let mut steps_of = |what: &str| {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let steps = debug_steps(&text, json);
            let new = steps[seen..].to_vec();
            seen = steps.len();
            assert!(
                !new.is_empty(),
                "{what} (json {json}) logged no step with its µs:\n{text}"
            );
            new
        };
        rt.create(&id, &b).assert_success("create");
        let create = steps_of("create");
        rt.start(&id).assert_success("start");
        let start = steps_of("start");
        rt.cmd(&["exec", &id, "true"]).assert_success("exec");
        let exec = steps_of("exec");
        rt.cmd(&["delete", "--force", &id]).assert_success("delete");
        let delete = steps_of("delete");
        let names = |s: &[(String, u64)]| {
            s.iter()
                .map(|(m, _)| m.clone())
                .collect::<Vec<_>>()
                .join(" | ")
        };
        for (what, steps, words) in [
            (
                "create",
                &create,
                &["config", "cgroup", "init: pivoted", "created"][..],
            ),
            ("start", &start, &["released"]),
            ("exec", &exec, &["exec"]),
            ("delete", &delete, &["removed"]),
        ] {
            let all = names(steps);
            for w in words {
                assert!(all.contains(w), "{what}'s steps lack {w:?}: {all}");
            }
        }
        // Each step's time is the time since the previous step of the same
        // process: a create's steps are milliseconds, not the time since
        // boot or since the epoch.
        for (msg, us) in &create {
            assert!(*us < 10_000_000, "create's step {msg:?} took {us} µs");
        }
    }
    // Without --debug: no debug line.
    let rt = Runtime::new("debug-off");
    let log = rt.scratch().join("quiet.log");
    let rt = rt.with_global_args(&["--log", log.to_str().expect("utf-8")]);
    let b = Bundle::new("debug-off");
    rt.run_ok(b.name(), &b);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        debug_steps(&text, false).is_empty() && !text.contains("level=debug"),
        "debug lines without --debug: {text}"
    );
}
