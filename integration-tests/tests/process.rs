//! The container process: args, env, cwd, user, umask, rlimits,
//! capabilities, no_new_privs, oom_score_adj, scheduler, ioPriority,
//! personality, execCPUAffinity, memoryPolicy.

use corten_integration_tests::{
    cap_hex, nofile_hard_limit, require_root, status_field, Bundle, OutputExt, Runtime,
};
use serde_json::json;

const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_AUDIT_WRITE: u32 = 29;

/// Run the bundle and return its stdout.
fn run(test: &str, b: &Bundle) -> String {
    let rt = Runtime::new(test);
    rt.run_ok(b.name(), b)
}

#[test]
fn args_reach_the_process_verbatim() {
    require_root!();
    let mut b = Bundle::new("args");
    // The trailing `echo` keeps sh from exec'ing cat as pid 1.
    b.args(&[
        "sh",
        "-c",
        "printf '[%s]' \"$@\"; echo; cat /proc/1/cmdline; echo",
        "zero",
        "a b",
        "",
        "c*",
    ]);
    let out = run("args", &b);
    let (first, cmdline) = out.split_once('\n').expect("two outputs");
    assert_eq!(first, "[a b][][c*]");
    assert_eq!(
        cmdline,
        "sh\0-c\0printf '[%s]' \"$@\"; echo; cat /proc/1/cmdline; echo\0zero\0a b\0\0c*\0\n"
    );
}

#[test]
fn env_is_exactly_the_configured_one() {
    require_root!();
    let mut b = Bundle::new("env");
    b.set(
        "/process/env",
        json!(["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY="]),
    )
    .args(&["env"]);
    let rt = Runtime::new("env").with_env("CORTEN_IT_HOST_ONLY", "leaked");
    let out = rt.run_ok(b.name(), &b);
    let vars: Vec<&str> = out.lines().collect();
    for want in ["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY="] {
        assert!(vars.contains(&want), "{want} missing from {vars:?}");
    }
    assert!(
        !out.contains("CORTEN_IT_HOST_ONLY"),
        "the runtime's environment leaked: {vars:?}"
    );
    // runc sets HOME from /etc/passwd when the config does not.
    assert!(
        vars.contains(&"HOME=/root"),
        "HOME not defaulted from /etc/passwd: {vars:?}"
    );
}

#[test]
fn home_defaults_to_the_users_passwd_entry() {
    require_root!();
    let mut b = Bundle::new("env-home");
    b.user(1000, 1000).sh("echo $HOME");
    assert_eq!(run("env-home", &b), "/home/user\n");
}

#[test]
fn configured_home_is_kept() {
    require_root!();
    let mut b = Bundle::new("env-home-set");
    b.env(&["HOME=/tmp"]).sh("echo $HOME");
    assert_eq!(run("env-home-set", &b), "/tmp\n");
}

#[test]
fn cwd_is_applied() {
    require_root!();
    let mut b = Bundle::new("cwd");
    b.set("/process/cwd", json!("/home/user"))
        .sh("pwd; readlink /proc/self/cwd");
    assert_eq!(run("cwd", &b), "/home/user\n/home/user\n");
}

#[test]
fn user_uid_gid_and_additional_gids() {
    require_root!();
    let mut b = Bundle::new("user");
    b.user(1000, 1000)
        .set("/process/user/additionalGids", json!([10, 20]))
        .sh("id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    let out = run("user", &b);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "1000",
            "1000",
            "Uid: 1000 1000 1000 1000",
            "Gid: 1000 1000 1000 1000",
            "Groups: 10 20"
        ],
        "{out}"
    );
}

#[test]
fn root_user_has_no_supplementary_groups_by_default() {
    require_root!();
    let mut b = Bundle::new("user-groups");
    b.sh("grep '^Groups:' /proc/self/status");
    let out = run("user-groups", &b);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["Groups:"],
        "{out}"
    );
}

#[test]
fn umask_is_applied() {
    require_root!();
    let mut b = Bundle::new("umask");
    b.set("/process/user/umask", json!(0o077))
        .sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    b.set("/root/readonly", json!(false));
    assert_eq!(run("umask", &b), "0077\n600\n");
}

#[test]
fn default_umask_is_0022() {
    require_root!();
    let mut b = Bundle::new("umask-default");
    b.sh("umask");
    assert_eq!(run("umask-default", &b), "0022\n");
}

