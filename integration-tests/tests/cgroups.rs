//! Cgroups: created at create with the init inside, resources applied,
//! removed at delete. Only the test's own cgroups (under
//! `/corten-it-<pid>/`) are ever read or removed.

use std::fs;
use std::path::{Path, PathBuf};

use corten_integration_tests::{cgroup_dirs, require_root, wait_until, Bundle, OutputExt, Runtime};
use serde_json::json;

/// Whether the host runs a pure cgroup v2 hierarchy at /sys/fs/cgroup.
fn unified_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The directory of the bundle's cgroup in the hierarchy holding `controller`.
fn controller_dir(b: &Bundle, controller: &str) -> PathBuf {
    let rel = b.cgroup_path().trim_start_matches('/');
    if unified_only() {
        Path::new("/sys/fs/cgroup").join(rel)
    } else {
        Path::new("/sys/fs/cgroup").join(controller).join(rel)
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn procs(dir: &Path) -> Vec<i64> {
    read(&dir.join("cgroup.procs"))
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[test]
fn cgroup_created_at_create_with_init_inside() {
    require_root!();
    let mut b = Bundle::new("cgroup-create");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("cgroup-create");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let pid = rt.pid(id);
    let pids_dir = controller_dir(&b, "pids");
    assert!(pids_dir.is_dir(), "{} not created", pids_dir.display());
    assert_eq!(
        procs(&pids_dir),
        [pid],
        "init not (alone) in {}",
        pids_dir.display()
    );
    if !unified_only() {
        for controller in ["memory", "cpu", "devices", "freezer"] {
            let dir = controller_dir(&b, controller);
            assert_eq!(procs(&dir), [pid], "init not in {}", dir.display());
        }
    }
    for dir in cgroup_dirs(b.cgroup_path()) {
        assert_eq!(
            procs(&dir),
            [pid],
            "{} created but init not in it",
            dir.display()
        );
    }
    let self_cgroup = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert!(
        self_cgroup.lines().any(|l| l.ends_with(b.cgroup_path())),
        "{self_cgroup}"
    );
}

#[test]
fn cgroup_removed_at_delete() {
    require_root!();
    let mut b = Bundle::new("cgroup-delete");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("cgroup-delete");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    assert!(!cgroup_dirs(b.cgroup_path()).is_empty());
    rt.kill(id, "KILL").assert_success("kill");
    rt.wait_status(id, "stopped");
    rt.delete(id).assert_success("delete");
    assert!(
        wait_until(std::time::Duration::from_secs(2), || cgroup_dirs(
            b.cgroup_path()
        )
        .is_empty()),
        "cgroup dirs left after delete: {:?}",
        cgroup_dirs(b.cgroup_path())
    );
}

#[test]
fn exec_process_joins_the_container_cgroup() {
    require_root!();
    let mut b = Bundle::new("cgroup-exec");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("cgroup-exec");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    let out = rt
        .cmd(&["exec", id, "cat", "/proc/self/cgroup"])
        .assert_success("exec");
    let text = out.stdout_str();
    let pids = text
        .lines()
        .find(|l| l.contains(":pids:") || l.starts_with("0::"))
        .expect("pids line");
    assert!(
        pids.ends_with(b.cgroup_path()),
        "exec'd process in {pids}, not {}",
        b.cgroup_path()
    );
    // Every controller hierarchy (v1: the intermediate moved itself into
    // each; named ones such as name=systemd, and a hybrid host's unified
    // one, are not the runtime's).
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let v1_controller = !ctrls.is_empty() && !ctrls.starts_with("name=");
        if v1_controller || unified_only() {
            assert!(
                path.ends_with(b.cgroup_path()),
                "exec'd process not in the container's cgroup: {line}\n{text}"
            );
        }
    }
}

#[test]
fn resources_are_written_to_the_cgroup() {
    require_root!();
    let mut b = Bundle::new("cgroup-resources");
    b.args(&["sleep", "1000"])
        .set("/linux/resources/pids", json!({ "limit": 32 }))
        .set("/linux/resources/memory", json!({ "limit": 67_108_864 }))
        .set("/linux/resources/cpu", json!({ "shares": 512 }));
    let rt = Runtime::new("cgroup-resources");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    assert_eq!(read(&controller_dir(&b, "pids").join("pids.max")), "32");
    if unified_only() {
        assert_eq!(
            read(&controller_dir(&b, "memory").join("memory.max")),
            "67108864"
        );
    } else {
        assert_eq!(
            read(&controller_dir(&b, "memory").join("memory.limit_in_bytes")),
            "67108864"
        );
        assert_eq!(read(&controller_dir(&b, "cpu").join("cpu.shares")), "512");
    }
}

#[test]
fn pids_limit_is_enforced() {
    require_root!();
    let mut b = Bundle::new("cgroup-pids");
    // sh plus three sleeps reach the limit; the next fork fails (and busybox
    // sh gives up). The sleeps die with the pid namespace when sh exits.
    b.set("/linux/resources/pids", json!({ "limit": 4 }))
        .sh("for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo all-forked");
    let rt = Runtime::new("cgroup-pids");
    let out = rt.run(b.name(), &b);
    assert!(
        !out.stdout_str().contains("all-forked"),
        "8 forks succeeded despite pids.limit 4"
    );
    assert!(
        out.stderr_str()
            .contains("Resource temporarily unavailable"),
        "forks not refused: {}",
        out.stderr_str()
    );
}

// --- every resource, read back from the cgroup files ---

/// The first real block device (`major:minor`), for the per-device blkio
/// limits: `/sys/block/<dev>/dev` of a disk that is not a zram/loop/ram.
fn a_block_device() -> Option<(u64, u64)> {
    let mut names: Vec<String> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("zram") && !n.starts_with("loop") && !n.starts_with("ram"))
        .collect();
    names.sort();
    let dev = fs::read_to_string(format!("/sys/block/{}/dev", names.first()?)).ok()?;
    let (maj, min) = dev.trim().split_once(':')?;
    Some((maj.parse().ok()?, min.parse().ok()?))
}

fn exists(b: &Bundle, controller: &str, file: &str) -> bool {
    controller_dir(b, controller).join(file).exists()
}

/// Creates a sleeper with `resources`, then checks each `(controller, file,
/// expected)`; a file the kernel does not offer is reported and skipped.
fn assert_resources(test: &str, resources: serde_json::Value, expect: &[(&str, &str, &str)]) {
    let mut b = Bundle::new(test);
    b.args(&["sleep", "1000"])
        .set("/linux/resources", resources);
    let rt = Runtime::new(test);
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let mut checked = 0;
    for (controller, file, want) in expect {
        if !exists(&b, controller, file) {
            corten_integration_tests::skip(
                test,
                &format!("{file} is not offered by this kernel/hierarchy"),
            );
            continue;
        }
        let got = read(&controller_dir(&b, controller).join(file));
        assert!(
            got.lines()
                .any(|l| l.trim() == *want || l.trim() == format!("default {want}"))
                || got == *want,
            "{file}: got {got:?}, want {want:?}"
        );
        checked += 1;
    }
    assert!(
        checked * 2 >= expect.len(),
        "most files missing: only {checked} of {} checked",
        expect.len()
    );
}

#[test]
fn memory_cpu_pids_resources_are_applied() {
    require_root!();
    let mut res = json!({
        "memory": { "limit": 67_108_864, "reservation": 33_554_432 },
        "cpu": { "shares": 512, "quota": 30_000, "period": 60_000, "cpus": "0", "mems": "0" },
        "pids": { "limit": 77 }
    });
    if unified_only() {
        res["memory"]["swap"] = json!(100_663_296);
        res["cpu"]["burst"] = json!(1000);
        assert_resources(
            "res-v2",
            res,
            &[
                ("memory", "memory.max", "67108864"),
                ("memory", "memory.low", "33554432"),
                ("memory", "memory.swap.max", "33554432"),
                ("cpu", "cpu.weight", "20"),
                ("cpu", "cpu.max", "30000 60000"),
                ("cpu", "cpu.max.burst", "1000"),
                ("cpuset", "cpuset.cpus", "0"),
                ("cpuset", "cpuset.mems", "0"),
                ("pids", "pids.max", "77"),
            ],
        );
    } else {
        res["memory"]["swap"] = json!(100_663_296);
        res["memory"]["swappiness"] = json!(7);
        res["memory"]["disableOOMKiller"] = json!(true);
        res["cpu"]["realtimePeriod"] = json!(500_000);
        assert_resources(
            "res-v1",
            res,
            &[
                ("memory", "memory.limit_in_bytes", "67108864"),
                ("memory", "memory.soft_limit_in_bytes", "33554432"),
                ("memory", "memory.memsw.limit_in_bytes", "100663296"),
                ("memory", "memory.swappiness", "7"),
                ("memory", "memory.oom_control", "oom_kill_disable 1"),
                ("cpu", "cpu.shares", "512"),
                ("cpu", "cpu.cfs_quota_us", "30000"),
                ("cpu", "cpu.cfs_period_us", "60000"),
                ("cpu", "cpu.rt_period_us", "500000"),
                ("cpuset", "cpuset.cpus", "0"),
                ("cpuset", "cpuset.mems", "0"),
                ("pids", "pids.max", "77"),
            ],
        );
    }
}

#[test]
fn block_io_resources_are_applied() {
    require_root!();
    let Some((maj, min)) = a_block_device() else {
        corten_integration_tests::skip(
            "block_io_resources_are_applied",
            "no block device to throttle",
        );
        return;
    };
    let dev = |rate: u64| json!([{ "major": maj, "minor": min, "rate": rate }]);
    let mut res = json!({
        "blockIO": {
            "weight": 500,
            "throttleReadBpsDevice": dev(1_048_576),
            "throttleWriteBpsDevice": dev(2_097_152),
            "throttleReadIOPSDevice": dev(100),
            "throttleWriteIOPSDevice": dev(200)
        }
    });
    // v1: CFQ's blkio.weight, or BFQ's (which may show "default 500"); with
    // neither I/O scheduler (none, mq-deadline, kyber) there is no weight
    // to set, and runc fails on it as corten does.
    let v1_root = Path::new("/sys/fs/cgroup/blkio");
    let v1_weight = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| v1_root.join(f).exists());
    if !unified_only() && v1_weight.is_none() {
        corten_integration_tests::skip(
            "block_io_resources_are_applied (weight)",
            "no blkio.weight or blkio.bfq.weight: the host's I/O scheduler has no weights",
        );
        if let Some(b) = res["blockIO"].as_object_mut() {
            b.remove("weight");
        }
    }
    if unified_only() {
        let line = format!("{maj}:{min} rbps=1048576 wbps=2097152 riops=100 wiops=200");
        assert_resources("res-io-v2", res, &[("io", "io.max", line.as_str())]);
    } else {
        let d = |v: &str| format!("{maj}:{min} {v}");
        let (r, w, ri, wi) = (d("1048576"), d("2097152"), d("100"), d("200"));
        let mut expect = vec![
            ("blkio", "blkio.throttle.read_bps_device", r.as_str()),
            ("blkio", "blkio.throttle.write_bps_device", w.as_str()),
            ("blkio", "blkio.throttle.read_iops_device", ri.as_str()),
            ("blkio", "blkio.throttle.write_iops_device", wi.as_str()),
        ];
        if let Some(f) = v1_weight {
            expect.push(("blkio", f, "500"));
        }
        assert_resources("res-io-v1", res, &expect);
    }
}

