//! Kubernetes through containerd's CRI plugin (Debian's containerd 1.6):
//! every test runs the same pods and containers with each runtime handler
//! of [`HANDLERS`](corten_integration_tests::cri::HANDLERS) — `runc` (the
//! reference), `corten-runc-shim` (runc's shim running corten) and `corten`
//! (corten's shim) — and requires each to observe what runc observes and
//! what Kubernetes means (each test's assertions). In a chroot the runc
//! handler is left out and `corten-runc-shim` is the reference (see
//! `side_by_side`). See `corten_integration_tests::cri` for the private
//! containerd, the CRI client and the streaming client.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use corten_integration_tests::cri::{obs, side_by_side, stream, sysctls, Cri, Pod, Streamed};
use corten_integration_tests::{cgroup_dirs, require_root, wait_for, wait_until};
use k8s_cri::v1 as api;

/// RunPodSandbox with a pause container; a container's lifecycle; the
/// pod's network (the CNI plugin's link-local address), hostname and DNS;
/// ExecSync output and exit codes; Stop/Remove; nothing left.
#[test]
fn pod_and_container_lifecycle() {
    require_root!();
    side_by_side("pod_and_container_lifecycle", |c: &Cri, handler| {
        let mut config = c.pod_config("life");
        config.dns_config = Some(api::DnsConfig {
            servers: vec!["192.0.2.53".into()],
            searches: vec!["corten.test".into()],
            options: vec!["ndots:2".into()],
        });
        let pod = c.run_pod_with(handler, config);
        let status = c.pod_status(&pod);
        let ip = status.network.map(|n| n.ip).unwrap_or_default();
        assert!(ip.starts_with("169.254."), "pod IP {ip:?}");
        let id = c.run(&pod, Cri::container_config("main", &["sleep", "1000"]));
        let state = c.status(&id).state;
        let (code, out, err) = c.exec_sync(&id, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
        let asked = std::time::Instant::now();
        let missing = c
            .try_call(|mut cl| {
                let req = api::ExecSyncRequest {
                    container_id: id.clone(),
                    cmd: vec!["/no/such/binary".into()],
                    timeout: 30,
                };
                async move { cl.exec_sync(req).await }
            })
            .map_or_else(
                |e| {
                    format!(
                        "{:?} {}",
                        e.code(),
                        e.message().contains("no such file or directory")
                    )
                },
                |r| format!("exit {}", r.exit_code),
            );
        // A bound on a hang, not a speed test: corten's shim once kept
        // containerd's ExecSync waiting a minute on an exec that never ran.
        let answered = asked.elapsed() < Duration::from_secs(20);
        let hostname = c.sh(&id, "hostname");
        let resolv = c.sh(&id, "cat /etc/resolv.conf");
        let addr = c.sh(&id, "ip -o -4 addr show eth0 | awk '{print $4}'");
        let routes = c.sh(&id, "ip route | wc -l");
        let pid1 = c.sh(&id, "cat /proc/1/cmdline | tr '\\0' ' '");
        c.stop_container(&id, 2);
        let stopped = c.status(&id);
        c.remove_container(&id);
        c.remove_pod_and_check(&pod);
        // What Kubernetes means, checked on every handler (also where the
        // runc reference cannot run: a chroot).
        assert_eq!(format!("{code} {out:?} {err:?}"), "3 \"out\\n\" \"err\\n\"");
        assert!(answered, "ExecSync of a missing binary took over 20 s");
        assert_eq!(hostname, "life");
        assert!(
            resolv.contains("nameserver 192.0.2.53") && resolv.contains("ndots:2"),
            "{resolv}"
        );
        assert_eq!((addr == format!("{ip}/32"), routes.as_str()), (true, "0"));
        assert_eq!(pid1, "sleep 1000");
        assert_eq!((stopped.state, stopped.exit_code), (2, 137));
        obs(&[
            ("state after start", format!("{state}")),
            ("exec", format!("{code} {out:?} {err:?}")),
            ("exec of a missing binary", missing),
            ("answered within 20 s", answered.to_string()),
            ("hostname", hostname),
            ("resolv.conf", resolv),
            (
                "eth0 address is the pod IP",
                (addr == format!("{ip}/32")).to_string(),
            ),
            ("routes", routes),
            ("pid 1", pid1),
            // sleep is pid 1 and ignores SIGTERM: killed after the timeout.
            (
                "state after stop",
                format!("{} exit {}", stopped.state, stopped.exit_code),
            ),
        ])
    });
}

/// Namespaces shared in a pod: network and IPC always; PID only when the
/// pod asks (`shareProcessNamespace`), then the pause process is visible.
#[test]
fn pod_namespaces_are_shared() {
    require_root!();
    side_by_side("pod_namespaces_are_shared", |c: &Cri, handler| {
        let ns = |id: &str| {
            c.sh(
                id,
                "for n in net ipc pid; do readlink /proc/self/ns/$n; done",
            )
        };
        let pod = c.run_pod(handler, "ns");
        let a = c.run(&pod, Cri::container_config("a", &["sleep", "1000"]));
        let b = c.run(&pod, Cri::container_config("b", &["sleep", "1000"]));
        let (na, nb) = (ns(&a), ns(&b));
        let la: Vec<&str> = na.lines().collect();
        let lb: Vec<&str> = nb.lines().collect();
        let shm = c.sh(&a, "echo shared > /dev/shm/x; ls /dev/shm");
        let shm_b = c.sh(&b, "cat /dev/shm/x");
        c.remove_pod_and_check(&pod);

        let mut config = c.pod_config("pidns");
        let mut shared = corten_integration_tests::cri::pod_namespaces();
        shared.pid = api::NamespaceMode::Pod as i32;
        pod_security(&mut config).namespace_options = Some(shared.clone());
        let pod = c.run_pod_with(handler, config);
        let mut cc = Cri::container_config("p", &["sleep", "1000"]);
        cc.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .namespace_options = Some(shared);
        let p = c.run(&pod, cc.clone());
        cc.metadata.as_mut().unwrap().name = "q".into();
        let q = c.run(&pod, cc);
        let pid1 = c.sh(&p, "cat /proc/1/cmdline | tr '\\0' ' '");
        let sees_q = c.sh(&p, "ps -o args | grep -c '^sleep 1000'");
        let same_pid_ns = ns(&p).lines().nth(2) == ns(&q).lines().nth(2);
        c.remove_pod_and_check(&pod);
        assert_eq!(
            (la[0] == lb[0], la[1] == lb[1], la[2] == lb[2]),
            (true, true, false)
        );
        assert_eq!(format!("{shm} {shm_b}"), "x shared");
        assert!(pid1.starts_with("/bin/sh -c trap"), "{pid1}");
        assert_eq!((sees_q.as_str(), same_pid_ns), ("2", true));
        obs(&[
            ("network shared", (la[0] == lb[0]).to_string()),
            ("ipc shared", (la[1] == lb[1]).to_string()),
            ("pid shared by default", (la[2] == lb[2]).to_string()),
            ("/dev/shm shared", format!("{shm} {shm_b}")),
            ("pid 1 with shareProcessNamespace", pid1),
            ("sleeps seen", sees_q),
            ("pid shared when asked", same_pid_ns.to_string()),
        ])
    });
}

/// Exec and Attach through containerd's streaming server (a websocket,
/// `v4.channel.k8s.io`): output on its channels, exit codes, stdin.
#[test]
fn streaming_exec_and_attach() {
    require_root!();
    side_by_side("streaming_exec_and_attach", |c: &Cri, handler| {
        let pod = c.run_pod(handler, "stream");
        let id = c.run(&pod, Cri::container_config("main", &["sleep", "1000"]));
        let done = |s: &Streamed| s.exit_code.is_some();
        let url = c.exec_url(&id, &["sh", "-c", "echo out; echo err >&2; exit 5"], false);
        let e = stream(&url, None, done, Duration::from_secs(30));
        let url = c.exec_url(&id, &["sh", "-c", "read x; echo in:$x"], true);
        let i = stream(&url, Some(b"abc\n"), done, Duration::from_secs(30));
        let mut config = Cri::container_config(
            "att",
            &["sh", "-c", "read x; echo got:$x; echo bye >&2; sleep 1000"],
        );
        config.stdin = true;
        let att = c.run(&pod, config);
        let url = c.attach_url(&att, true);
        let a = stream(
            &url,
            Some(b"hello\n"),
            |s| s.stdout.contains("got:hello") && s.stderr.contains("bye"),
            Duration::from_secs(30),
        );
        c.remove_pod_and_check(&pod);
        assert_eq!(
            (e.stdout.as_str(), e.stderr.as_str(), e.exit_code),
            ("out\n", "err\n", Some(5))
        );
        assert_eq!((i.stdout.as_str(), i.exit_code), ("in:abc\n", Some(0)));
        assert_eq!(
            (a.stdout.as_str(), a.stderr.as_str()),
            ("got:hello\n", "bye\n")
        );
        obs(&[
            (
                "exec",
                format!("{:?} {:?} {:?}", e.stdout, e.stderr, e.exit_code),
            ),
            (
                "exec with stdin",
                format!("{:?} {:?}", i.stdout, i.exit_code),
            ),
            ("attach", format!("{:?} {:?}", a.stdout, a.stderr)),
        ])
    });
}

/// The lines of a CRI log file without their timestamps, checking each
/// has the CRI format `<RFC 3339> <stream> <P|F> <text>`.
fn cri_log(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let ts = parts.next().unwrap_or_default();
            assert!(
                corten_integration_tests::is_rfc3339(ts),
                "not a CRI log line: {l:?}"
            );
            parts.collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn log_path(pod: &Pod, name: &str) -> PathBuf {
    Path::new(&pod.config.log_directory).join(format!("{name}.log"))
}

/// Container logs in CRI's format, stdout and stderr; ReopenContainerLog
/// after the kubelet rotated the file.
#[test]
fn logs_and_reopen() {
    require_root!();
    side_by_side("logs_and_reopen", |c: &Cri, handler| {
        let pod = c.run_pod(handler, "logs");
        let script = "echo first; echo to-stderr >&2; head -c 20000 /dev/zero | tr '\\0' a; echo; \
                      i=0; while :; do i=$((i+1)); echo tick; sleep 0.1; done";
        let id = c.run(&pod, Cri::container_config("logger", &["sh", "-c", script]));
        let path = log_path(&pod, "logger");
        let ticked = wait_until(Duration::from_secs(20), || {
            cri_log(&path).iter().any(|l| l.ends_with("tick"))
        });
        assert!(ticked, "no tick in {}", path.display());
        // stdout and stderr are separate pipes: their order is not kept.
        let lines = cri_log(&path);
        let of = |stream: &str| -> Vec<String> {
            lines
                .iter()
                .filter_map(|l| l.strip_prefix(stream))
                .take(3)
                .map(|l| {
                    if l.len() > 40 {
                        format!("{} a*{}", &l[..1], l.len() - 2)
                    } else {
                        l.to_owned()
                    }
                })
                .collect()
        };
        let (stdout, stderr) = (of("stdout "), of("stderr "));
        let rotated = path.with_extension("log.1");
        fs::rename(&path, &rotated).expect("rotate the log");
        let req = api::ReopenContainerLogRequest {
            container_id: id.clone(),
        };
        c.call("ReopenContainerLog", |mut cl| async move {
            cl.reopen_container_log(req).await
        });
        let reopened = wait_until(Duration::from_secs(20), || {
            cri_log(&path).iter().any(|l| l == "stdout F tick")
        });
        // The old file no longer grows.
        let old = fs::metadata(&rotated).map(|m| m.len()).unwrap_or(0);
        std::thread::sleep(Duration::from_millis(500));
        let old_after = fs::metadata(&rotated).map(|m| m.len()).unwrap_or(0);
        // Reopening a stopped container's log is refused.
        c.stop_container(&id, 0);
        let req = api::ReopenContainerLogRequest {
            container_id: id.clone(),
        };
        let stopped = c
            .try_call(|mut cl| async move { cl.reopen_container_log(req).await })
            .is_err();
        c.remove_pod_and_check(&pod);
        assert_eq!(stdout, ["F first", "P a*16384", "F a*3616"]);
        assert_eq!(stderr, ["F to-stderr"]);
        assert!(
            reopened && old_after == old && stopped,
            "{reopened} {old} {old_after} {stopped}"
        );
        obs(&[
            (
                "stdout (a 20000-byte line split at 16 KiB)",
                format!("{stdout:?}"),
            ),
            ("stderr", format!("{stderr:?}")),
            ("new file after reopen", reopened.to_string()),
            ("old file still growing", (old_after != old).to_string()),
            ("reopen of a stopped container refused", stopped.to_string()),
        ])
    });
}

/// The first of `files` in the container's cgroup (cgroupfs: the pod's
/// cgroup parent / the container id), as the host sees it.
fn cgroup_value(pod: &Pod, id: &str, files: &[&str]) -> String {
    let parent = &pod.config.linux.as_ref().expect("linux").cgroup_parent;
    cgroup_dirs(&format!("{parent}/{id}"))
        .into_iter()
        .find_map(|d| {
            files
                .iter()
                .find_map(|f| fs::read_to_string(d.join(f)).ok())
        })
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// ContainerStats and ListContainerStats; UpdateContainerResources seen in
/// the container's cgroup.
#[test]
fn stats_and_update_resources() {
    require_root!();
    side_by_side("stats_and_update_resources", |c: &Cri, handler| {
        let pod = c.run_pod(handler, "stats");
        let id = c.run(
            &pod,
            Cri::container_config(
                "busy",
                &[
                    "sh",
                    "-c",
                    "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 1000",
                ],
            ),
        );
        let req = api::ContainerStatsRequest {
            container_id: id.clone(),
        };
        let stats = wait_for(Duration::from_secs(20), || {
            let req = req.clone();
            let s = c
                .call("ContainerStats", |mut cl| async move {
                    cl.container_stats(req).await
                })
                .stats?;
            let cpu = s.cpu.as_ref()?.usage_core_nano_seconds.as_ref()?.value;
            let mem = s.memory.as_ref()?.working_set_bytes.as_ref()?.value;
            (cpu > 0 && mem > 0).then_some(s)
        });
        let listed = c
            .call("ListContainerStats", |mut cl| async move {
                cl.list_container_stats(api::ListContainerStatsRequest { filter: None })
                    .await
            })
            .stats
            .iter()
            .any(|s| s.attributes.as_ref().is_some_and(|a| a.id == id));
        let req = api::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(api::LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                cpu_period: 100_000,
                cpu_quota: 50_000,
                cpu_shares: 512,
                ..Default::default()
            }),
            ..Default::default()
        };
        c.call("UpdateContainerResources", |mut cl| async move {
            cl.update_container_resources(req).await
        });
        let memory = cgroup_value(&pod, &id, &["memory.max", "memory.limit_in_bytes"]);
        let quota = cgroup_value(&pod, &id, &["cpu.max", "cpu.cfs_quota_us"]);
        let status_resources = c
            .status(&id)
            .resources
            .and_then(|r| r.linux)
            .map(|l| l.memory_limit_in_bytes);
        c.remove_pod_and_check(&pod);
        assert!(stats.is_some() && listed);
        assert_eq!(memory, "67108864");
        assert_eq!(quota.split_whitespace().next(), Some("50000"));
        assert_eq!(status_resources, Some(64 << 20));
        obs(&[
            ("stats with cpu and memory", stats.is_some().to_string()),
            ("listed", listed.to_string()),
            ("memory limit", memory),
            (
                "cpu quota",
                quota
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            ("status resources", format!("{status_resources:?}")),
        ])
    });
}

/// A container over its memory limit is OOM-killed and reported as
/// `OOMKilled`, exit code 137.
#[test]
fn oom_kill_is_reported_as_oomkilled() {
    require_root!();
    side_by_side("oom_kill_is_reported_as_oomkilled", |c: &Cri, handler| {
        let pod = c.run_pod(handler, "oom");
        let mut config = Cri::container_config("hog", &["sh", "-c", "tail /dev/zero"]);
        config.linux.as_mut().unwrap().resources = Some(api::LinuxContainerResources {
            memory_limit_in_bytes: 32 << 20,
            memory_swap_limit_in_bytes: 32 << 20,
            ..Default::default()
        });
        let id = c.run(&pod, config);
        let s = c.wait_exited(&id, Duration::from_secs(60));
        c.remove_pod_and_check(&pod);
        assert_eq!((s.exit_code, s.reason.as_str()), (137, "OOMKilled"));
        obs(&[("exit", format!("{} {}", s.exit_code, s.reason))])
    });
}

/// A kubelet's restart of a killed container: the container's process is
/// SIGKILLed, its status says exit 137; a new attempt is created and
/// started in the same pod, and runs.
#[test]
fn killed_container_is_restarted_as_the_kubelet_does() {
    require_root!();
    side_by_side(
        "killed_container_is_restarted_as_the_kubelet_does",
        |c: &Cri, handler| {
            let pod = c.run_pod(handler, "restart");
            let config = Cri::container_config("app", &["sleep", "1000"]);
            let first = c.run(&pod, config.clone());
            let pid = c.pid(&first);
            assert!(pid > 1, "pid {pid}");
            // SAFETY: kill has no memory-safety preconditions; the pid is the
            // init of this test's container, as containerd reports it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let dead = c.wait_exited(&first, Duration::from_secs(30));
            let mut again = config;
            again.metadata.as_mut().unwrap().attempt = 1;
            let second = c.run(&pod, again);
            let running = c.status(&second).state;
            let attempt = c.status(&second).metadata.map(|m| m.attempt);
            let works = c.sh(&second, "echo restarted");
            c.remove_container(&first);
            c.remove_pod_and_check(&pod);
            assert_eq!((dead.exit_code, dead.reason.as_str()), (137, "Error"));
            assert_eq!(
                (running, attempt, works.as_str()),
                (1, Some(1), "restarted")
            );
            obs(&[
                ("killed", format!("{} {}", dead.exit_code, dead.reason)),
                ("restarted", format!("{running} {attempt:?} {works}")),
            ])
        },
    );
}

fn pod_security(config: &mut api::PodSandboxConfig) -> &mut api::LinuxSandboxSecurityContext {
    config
        .linux
        .as_mut()
        .expect("linux")
        .security_context
        .as_mut()
        .expect("security context")
}

fn security_context(config: &mut api::ContainerConfig) -> &mut api::LinuxContainerSecurityContext {
    config
        .linux
        .as_mut()
        .expect("linux")
        .security_context
        .as_mut()
        .expect("security context")
}

/// The first field of `/proc/self/status` line `key`.
const STATUS: &str = "s() { awk -v k=\"$1:\" '$1==k {print $2}' /proc/self/status; }";

/// securityContext: user, group and supplemental groups; a read-only
/// root; capabilities added and dropped; no_new_privs; seccomp
/// RuntimeDefault and a Localhost profile; the kubelet's masked and
/// read-only paths.
#[test]
fn security_context_is_applied() {
    require_root!();
    side_by_side("security_context_is_applied", |c: &Cri, handler| {
        let pod = c.run_pod(handler, "sec");
        let mut user = Cri::container_config("user", &["sleep", "1000"]);
        let sc = security_context(&mut user);
        sc.run_as_user = Some(api::Int64Value { value: 1000 });
        sc.run_as_group = Some(api::Int64Value { value: 2000 });
        sc.supplemental_groups = vec![3000, 3001];
        sc.readonly_rootfs = true;
        sc.no_new_privs = true;
        sc.seccomp = Some(api::SecurityProfile {
            profile_type: api::security_profile::ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        });
        let u = c.run(&pod, user);
        let id = c.sh(&u, "id");
        let ro = c.sh(&u, "touch /x 2>&1; echo \" $?\"");
        let nnp = c.sh(&u, &format!("{STATUS}; s NoNewPrivs; s Seccomp"));

        let mut caps = Cri::container_config("caps", &["sleep", "1000"]);
        let sc = security_context(&mut caps);
        sc.capabilities = Some(api::Capability {
            add_capabilities: vec!["NET_ADMIN".into(), "SYS_TIME".into()],
            drop_capabilities: vec!["CHOWN".into(), "KILL".into()],
            ..Default::default()
        });
        let profile = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        });
        sc.seccomp = Some(api::SecurityProfile {
            profile_type: api::security_profile::ProfileType::Localhost as i32,
            localhost_ref: c.seccomp_profile("deny-mkdir.json", &profile),
        });
        let k = c.run(&pod, caps);
        let capeff = c.sh(&k, &format!("{STATUS}; s CapEff; s CapBnd; s Seccomp"));
        let mkdir = c.sh(&k, "mkdir /tmp/d 2>&1; echo \" $?\"");
        let masked = c.sh(
            &k,
            "for p in /proc/kcore /proc/keys /sys/firmware; do grep -c \" $p \" /proc/self/mountinfo; done; \
             cat /proc/kcore | wc -c; ls /sys/firmware | wc -l",
        );
        let readonly = c.sh(&k, "awk '$5==\"/proc/sys\" || $5==\"/proc/bus\" {print $5, substr($6,1,2)}' /proc/self/mountinfo");
        c.remove_pod_and_check(&pod);
        assert!(
            id.starts_with("uid=1000") && id.contains(" gid=2000 groups=2000,3000,3001"),
            "{id}"
        );
        assert!(ro.contains("Read-only file system"), "{ro}");
        assert_eq!(nnp.replace('\n', " "), "1 2");
        assert_eq!(
            capeff.replace('\n', " "),
            "00000000aa0435da 00000000aa0435da 2"
        );
        assert!(mkdir.contains("Operation not permitted"), "{mkdir}");
        // (/proc/kcore is masked only where the kernel has one.)
        let m: Vec<&str> = masked.lines().collect();
        assert_eq!(m[1..], ["1", "1", "0", "0"], "{masked}");
        assert!(readonly.contains("/proc/sys ro"), "{readonly}");
        obs(&[
            ("id", id),
            ("read-only root", ro),
            ("NoNewPrivs, Seccomp", nnp.replace('\n', " ")),
            ("CapEff, CapBnd, Seccomp", capeff.replace('\n', " ")),
            ("mkdir under the Localhost profile", mkdir),
            (
                "masked (mounts, kcore bytes, firmware entries)",
                masked.replace('\n', " "),
            ),
            ("read-only paths", readonly.replace('\n', "; ")),
        ])
    });
}