#[test]
fn rlimits_are_applied() {
    require_root!();
    let mut b = Bundle::new("rlimits");
    b.set(
        "/process/rlimits",
        json!([
            { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024 },
            { "type": "RLIMIT_CORE", "soft": 0, "hard": 0 },
        ]),
    )
    .sh("ulimit -Sn; ulimit -Hn; grep -E '^Max (open files|core file size)' /proc/self/limits");
    let out = run("rlimits", &b);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[..2], ["512", "1024"], "{out}");
    assert!(
        lines.contains(&"Max core file size 0 0 bytes".to_owned()),
        "{out}"
    );
    assert!(
        lines.contains(&"Max open files 512 1024 files".to_owned()),
        "{out}"
    );
}

#[test]
fn rlimit_at_the_hosts_hard_limit_is_allowed() {
    require_root!();
    let max = nofile_hard_limit();
    let mut b = Bundle::new("rlimits-max");
    b.set(
        "/process/rlimits",
        json!([{ "type": "RLIMIT_NOFILE", "soft": max, "hard": max }]),
    )
    .sh("ulimit -Hn");
    assert_eq!(run("rlimits-max", &b).trim(), max.to_string());
}

/// CapInh, CapPrm, CapEff, CapBnd and CapAmb of the container process.
fn cap_sets(b: &mut Bundle, test: &str) -> [String; 5] {
    b.sh("cat /proc/self/status");
    let status = run(test, b);
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map(|f| {
        status_field(&status, f)
            .unwrap_or_else(|| panic!("no {f} in {status}"))
            .to_owned()
    })
}

fn set_caps(b: &mut Bundle) {
    let names = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    b.set(
        "/process/capabilities",
        json!({
            "bounding": names, "permitted": names, "effective": names,
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"],
        }),
    );
}

#[test]
fn capabilities_all_five_sets_for_root() {
    require_root!();
    let mut b = Bundle::new("caps-root");
    set_caps(&mut b);
    let three = cap_hex(&[CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE]);
    let kill = cap_hex(&[CAP_KILL]);
    assert_eq!(
        cap_sets(&mut b, "caps-root"),
        [kill.clone(), three.clone(), three.clone(), three, kill]
    );
}

#[test]
fn capabilities_all_five_sets_for_non_root() {
    require_root!();
    let mut b = Bundle::new("caps-user");
    set_caps(&mut b);
    b.user(1000, 1000);
    // After execve by a non-root user, permitted and effective are the ambient set.
    let three = cap_hex(&[CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE]);
    let kill = cap_hex(&[CAP_KILL]);
    assert_eq!(
        cap_sets(&mut b, "caps-user"),
        [kill.clone(), kill.clone(), kill.clone(), three, kill]
    );
}

#[test]
fn capabilities_default_spec() {
    require_root!();
    let mut b = Bundle::new("caps-default");
    let default = cap_hex(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE]);
    let none = cap_hex(&[]);
    let sets = cap_sets(&mut b, "caps-default");
    assert_eq!(
        sets[..4],
        [none.clone(), default.clone(), default.clone(), default]
    );
}

#[test]
fn dropped_capability_is_enforced() {
    require_root!();
    let mut b = Bundle::new("caps-enforced");
    // Default caps lack CAP_CHOWN and CAP_SYS_ADMIN.
    b.sh("touch /dev/shm/f; chown 1000 /dev/shm/f 2>/dev/null && echo chown-ok; \
          mount -t tmpfs t /mnt 2>/dev/null && echo mount-ok; hostname x 2>/dev/null && echo hostname-ok; echo done");
    assert_eq!(run("caps-enforced", &b), "done\n");
}

#[test]
fn no_new_privileges_is_set() {
    require_root!();
    let mut b = Bundle::new("nnp");
    b.set("/process/noNewPrivileges", json!(true))
        .sh("grep NoNewPrivs /proc/self/status");
    let out = run("nnp", &b);
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("1"), "{out}");
}

#[test]
fn no_new_privileges_off() {
    require_root!();
    let mut b = Bundle::new("nnp-off");
    b.set("/process/noNewPrivileges", json!(false))
        .sh("grep NoNewPrivs /proc/self/status");
    let out = run("nnp-off", &b);
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("0"), "{out}");
}

