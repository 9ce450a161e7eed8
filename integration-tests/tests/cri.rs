//! Kubernetes through containerd's CRI plugin (Debian's containerd 1.6):
//! every test runs the same pods and containers with each runtime handler
//! of [`HANDLERS`] — `runc` (the reference), `corten-runc-shim` (runc's shim
//! running corten) and `corten` (corten's shim) — and requires each to
//! observe what runc observes. See `corten_integration_tests::cri` for the
//! private containerd, the CRI client and the streaming client.

use std::time::Duration;

use corten_integration_tests::cri::{self, obs, side_by_side, Cri, HANDLERS};
use corten_integration_tests::require_root;
use k8s_cri::v1 as api;

#[allow(dead_code)]
const _: [&str; 3] = HANDLERS;

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
        let hostname = c.sh(&id, "hostname");
        let resolv = c.sh(&id, "cat /etc/resolv.conf");
        let addr = c.sh(&id, "ip -o -4 addr show eth0 | awk '{print $4}'");
        let routes = c.sh(&id, "ip route | wc -l");
        c.stop_container(&id, 2);
        let stopped = c.status(&id);
        c.remove_container(&id);
        c.remove_pod_and_check(&pod);
        obs(&[
            ("state after start", format!("{state}")),
            ("exec", format!("{code} {out:?} {err:?}")),
            ("hostname", hostname),
            ("resolv.conf", resolv),
            ("eth0 address is the pod IP", (addr == format!("{ip}/32")).to_string()),
            ("routes", routes),
            ("state after stop", format!("{} exit {}", stopped.state, stopped.exit_code)),
        ])
    });
}