/// A privileged container in a privileged pod: all capabilities, no
/// seccomp, nothing masked, the host's devices.
#[test]
fn privileged_container() {
    require_root!();
    side_by_side("privileged_container", |c: &Cri, handler| {
        let mut config = c.pod_config("priv");
        pod_security(&mut config).privileged = true;
        let pod = c.run_pod_with(handler, config);
        let mut cc = Cri::container_config("priv", &["sleep", "1000"]);
        security_context(&mut cc).privileged = true;
        let p = c.run(&pod, cc);
        let status = c.sh(&p, &format!("{STATUS}; s CapEff; s Seccomp; s NoNewPrivs"));
        let masked = c.sh(&p, "grep -c ' /proc/kcore ' /proc/self/mountinfo; echo");
        let sys = c.sh(
            &p,
            "awk '$5==\"/sys\" {print substr($6,1,2)}' /proc/self/mountinfo",
        );
        let devices = c.sh(&p, "ls /dev | wc -l");
        let host_devices = fs::read_dir("/dev").map(|d| d.count()).unwrap_or(0);
        c.remove_pod_and_check(&pod);
        let s: Vec<&str> = status.lines().collect();
        assert_eq!(s[1..], ["0", "0"], "{status}");
        assert!(s[0].ends_with("ffffff"), "{status}");
        assert_eq!((masked.as_str(), sys.as_str()), ("0", "rw"));
        obs(&[
            ("CapEff, Seccomp, NoNewPrivs", status.replace('\n', " ")),
            ("kcore masked", masked),
            ("/sys", sys),
            (
                "has most host devices",
                (devices.parse::<usize>().unwrap_or(0) + 10 >= host_devices).to_string(),
            ),
        ])
    });
}