#[test]
fn hugetlb_resources_are_applied_where_the_controller_exists() {
    require_root!();
    let probe = Bundle::new("res-hugetlb-probe");
    let hierarchy = if unified_only() {
        Path::new("/sys/fs/cgroup/cgroup.controllers").to_path_buf()
    } else {
        Path::new("/sys/fs/cgroup/hugetlb").to_path_buf()
    };
    let available = hierarchy.exists()
        && (!unified_only() || read(&hierarchy).split_whitespace().any(|c| c == "hugetlb"));
    let res = json!({ "hugepageLimits": [{ "pageSize": "2MB", "limit": 4_194_304 }] });
    if !available {
        // Refused with a clear error, and nothing left behind.
        let mut b = probe;
        b.set("/linux/resources", res);
        let rt = Runtime::new("res-hugetlb-refused");
        let out = rt
            .create(b.name(), &b)
            .assert_failure("create with hugetlb limits");
        assert!(out.stderr_str().contains("hugetlb"), "{}", out.stderr_str());
        assert!(cgroup_dirs(b.cgroup_path()).is_empty());
        corten_integration_tests::skip(
            "hugetlb_resources_are_applied_where_the_controller_exists",
            "no hugetlb controller on this host: read-back skipped (the refusal was checked)",
        );
        return;
    }
    let file = if unified_only() {
        "hugetlb.2MB.max"
    } else {
        "hugetlb.2MB.limit_in_bytes"
    };
    assert_resources("res-hugetlb", res, &[("hugetlb", file, "4194304")]);
}

