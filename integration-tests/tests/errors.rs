//! Refused configurations and commands. Each must fail with a non-zero exit,
//! one line on stderr, a JSON `"level":"error"` line as the last line of the
//! `--log` file, and nothing left behind: no state under `--root`, no cgroup,
//! no mount below the bundle, no process mentioning the container id.

use std::fs;
use std::path::Path;

use corten_integration_tests::{
    cgroup_dirs, mounts_under, nofile_hard_limit, processes_mentioning, require_root, Bundle,
    OutputExt, Runtime,
};
use serde_json::{json, Value};

/// A runtime logging JSON to `<scratch>/log.json`.
fn logging_runtime(test: &str) -> Runtime {
    let rt = Runtime::new(test);
    let log = rt.scratch().join("log.json");
    let log = log.to_str().expect("utf-8").to_owned();
    rt.with_global_args(&["--log", &log, "--log-format", "json"])
}

/// The `msg` of the last line of the runtime's JSON log, checked to be an
/// error entry.
fn last_log_error(rt: &Runtime) -> String {
    let text = fs::read_to_string(rt.scratch().join("log.json")).unwrap_or_default();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("empty --log file"));
    let entry: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last log line is not JSON ({e}): {last:?}"));
    assert_eq!(entry["level"], "error", "{last}");
    let msg = entry["msg"].as_str().unwrap_or_default();
    assert!(!msg.is_empty(), "error entry without msg: {last}");
    msg.to_owned()
}

/// The failed command's stderr must be exactly one non-empty line.
fn assert_one_line_error(out: &std::process::Output) {
    let stderr = out.stderr_str();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected a single error line on stderr, got {stderr:?}"
    );
}

fn assert_nothing_left(rt: &Runtime, b: &Bundle, id: &str) {
    assert!(
        rt.root_entries().is_empty(),
        "state left under --root: {:?}",
        rt.root_entries()
    );
    assert!(
        cgroup_dirs(b.cgroup_path()).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs(b.cgroup_path())
    );
    assert!(
        mounts_under(b.path()).is_empty(),
        "mounts left under the bundle: {:?}",
        mounts_under(b.path())
    );
    if id.len() >= 8 {
        assert!(
            processes_mentioning(id).is_empty(),
            "processes left: {:?}",
            processes_mentioning(id)
        );
    }
}

/// `create` the bundle and check the refusal is clean; returns the logged message.
fn assert_create_refused(test: &str, b: &Bundle) -> String {
    assert_create_refused_with(test, b, &[])
}

fn assert_create_refused_with(test: &str, b: &Bundle, extra: &[&str]) -> String {
    let rt = logging_runtime(test);
    let id = b.name();
    let out = rt
        .create_with(id, b, extra)
        .assert_failure(&format!("create ({test})"));
    assert_one_line_error(&out);
    let msg = last_log_error(&rt);
    assert_nothing_left(&rt, b, id);
    msg
}

#[test]
fn malformed_json_config() {
    require_root!();
    let mut b = Bundle::new("err-malformed");
    b.write_raw_config("{ \"ociVersion\": \"1.0.2\", \"process\": ");
    assert_create_refused("err-malformed", &b);
}

#[test]
fn schema_invalid_config() {
    require_root!();
    let mut b = Bundle::new("err-schema");
    b.set("/process/args", json!(5));
    assert_create_refused("err-schema", &b);
}