#[test]
fn oom_score_adj_is_applied() {
    require_root!();
    let mut b = Bundle::new("oom");
    b.set("/process/oomScoreAdj", json!(100))
        .sh("cat /proc/self/oom_score_adj");
    assert_eq!(run("oom", &b), "100\n");
}

#[test]
fn stdin_is_not_the_runtimes() {
    require_root!();
    let mut b = Bundle::new("stdin");
    // The runtime's stdin is /dev/null in these tests: cat must see EOF at once.
    b.sh("cat; echo eof");
    assert_eq!(run("stdin", &b), "eof\n");
}

// --- scheduler, ioPriority, personality, execCPUAffinity, memoryPolicy ---

/// Fields of `/proc/self/stat` after the `(comm)` field, 1-based as in proc(5).
fn stat_field(stat: &str, n: usize) -> String {
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    after
        .split_whitespace()
        .nth(n - 3)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn scheduler_policy_and_nice_are_applied() {
    require_root!();
    let mut b = Bundle::new("sched");
    b.set(
        "/process/scheduler",
        json!({ "policy": "SCHED_BATCH", "nice": 7 }),
    )
    .args(&["cat", "/proc/self/stat"]);
    let stat = run("sched", &b);
    assert_eq!(stat_field(&stat, 19), "7", "nice: {stat}");
    assert_eq!(
        stat_field(&stat, 41),
        "3",
        "policy (SCHED_BATCH = 3): {stat}"
    );
}

#[test]
fn io_priority_is_applied() {
    require_root!();
    let mut b = Bundle::new("ioprio");
    b.set(
        "/process/ioPriority",
        json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 }),
    )
    .sh("ionice -p $$");
    assert_eq!(run("ioprio", &b), "best-effort: prio 6\n");
}

#[test]
fn personality_linux32_is_applied() {
    require_root!();
    let mut b = Bundle::new("persona");
    b.set("/linux/personality", json!({ "domain": "LINUX32" }))
        .args(&["cat", "/proc/self/personality"]);
    assert_eq!(run("persona", &b), "00000008\n");
}

#[test]
fn exec_cpu_affinity_final_is_applied() {
    require_root!();
    let mut b = Bundle::new("affinity");
    b.set(
        "/process/execCPUAffinity",
        json!({ "initial": "0", "final": "0" }),
    )
    .sh("grep Cpus_allowed_list /proc/self/status");
    assert_eq!(run("affinity", &b), "Cpus_allowed_list:\t0\n");
}

#[test]
fn memory_policy_is_applied() {
    require_root!();
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        corten_integration_tests::skip(
            "memory_policy_is_applied",
            "kernel without NUMA (/proc/self/numa_maps)",
        );
        return;
    }
    let mut b = Bundle::new("mempolicy");
    b.set(
        "/linux/memoryPolicy",
        json!({ "mode": "MPOL_BIND", "nodes": "0" }),
    )
    .sh("grep -c 'bind:0' /proc/self/numa_maps");
    let n: u32 = run("mempolicy", &b).trim().parse().expect("count");
    assert!(n > 0, "no bind:0 mapping");
}

#[test]
fn unsupported_process_features_are_refused() {
    require_root!();
    for (name, pointer, value) in [
        ("refuse-rdt", "/linux/intelRdt", json!({ "closID": "x" })),
        (
            "refuse-sched",
            "/process/scheduler",
            json!({ "policy": "SCHED_NOPE" }),
        ),
        (
            "refuse-persona",
            "/linux/personality",
            json!({ "domain": "LINUX64" }),
        ),
    ] {
        let mut b = Bundle::new(name);
        b.set(pointer, value);
        let rt = Runtime::new(name);
        let out = rt.create(b.name(), &b).assert_failure(name);
        assert_eq!(
            out.stderr_str().trim().lines().count(),
            1,
            "{}",
            out.stderr_str()
        );
        assert!(rt.root_entries().is_empty());
    }
    if !std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        let mut b = Bundle::new("refuse-apparmor");
        b.set("/process/apparmorProfile", json!("docker-default"));
        let rt = Runtime::new("refuse-apparmor");
        let out = rt
            .create(b.name(), &b)
            .assert_failure("apparmor without AppArmor");
        assert!(
            out.stderr_str().contains("AppArmor"),
            "{}",
            out.stderr_str()
        );
    }
}