/// Host namespaces (hostNetwork, hostPID, hostIPC): the container's are
/// the host's.
#[test]
fn host_namespaces() {
    require_root!();
    side_by_side("host_namespaces", |c: &Cri, handler| {
        let host = api::NamespaceOption {
            network: api::NamespaceMode::Node as i32,
            pid: api::NamespaceMode::Node as i32,
            ipc: api::NamespaceMode::Node as i32,
            ..Default::default()
        };
        let mut config = c.pod_config("hostns");
        // The host's UTS namespace too: no hostname of the pod's own.
        config.hostname = String::new();
        pod_security(&mut config).namespace_options = Some(host.clone());
        let pod = c.run_pod_with(handler, config);
        let mut cc = Cri::container_config("h", &["sleep", "1000"]);
        security_context(&mut cc).namespace_options = Some(host);
        let h = c.run(&pod, cc);
        let inside = c.sh(
            &h,
            "for n in net ipc pid; do readlink /proc/self/ns/$n; done",
        );
        let mine: Vec<String> = ["net", "ipc", "pid"]
            .iter()
            .map(|n| {
                fs::read_link(format!("/proc/self/ns/{n}"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect();
        let pod_ip = c.pod_status(&pod).network.map(|n| n.ip).unwrap_or_default();
        c.remove_pod_and_check(&pod);
        let inside: Vec<&str> = inside.lines().collect();
        assert_eq!(inside.iter().zip(&mine).filter(|(a, b)| a == b).count(), 3);
        obs(&[
            (
                "net, ipc, pid are the host's",
                format!(
                    "{:?}",
                    inside
                        .iter()
                        .zip(&mine)
                        .map(|(a, b)| a == b)
                        .collect::<Vec<_>>()
                ),
            ),
            (
                "pod IP (none from CNI)",
                pod_ip.starts_with("169.254.").to_string(),
            ),
        ])
    });
}

/// Mount propagation of volumes (Private, HostToContainer, Bidirectional):
/// a mount made on the host under each volume after the start, and one
/// made in the container under each. Bidirectional is the one that reaches
/// the host (issue 20's bug: corten made it a slave).
#[test]
fn mount_propagation() {
    require_root!();
    side_by_side("mount_propagation", |c: &Cri, handler| {
        let vols = c.dir.join("vols").join(handler);
        let kinds = [
            ("private", api::MountPropagation::PropagationPrivate),
            ("h2c", api::MountPropagation::PropagationHostToContainer),
            ("bidi", api::MountPropagation::PropagationBidirectional),
        ];
        for (name, _) in kinds {
            let out = c.host_sh(&format!("mkdir -p {}/{name}", vols.display()));
            assert!(out.status.success(), "{out:?}");
        }
        let mut config = c.pod_config("prop");
        pod_security(&mut config).privileged = true;
        let pod = c.run_pod_with(handler, config);
        let mut cc = Cri::container_config("prop", &["sleep", "1000"]);
        security_context(&mut cc).privileged = true;
        cc.mounts = kinds
            .iter()
            .map(|(name, p)| api::Mount {
                container_path: format!("/{name}"),
                host_path: vols.join(name).display().to_string(),
                propagation: *p as i32,
                ..Default::default()
            })
            .collect();
        let id = c.run(&pod, cc);
        for (name, _) in kinds {
            let v = vols.join(name);
            let out = c.host_sh(&format!(
                "mkdir {v}/fromhost && mount -t tmpfs fromhost {v}/fromhost",
                v = v.display()
            ));
            assert!(out.status.success(), "{out:?}");
        }
        let seen_inside = c.sh(
            &id,
            "for v in private h2c bidi; do grep -q \" /$v/fromhost \" /proc/self/mountinfo && echo $v:yes || echo $v:no; done",
        );
        c.sh(
            &id,
            "for v in private h2c bidi; do mkdir /$v/inner && mount -t tmpfs inner /$v/inner; done",
        );
        // How each volume is propagated in the container (mountinfo's
        // optional fields, peer group numbers left out).
        let tags = c.sh(
            &id,
            "for v in private h2c bidi; do awk -v m=/$v '$5==m {t=\"\"; for (i=7; $i!=\"-\"; i++) {sub(/:.*/, \"\", $i); t=t $i} print m \":\" t}' /proc/self/mountinfo; done",
        );
        let seen_on_host = c.host_sh(&format!(
            "for v in private h2c bidi; do mountpoint -q {}/$v/inner && echo $v:yes || echo $v:no; done",
            vols.display()
        ));
        c.remove_pod_and_check(&pod);
        let on_host = String::from_utf8_lossy(&seen_on_host.stdout)
            .trim()
            .replace('\n', " ");
        // Kubernetes' meaning, whatever the reference runtime does.
        assert_eq!(
            seen_inside.replace('\n', " "),
            "private:no h2c:yes bidi:yes"
        );
        assert_eq!(on_host, "private:no h2c:no bidi:yes");
        obs(&[
            ("host mount seen inside", seen_inside.replace('\n', " ")),
            ("volume propagation inside", tags.replace('\n', " ")),
            (
                "container mount seen on the host",
                String::from_utf8_lossy(&seen_on_host.stdout)
                    .trim()
                    .replace('\n', " "),
            ),
        ])
    });
}

/// Pod sysctls (namespaced: net.*, kernel.shm*) reach every container.
#[test]
fn sysctls_are_set() {
    require_root!();
    side_by_side("sysctls_are_set", |c: &Cri, handler| {
        let mut config = c.pod_config("sysctl");
        config.linux.as_mut().unwrap().sysctls = sysctls(&[
            ("net.core.somaxconn", "1000"),
            ("kernel.shm_rmid_forced", "1"),
        ]);
        let pod = c.run_pod_with(handler, config);
        let id = c.run(&pod, Cri::container_config("s", &["sleep", "1000"]));
        let values = c.sh(
            &id,
            "cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shm_rmid_forced",
        );
        c.remove_pod_and_check(&pod);
        assert_eq!(values.replace('\n', " "), "1000 1");
        obs(&[("somaxconn, shm_rmid_forced", values.replace('\n', " "))])
    });
}

/// A pod of five containers is served by one shim (per handler), and
/// what that costs: the shims' resident memory, printed.
#[test]
fn five_containers_share_one_shim() {
    require_root!();
    side_by_side("five_containers_share_one_shim", |c: &Cri, handler| {
        let pod = c.run_pod(handler, "five");
        let ids: Vec<String> = (0..5)
            .map(|i| {
                c.run(
                    &pod,
                    Cri::container_config(&format!("c{i}"), &["sleep", "1000"]),
                )
            })
            .collect();
        let outputs: Vec<String> = ids.iter().map(|id| c.sh(id, "echo ok")).collect();
        let shims = c.shims();
        let rss_kb: u64 = shims
            .iter()
            .map(|(pid, _)| {
                fs::read_to_string(format!("/proc/{pid}/status"))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum();
        eprintln!(
            "CRI shim memory: {handler}: {} shim(s) {:?}, VmRSS {rss_kb} kB for a pod of a pause \
             and 5 containers",
            shims.len(),
            shims.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>()
        );
        c.remove_pod_and_check(&pod);
        assert_eq!(shims.len(), 1);
        assert_eq!(outputs.join(" "), "ok ok ok ok ok");
        obs(&[
            ("shims for the pod", shims.len().to_string()),
            ("containers answering", outputs.join(" ")),
        ])
    });
}