#[test]
fn wrongly_typed_resources() {
    require_root!();
    let mut b = Bundle::new("err-res-type");
    b.set("/linux/resources/memory", json!({ "limit": "64m" }));
    let msg = assert_create_refused("err-res-type", &b);
    assert!(
        msg.contains(r#"linux.resources.memory.limit: invalid type: string "64m", expected int64"#),
        "{msg}"
    );
}

#[test]
fn empty_args() {
    require_root!();
    let mut b = Bundle::new("err-empty-args");
    b.set("/process/args", json!([]));
    assert_create_refused("err-empty-args", &b);
}

#[test]
fn missing_config() {
    require_root!();
    let mut b = Bundle::new("err-no-config");
    b.write_raw_config("");
    fs::remove_file(b.path().join("config.json")).expect("remove config");
    assert_create_refused("err-no-config", &b);
}

#[test]
fn missing_rootfs() {
    require_root!();
    let mut b = Bundle::new("err-no-rootfs");
    b.set("/root/path", json!("no-such-rootfs"));
    assert_create_refused("err-no-rootfs", &b);
}

#[test]
fn missing_bundle_directory() {
    require_root!();
    let rt = logging_runtime("err-no-bundle");
    let missing = rt.scratch().join("no-such-bundle");
    let out = rt.cmd(&[
        "create",
        "--bundle",
        missing.to_str().expect("utf-8"),
        "err-no-bundle",
    ]);
    assert_one_line_error(&out.assert_failure("create with a missing bundle"));
    last_log_error(&rt);
    assert!(rt.root_entries().is_empty());
}

#[test]
fn duplicate_id_leaves_the_first_container_untouched() {
    require_root!();
    let mut first = Bundle::new("err-dup");
    first.args(&["sleep", "1000"]);
    let mut second = Bundle::new("err-dup");
    second.args(&["sleep", "1000"]);
    let rt = logging_runtime("err-dup");
    let id = first.name();
    rt.create(id, &first).assert_success("first create");
    let before = rt.state(id);
    let out = rt
        .create(id, &second)
        .assert_failure("second create with the same id");
    assert_one_line_error(&out);
    last_log_error(&rt);
    assert_eq!(rt.state(id), before, "the first container changed");
    assert_eq!(rt.root_entries(), [id]);
    assert!(
        cgroup_dirs(second.cgroup_path()).is_empty(),
        "the second create made a cgroup"
    );
}

#[test]
fn invalid_container_ids() {
    require_root!();
    let long = "a".repeat(1025);
    for id in ["../x", "", "a/b", ".", "..", long.as_str()] {
        let b = Bundle::new("err-bad-id");
        let rt = logging_runtime("err-bad-id");
        let out = rt
            .create(id, &b)
            .assert_failure(&format!("create with id {id:?}"));
        assert_one_line_error(&out);
        last_log_error(&rt);
        assert_nothing_left(&rt, &b, "");
        let escaped: Vec<_> = fs::read_dir(rt.scratch())
            .expect("scratch")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            !escaped.iter().any(|n| n == "x" || n == "a"),
            "state written outside --root: {escaped:?}"
        );
    }
}

#[test]
fn unknown_namespace_type() {
    require_root!();
    let mut b = Bundle::new("err-ns-type");
    b.push("/linux/namespaces", json!({ "type": "frobnicate" }));
    assert_create_refused("err-ns-type", &b);
}

#[test]
fn user_namespace_without_mappings() {
    require_root!();
    let mut b = Bundle::new("err-userns");
    b.push_namespace("user")
        .remove("/linux/uidMappings")
        .remove("/linux/gidMappings");
    assert_create_refused("err-userns", &b);
}

#[test]
fn nonexistent_binary() {
    require_root!();
    let mut b = Bundle::new("err-no-binary");
    b.args(&["/bin/does-not-exist"]);
    assert_create_refused("err-no-binary", &b);
}

#[test]
fn nonexistent_user_name() {
    require_root!();
    let mut b = Bundle::new("err-no-user");
    b.set("/process/user/username", json!("nosuchuser"));
    let msg = assert_create_refused("err-no-user", &b);
    assert!(msg.contains("nosuchuser"), "{msg}");
}

#[test]
fn unsupported_options() {
    require_root!();
    let mut b = Bundle::new("err-mount-opt");
    b.mount("/mnt", "tmpfs", "tmpfs", &["frobnicate"]);
    let msg = assert_create_refused("err-mount-opt", &b);
    assert!(msg.contains("frobnicate"), "{msg}");

    // --systemd-cgroup with a cgroupsPath not in `slice:prefix:name` form:
    // refused, not ignored.
    // The driver itself is tested on a systemd host (make test-systemd).
    let b = Bundle::new("err-systemd");
    let rt = logging_runtime("err-systemd").with_global_args(&["--systemd-cgroup"]);
    let out = rt
        .create(b.name(), &b)
        .assert_failure("create --systemd-cgroup");
    assert_one_line_error(&out);
    assert!(last_log_error(&rt).contains("systemd"));
    assert_nothing_left(&rt, &b, b.name());
}

#[test]
fn relative_cwd() {
    require_root!();
    let mut b = Bundle::new("err-relative-cwd");
    b.set("/process/cwd", json!("tmp"));
    assert_create_refused("err-relative-cwd", &b);
}