#[test]
fn resources_the_cgroup_version_cannot_express_are_refused() {
    require_root!();
    let bad = if unified_only() {
        json!({ "memory": { "swappiness": 10 } })
    } else {
        json!({ "unified": { "memory.high": "1000000" } })
    };
    let mut b = Bundle::new("res-refused");
    b.set("/linux/resources", bad);
    let rt = Runtime::new("res-refused");
    let out = rt.create(b.name(), &b).assert_failure("create");
    assert_eq!(out.stderr_str().lines().count(), 1, "{}", out.stderr_str());
    let field = if unified_only() {
        "swappiness"
    } else {
        "unified"
    };
    assert!(
        out.stderr_str().contains(field),
        "the error does not name {field}: {}",
        out.stderr_str()
    );
    assert!(cgroup_dirs(b.cgroup_path()).is_empty(), "cgroup left");
    assert!(rt.root_entries().is_empty());
}

#[test]
fn failed_create_leaves_no_cgroup() {
    require_root!();
    let mut b = Bundle::new("res-bad-cpuset");
    // Valid JSON, refused by the kernel: no such CPU.
    b.set("/linux/resources/cpu", json!({ "cpus": "4095" }));
    let rt = Runtime::new("res-bad-cpuset");
    rt.create(b.name(), &b)
        .assert_failure("create with cpus 4095");
    assert!(
        cgroup_dirs(b.cgroup_path()).is_empty(),
        "{:?}",
        cgroup_dirs(b.cgroup_path())
    );
    assert!(rt.root_entries().is_empty());
}

