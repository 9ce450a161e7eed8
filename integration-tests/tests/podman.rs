//! corten as podman's runtime (Debian's podman 4.3): `podman --runtime
//! <corten>` with private `--root`/`--runroot`, the cgroupfs manager and the
//! file events backend; run, exec, pause, stop, rm, compared with runc.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use corten_integration_tests::{require_root, runtime_bin, OutputExt};

const PODMAN: &str = "/usr/bin/podman";

struct Podman {
    dir: PathBuf,
    runtime: String,
}

impl Podman {
    fn new(test: &str, runtime: &str) -> Podman {
        assert!(
            Path::new(PODMAN).exists(),
            "{PODMAN} missing: `make deps` installs podman"
        );
        let dir = Path::new("/tmp/corten-it").join(format!("podman-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("podman dir");
        let p = Podman {
            dir,
            runtime: runtime.to_owned(),
        };
        p.import_busybox();
        p
    }

    fn podman(&self, args: &[&str]) -> Output {
        Command::new(PODMAN)
            .args(["--root", &self.dir.join("root").to_string_lossy()])
            .args(["--runroot", &self.dir.join("runroot").to_string_lossy()])
            .args(["--runtime", &self.runtime])
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(["--tmpdir", &self.dir.join("tmp").to_string_lossy()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run podman")
    }

    fn import_busybox(&self) {
        let tar = corten_integration_tests::busybox_tarball(&self.dir);
        self.podman(&["import", &tar.to_string_lossy(), "localhost/busybox:corten"])
            .assert_success("podman import");
    }

    /// A script of podman commands, returning what a user would see.
    fn scenario(&self) -> Vec<String> {
        // Hard rlimits cannot be raised on these machines: pass podman's own.
        let u = [
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        let mut seen = Vec::new();
        let mut run = vec!["run", "--rm"];
        run.extend_from_slice(&u);
        run.extend_from_slice(&[
            "localhost/busybox:corten",
            "sh",
            "-c",
            "echo hello; id -u; exit 4",
        ]);
        let out = self.podman(&run);
        seen.push(format!("run: {:?} {}", out.status.code(), out.stdout_str()));
        let mut run_d = vec!["run", "-d", "--name", "p1"];
        run_d.extend_from_slice(&u);
        run_d.extend_from_slice(&["localhost/busybox:corten", "sleep", "1000"]);
        self.podman(&run_d).assert_success("podman run -d");
        let out = self.podman(&["exec", "p1", "sh", "-c", "echo exec-ok; exit 2"]);
        seen.push(format!(
            "exec: {:?} {}",
            out.status.code(),
            out.stdout_str()
        ));
        self.podman(&["pause", "p1"]).assert_success("pause");
        seen.push(format!(
            "paused: {}",
            self.podman(&["inspect", "-f", "{{.State.Status}}", "p1"])
                .stdout_str()
        ));
        self.podman(&["unpause", "p1"]).assert_success("unpause");
        seen.push(format!(
            "unpaused: {}",
            self.podman(&["inspect", "-f", "{{.State.Status}}", "p1"])
                .stdout_str()
        ));
        self.podman(&["stop", "-t", "1", "p1"])
            .assert_success("stop");
        seen.push(format!(
            "stopped: {}",
            self.podman(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "p1"
            ])
            .stdout_str()
        ));
        self.podman(&["rm", "p1"]).assert_success("rm");
        seen.push(format!(
            "left: {}",
            self.podman(&["ps", "-aq"]).stdout_str()
        ));
        seen
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-af", "-t", "0"]);
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.dir.join("root"))
            .output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn podman_runs_containers_through_corten_as_through_runc() {
    require_root!();
    let ours = Podman::new("corten", &runtime_bin().to_string_lossy()).scenario();
    assert_eq!(ours[0], "run: Some(4) hello\n0\n");
    assert_eq!(ours[1], "exec: Some(2) exec-ok\n");
    assert_eq!(ours[2], "paused: paused\n");
    assert_eq!(ours[5], "left: ");
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    match runc {
        Some(runc) => assert_eq!(
            ours,
            Podman::new("runc", runc).scenario(),
            "podman with corten and runc differ"
        ),
        None => corten_integration_tests::skip(
            "podman_runs_containers_through_corten_as_through_runc",
            "runc missing",
        ),
    }
}