#[test]
fn bind_mount_of_missing_source() {
    require_root!();
    let mut b = Bundle::new("err-bind-source");
    let missing = b.path().join("no-such-source");
    b.mount(
        "/mnt/x",
        "bind",
        missing.to_str().expect("utf-8"),
        &["bind"],
    );
    assert_create_refused("err-bind-source", &b);
}

#[test]
fn rlimit_above_the_hard_limit() {
    require_root!();
    let hard = nofile_hard_limit();
    if hard == libc::RLIM_INFINITY {
        corten_integration_tests::skip(
            "rlimit_above_the_hard_limit",
            "RLIMIT_NOFILE is unlimited here; nothing is above it",
        );
        return;
    }
    let mut b = Bundle::new("err-rlimit");
    let above = hard + 10_000;
    b.set(
        "/process/rlimits",
        json!([{ "type": "RLIMIT_NOFILE", "soft": above, "hard": above }]),
    );
    if has_cap_sys_resource() && above <= 1 << 20 {
        b.sh("ulimit -Hn");
        let out = Runtime::new("err-rlimit").run_ok(b.name(), &b);
        assert_eq!(out.trim(), above.to_string());
        eprintln!("NOTE: CAP_SYS_RESOURCE held: the higher hard limit was applied, as runc does");
        return;
    }
    let msg = assert_create_refused("err-rlimit", &b);
    assert!(
        msg.to_lowercase().contains("rlimit"),
        "the error should name the rlimit: {msg}"
    );
}

#[test]
fn unknown_rlimit_type() {
    require_root!();
    let mut b = Bundle::new("err-rlimit-type");
    b.set(
        "/process/rlimits",
        json!([{ "type": "RLIMIT_FROBNICATE", "soft": 1, "hard": 1 }]),
    );
    assert_create_refused("err-rlimit-type", &b);
}

/// Whether this process may raise hard rlimits and lower oom_score_adj
/// (CAP_SYS_RESOURCE, bit 24 of CapEff). Sandboxes often drop it; then the
/// runtime must refuse such configs, otherwise apply them.
fn has_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

#[test]
fn oom_score_adj_below_the_callers() {
    require_root!();
    let own: i64 = fs::read_to_string("/proc/self/oom_score_adj")
        .expect("own oom_score_adj")
        .trim()
        .parse()
        .expect("number");
    let mut b = Bundle::new("err-oom");
    b.set("/process/oomScoreAdj", json!(own - 500));
    if has_cap_sys_resource() {
        b.args(&["cat", "/proc/self/oom_score_adj"]);
        let out = Runtime::new("err-oom").run_ok(b.name(), &b);
        assert_eq!(out.trim(), (own - 500).to_string());
        eprintln!("NOTE: CAP_SYS_RESOURCE held: the lower oom_score_adj was applied, as runc does");
        return;
    }
    assert_create_refused("err-oom", &b);
}

#[test]
fn net_sysctl_without_network_namespace() {
    require_root!();
    // The value equals the host's, so even a runtime that wrongly applied it
    // would not change the host.
    let host = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("host ip_forward");
    let mut b = Bundle::new("err-sysctl");
    b.remove_namespace("network").set(
        "/linux/sysctl",
        json!({ "net.ipv4.ip_forward": host.trim() }),
    );
    assert_create_refused("err-sysctl", &b);
}

#[test]
fn hostname_without_uts_namespace() {
    require_root!();
    // The host's own hostname: harmless even if wrongly applied.
    let host = fs::read_to_string("/proc/sys/kernel/hostname").expect("host hostname");
    let mut b = Bundle::new("err-hostname");
    b.remove_namespace("uts")
        .set("/hostname", json!(host.trim()));
    assert_create_refused("err-hostname", &b);
}

#[test]
fn terminal_without_console_socket() {
    require_root!();
    let mut b = Bundle::new("err-terminal");
    b.set("/process/terminal", json!(true));
    assert_create_refused("err-terminal", &b);
}

#[test]
fn console_socket_without_terminal() {
    require_root!();
    let b = Bundle::new("err-console-socket");
    let path = b.path().join("console.sock");
    let _socket = corten_integration_tests::ConsoleSocket::bind(&path);
    assert_create_refused_with(
        "err-console-socket",
        &b,
        &["--console-socket", path.to_str().expect("utf-8")],
    );
}

#[test]
fn kill_with_unknown_signal() {
    require_root!();
    let mut b = Bundle::new("err-signal");
    b.args(&["sleep", "1000"]);
    let rt = logging_runtime("err-signal");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    for signal in ["FROBNICATE", "SIGFROB", "99999", "-1"] {
        let out = rt
            .kill(id, signal)
            .assert_failure(&format!("kill {signal}"));
        assert_one_line_error(&out);
        last_log_error(&rt);
    }
    assert_eq!(rt.status(id), "created");
}