// --- limits enforced ---

#[test]
fn memory_hog_is_oom_killed_and_events_report_it() {
    require_root!();
    let mut b = Bundle::new("oom");
    b.set(
        "/linux/resources/memory",
        json!({ "limit": 33_554_432, "swap": 33_554_432 }),
    )
    .args(&["tail", "/dev/zero"]);
    let rt = Runtime::new("oom");
    let id = b.name();
    rt.create(id, &b).assert_success("create");
    let mut events = rt
        .command()
        .args(["events", "--interval", "1s", id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn events");
    std::thread::sleep(std::time::Duration::from_millis(300));
    rt.start(id).assert_success("start");
    rt.wait_status(id, "stopped");
    // corten's events ends by itself once the container has stopped
    // (runc's keeps going: it is stopped after a grace period).
    let ended = wait_until(std::time::Duration::from_secs(5), || {
        events.try_wait().ok().flatten().is_some()
    });
    if !ended {
        let _ = events.kill();
    }
    let out = events.wait_with_output().expect("events output");
    let text = String::from_utf8_lossy(&out.stdout);
    let kinds: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "oom"),
        "no oom event in {kinds:?}"
    );
    assert!(
        kinds.iter().any(|k| k == "stats"),
        "no stats event in {kinds:?}"
    );
    rt.delete(id).assert_success("delete");
}

/// CPU time (µs) the cgroup has used so far.
fn cpu_usage_us(b: &Bundle) -> u64 {
    if unified_only() {
        read(&controller_dir(b, "cpu").join("cpu.stat"))
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec ")?.parse().ok())
            .unwrap_or(0)
    } else {
        read(&controller_dir(b, "cpuacct").join("cpuacct.usage"))
            .parse::<u64>()
            .unwrap_or(0)
            / 1000
    }
}

#[test]
fn cpu_quota_holds_a_spinner() {
    require_root!();
    let mut b = Bundle::new("cpu-quota");
    b.set(
        "/linux/resources/cpu",
        json!({ "quota": 20_000, "period": 100_000 }),
    )
    .sh("while :; do :; done");
    let rt = Runtime::new("cpu-quota");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = cpu_usage_us(&b);
    let t = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let used = cpu_usage_us(&b) - before;
    #[allow(clippy::cast_precision_loss)]
    let share = used as f64 / t.elapsed().as_micros() as f64;
    assert!(
        share < 0.35,
        "the spinner used {share:.2} CPUs under a 0.2 CPU quota"
    );
    assert!(
        share > 0.05,
        "the spinner barely ran ({share:.2} CPUs): the test proves nothing"
    );
}

// --- commands ---

#[test]
fn pause_stops_the_processes_and_resume_restarts_them() {
    require_root!();
    let mut b = Bundle::new("pause");
    b.set("/root/readonly", json!(false))
        .sh("i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.02; done");
    let rt = Runtime::new("pause");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    let count = || {
        fs::read_to_string(b.rootfs().join("tmp/count"))
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    assert!(
        wait_until(std::time::Duration::from_secs(5), || count() > 2),
        "counter never ran"
    );
    rt.cmd(&["pause", id]).assert_success("pause");
    assert_eq!(rt.status(id), "paused");
    let frozen_at = count();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(count() <= frozen_at + 1, "the counter ran while paused");
    rt.cmd(&["pause", id]).assert_failure("pause twice");
    rt.cmd(&["resume", id]).assert_success("resume");
    assert_eq!(rt.status(id), "running");
    let resumed = count();
    assert!(
        wait_until(std::time::Duration::from_secs(5), || count() > resumed + 2),
        "counter did not resume"
    );
    rt.cmd(&["resume", id])
        .assert_failure("resume a running container");
}

#[test]
fn delete_force_removes_a_paused_container() {
    require_root!();
    let mut b = Bundle::new("pause-delete");
    b.sh("sleep 1000 & sleep 1000");
    let rt = Runtime::new("pause-delete");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    let pid = rt.pid(id);
    rt.cmd(&["pause", id]).assert_success("pause");
    rt.cmd(&["delete", id])
        .assert_failure("delete (no --force) of a paused container");
    rt.cmd(&["delete", "--force", id])
        .assert_success("delete --force");
    assert!(!corten_integration_tests::pid_alive(pid));
    assert!(
        cgroup_dirs(b.cgroup_path()).is_empty(),
        "{:?}",
        cgroup_dirs(b.cgroup_path())
    );
    assert!(rt.root_entries().is_empty());
}

#[test]
fn kill_all_reaches_every_process_of_the_cgroup() {
    require_root!();
    let mut b = Bundle::new("kill-all-cg");
    b.sh("trap '' TERM; sleep 1000 & sleep 1000 & echo ready; wait");
    let rt = Runtime::new("kill-all-cg");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.wait_output(id, "ready");
    let dir = controller_dir(&b, "pids");
    assert_eq!(procs(&dir).len(), 3);
    rt.cmd(&["kill", "--all", id, "KILL"])
        .assert_success("kill --all");
    assert!(
        wait_until(std::time::Duration::from_secs(5), || procs(&dir).is_empty()),
        "{:?}",
        procs(&dir)
    );
    rt.wait_status(id, "stopped");
}

/// `update --resources -` with `json` on stdin.
fn update_from_stdin(rt: &Runtime, id: &str, json: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = rt
        .command()
        .args(["update", "--resources", "-", id])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn update");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json.as_bytes())
        .expect("write resources");
    child.wait_with_output().expect("update")
}

#[test]
fn update_changes_live_limits() {
    require_root!();
    let mut b = Bundle::new("update");
    b.args(&["sleep", "1000"])
        .set("/linux/resources/pids", json!({ "limit": 50 }));
    let rt = Runtime::new("update");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.cmd(&[
        "update",
        "--memory",
        "96m",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "40000",
        "--cpu-period",
        "100000",
        id,
    ])
    .assert_success("update flags");
    assert_eq!(read(&controller_dir(&b, "pids").join("pids.max")), "20");
    if unified_only() {
        assert_eq!(
            read(&controller_dir(&b, "memory").join("memory.max")),
            "100663296"
        );
        assert_eq!(
            read(&controller_dir(&b, "cpu").join("cpu.max")),
            "40000 100000"
        );
    } else {
        assert_eq!(
            read(&controller_dir(&b, "memory").join("memory.limit_in_bytes")),
            "100663296"
        );
        assert_eq!(
            read(&controller_dir(&b, "cpu").join("cpu.cfs_quota_us")),
            "40000"
        );
    }
    // --resources from stdin.
    let out = update_from_stdin(&rt, id, r#"{"pids": {"limit": 9}}"#);
    assert!(out.status.success(), "update --resources - failed");
    assert_eq!(read(&controller_dir(&b, "pids").join("pids.max")), "9");
    rt.cmd(&["update", "--memory", "lots", id])
        .assert_failure("update with a bad size");
    // A wrong type in --resources is refused by name, and nothing changes.
    let out = update_from_stdin(&rt, id, r#"{"pids": {"limit": "7"}}"#);
    assert!(!out.status.success(), "a string pids.limit was accepted");
    assert!(
        out.stderr_str()
            .contains("linux.resources.pids.limit: invalid type: string"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(read(&controller_dir(&b, "pids").join("pids.max")), "9");
}

#[test]
fn events_stats_reports_the_cgroup() {
    require_root!();
    let mut b = Bundle::new("events-stats");
    b.sh("sleep 1000 & echo ready; wait")
        .set("/linux/resources/pids", json!({ "limit": 33 }));
    let rt = Runtime::new("events-stats");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.wait_output(id, "ready");
    let out = rt
        .cmd(&["events", "--stats", id])
        .assert_success("events --stats");
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON event");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id);
    let d = &ev["data"];
    assert_eq!(d["pids"]["current"], 2, "{d}");
    assert_eq!(d["pids"]["limit"], 33, "{d}");
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{d}"
    );
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");
}

#[test]
fn cpu_burst_idle_and_unified_are_applied() {
    require_root!();
    if unified_only() {
        assert_resources(
            "res-v2-extra",
            json!({
                "cpu": { "idle": 1 },
                "unified": { "memory.high": "50331648", "pids.max": "40" }
            }),
            &[
                ("cpu", "cpu.idle", "1"),
                ("memory", "memory.high", "50331648"),
                ("pids", "pids.max", "40"),
            ],
        );
    } else {
        assert_resources(
            "res-v1-burst",
            json!({ "cpu": { "quota": 50_000, "period": 100_000, "burst": 20_000 } }),
            &[("cpu", "cpu.cfs_burst_us", "20000")],
        );
        assert_resources(
            "res-v1-idle",
            json!({ "cpu": { "idle": 1 } }),
            &[("cpu", "cpu.idle", "1")],
        );
    }
}

#[test]
fn per_device_block_io_weight_is_applied() {
    require_root!();
    let Some((maj, min)) = a_block_device() else {
        corten_integration_tests::skip("per_device_block_io_weight_is_applied", "no block device");
        return;
    };
    let res =
        json!({ "blockIO": { "weightDevice": [{ "major": maj, "minor": min, "weight": 300 }] } });
    let probe = Bundle::new("res-wdev-probe");
    let want = format!("{maj}:{min} 300");
    let (controller, file) = if unified_only() {
        ("io", "io.weight")
    } else if exists(&probe, "blkio", "blkio.weight_device") {
        ("blkio", "blkio.weight_device")
    } else {
        ("blkio", "blkio.bfq.weight_device")
    };
    if !exists(&probe, controller, file) {
        // Refused with a clear error rather than ignored.
        let mut b = probe;
        b.set("/linux/resources", res);
        let rt = Runtime::new("res-wdev-refused");
        let out = rt
            .create(b.name(), &b)
            .assert_failure("create with weightDevice");
        assert!(out.stderr_str().contains("weight"), "{}", out.stderr_str());
        assert!(cgroup_dirs(b.cgroup_path()).is_empty());
        corten_integration_tests::skip(
            "per_device_block_io_weight_is_applied",
            &format!(
                "{file} not offered by this kernel: read-back skipped (the refusal was checked)"
            ),
        );
        return;
    }
    let want_v2 = format!("{maj}:{min} {}", 1 + (300 - 10) * 9999 / 990);
    let want = if unified_only() {
        want_v2.as_str()
    } else {
        want.as_str()
    };
    assert_resources("res-wdev", res, &[(controller, file, want)]);
}

#[test]
fn network_resources_need_net_cls_and_net_prio() {
    require_root!();
    let res = json!({ "network": { "classID": 1_048_577, "priorities": [{ "name": "lo", "priority": 5 }] } });
    let have = !unified_only()
        && Path::new("/sys/fs/cgroup/net_cls").exists()
        && Path::new("/sys/fs/cgroup/net_prio").exists();
    if have {
        assert_resources(
            "res-net",
            res,
            &[
                ("net_cls", "net_cls.classid", "1048577"),
                ("net_prio", "net_prio.ifpriomap", "lo 5"),
            ],
        );
        return;
    }
    let mut b = Bundle::new("res-net-refused");
    b.set("/linux/resources", res);
    let rt = Runtime::new("res-net-refused");
    let out = rt
        .create(b.name(), &b)
        .assert_failure("create with network resources");
    assert!(out.stderr_str().contains("net"), "{}", out.stderr_str());
    assert!(cgroup_dirs(b.cgroup_path()).is_empty());
    assert!(rt.root_entries().is_empty());
    corten_integration_tests::skip(
        "network_resources_need_net_cls_and_net_prio",
        "no net_cls/net_prio hierarchy (cgroup v2 or not mounted): read-back skipped (the refusal was checked)",
    );
}

#[test]
fn update_with_check_before_update_refuses_a_limit_below_usage() {
    require_root!();
    let mut b = Bundle::new("update-check");
    // 8 MiB in /dev/shm (tmpfs) is charged to the container's memory cgroup.
    b.sh("dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=8 2>/dev/null; echo ready; sleep 1000");
    let rt = Runtime::new("update-check");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.wait_output(id, "ready");
    let file = if unified_only() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let before = read(&controller_dir(&b, "memory").join(file));
    let out = update_from_stdin(
        &rt,
        id,
        r#"{"memory": {"limit": 4194304, "checkBeforeUpdate": true}}"#,
    );
    assert!(
        !out.status.success(),
        "a limit below the usage was accepted"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
    assert_eq!(
        read(&controller_dir(&b, "memory").join(file)),
        before,
        "the limit changed"
    );
}

#[test]
fn ps_table_passes_ps_options() {
    require_root!();
    let mut b = Bundle::new("ps-table");
    b.sh("sleep 1000 & echo ready; wait");
    let rt = Runtime::new("ps-table");
    let id = b.name();
    rt.run_with(id, &b, &["--detach"])
        .assert_success("run --detach");
    rt.wait_output(id, "ready");
    let out = rt.cmd(&["ps", id]).assert_success("ps").stdout_str();
    let mut lines = out.lines();
    assert!(lines.next().is_some_and(|h| h.contains("PID")), "{out}");
    assert_eq!(lines.count(), 2, "{out}");
    let out = rt
        .cmd(&["ps", id, "-o", "pid,comm"])
        .assert_success("ps -o pid,comm")
        .stdout_str();
    assert!(
        out.lines().any(|l| l.trim_end().ends_with("sleep")),
        "{out}"
    );
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[test]
fn init_is_cloned_into_its_cgroup_on_v2() {
    require_root!();
    if !unified_only() {
        corten_integration_tests::skip(
            "init_is_cloned_into_its_cgroup_on_v2",
            "cgroup v1 host: CLONE_INTO_CGROUP is v2-only",
        );
        return;
    }
    let mut b = Bundle::new("clone-into");
    b.args(&["true"]);
    let rt = Runtime::new("clone-into");
    let log = rt.scratch().join("debug.log");
    let rt = rt.with_global_args(&["--debug", "--log", log.to_str().expect("utf-8")]);
    rt.run(b.name(), &b).assert_success("run");
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("with CLONE_INTO_CGROUP"), "{text}");
}

#[test]
fn cgroup_manager_disabled_creates_no_cgroup() {
    require_root!();
    let mut b = Bundle::new("cg-disabled");
    b.args(&["sleep", "1000"]);
    let rt = Runtime::new("cg-disabled").with_global_args(&["--cgroup-manager", "disabled"]);
    let id = b.name();
    rt.create(id, &b)
        .assert_success("create --cgroup-manager disabled");
    assert!(
        cgroup_dirs(b.cgroup_path()).is_empty(),
        "{:?}",
        cgroup_dirs(b.cgroup_path())
    );
    rt.start(id).assert_success("start");
    rt.kill(id, "KILL").assert_success("kill");
    rt.wait_status(id, "stopped");
    rt.delete(id).assert_success("delete");
    assert!(rt.root_entries().is_empty());
}