#[test]
fn errors_are_plain_text_on_stderr_without_log_format() {
    require_root!();
    let rt = Runtime::new("err-text");
    let out = rt
        .cmd(&["state", "no-such-container"])
        .assert_failure("state of a missing container");
    assert_one_line_error(&out);
    assert!(
        out.stderr_str().contains("does not exist"),
        "{}",
        out.stderr_str()
    );
    assert!(!Path::new(&rt.scratch().join("log.json")).exists());
}

/// A bundle with a new user namespace and the given maps (the same for
/// uids and gids).
fn userns_bundle(test: &str, maps: Value) -> Bundle {
    let mut b = Bundle::new(test);
    b.user_namespace(maps.clone(), maps);
    b
}

#[test]
fn overlapping_id_maps_are_named() {
    require_root!();
    let b = userns_bundle(
        "err-map-overlap",
        json!([
            { "containerID": 0, "hostID": 100000, "size": 1000 },
            { "containerID": 500, "hostID": 300000, "size": 1000 }
        ]),
    );
    let msg = assert_create_refused("err-map-overlap", &b);
    assert!(
        msg.contains("uid_map: mappings 0:100000:1000 and 500:300000:1000 overlap in their container ids: invalid argument"),
        "{msg}"
    );
    let b = userns_bundle(
        "err-map-overlap-host",
        json!([
            { "containerID": 0, "hostID": 100000, "size": 1000 },
            { "containerID": 1000, "hostID": 100999, "size": 10 }
        ]),
    );
    let msg = assert_create_refused("err-map-overlap-host", &b);
    assert!(msg.contains("overlap in their host ids"), "{msg}");
}

#[test]
fn out_of_range_and_empty_id_maps_are_refused() {
    require_root!();
    let b = userns_bundle(
        "err-map-range",
        json!([{ "containerID": 0, "hostID": 4294967000u32, "size": 65536 }]),
    );
    let msg = assert_create_refused("err-map-range", &b);
    assert!(msg.contains("goes past the last host uid"), "{msg}");
    let b = userns_bundle(
        "err-map-empty",
        json!([{ "containerID": 0, "hostID": 100000, "size": 0 }]),
    );
    let msg = assert_create_refused("err-map-empty", &b);
    assert!(msg.contains("has size 0"), "{msg}");
}

#[test]
fn idmapped_mount_on_a_filesystem_that_cannot_be_idmapped() {
    require_root!();
    corten_integration_tests::require_userns!(
        "idmapped_mount_on_a_filesystem_that_cannot_be_idmapped"
    );
    // sysfs has no idmapped mounts; the host's is only read to clone it.
    let mut b = userns_bundle(
        "err-idmap-sysfs",
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]),
    );
    b.push(
        "/mounts",
        json!({
            "destination": "/hostsys", "type": "bind", "source": "/sys/kernel",
            "options": ["rbind", "idmap"]
        }),
    );
    let msg = assert_create_refused("err-idmap-sysfs", &b);
    assert!(
        msg.contains("idmapped mount /hostsys: /sys/kernel is on sysfs, which cannot be idmapped"),
        "{msg}"
    );
}

#[test]
fn malformed_idmapped_mounts_are_refused() {
    require_root!();
    let cases: [(&str, Value, bool, &str); 3] = [
        (
            "err-idmap-tmpfs",
            json!({ "destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"] }),
            true,
            "idmapped mount /t: only bind mounts can be idmapped",
        ),
        (
            "err-idmap-half",
            json!({ "destination": "/t", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"],
                    "uidMappings": [{ "containerID": 0, "hostID": 100000, "size": 10 }] }),
            true,
            "uidMappings and gidMappings must be given together",
        ),
        (
            "err-idmap-nouserns",
            json!({ "destination": "/t", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"] }),
            false,
            "no new user namespace whose mappings it could use",
        ),
    ];
    for (test, mount, userns, expected) in cases {
        let mut b = if userns {
            userns_bundle(
                test,
                json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]),
            )
        } else {
            Bundle::new(test)
        };
        b.push("/mounts", mount);
        let msg = assert_create_refused(test, &b);
        assert!(msg.contains(expected), "{test}: {msg}");
    }
}
