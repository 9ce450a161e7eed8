//! A catalogue of bad input: malformed and hostile configs, misuse of the
//! command line, hostile root filesystems and damaged state. Every case must
//! be refused with
//! 1. the exit code corten gives for it (the one runc 1.1.5 gives, unless
//!    runc does not refuse it at all or fails in a worse way),
//! 2. exactly one line on stderr whose message names the problem (a
//!    distinctive substring; `…` in it stands for any text), and
//! 3. nothing left behind: no state entry under `--root` (other than a
//!    container the case made on purpose, which must be untouched), no
//!    cgroup for the bundle's `cgroupsPath`, no process mentioning the
//!    case's runtime directory or bundle, no mount under the rootfs, no pid
//!    file.
//!
//! Each case gets its own bundle and its own runtime root, so one failing
//! case cannot spill into the next; all cases of a table run, and the test
//! fails listing every case that did not hold.
//!
//! Cases where corten answers worse than runc (a different exit code, a
//! message that does not name the problem, something left behind) are not
//! encoded here.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use corten_integration_tests::allow_all_seccomp as seccomp;
use corten_integration_tests::{
    cgroup_dirs, cgroup_parent, mounts_under, processes_mentioning, require_root, skip, Bundle,
    OutputExt, Runtime,
};
use serde_json::{json, Value};

/// A change to a bundle (its config or its rootfs) before the command runs.
type Edit = Box<dyn Fn(&mut Bundle)>;
/// Something done with the runtime (its state directory) before the command
/// runs, or after it to clean up.
type RuntimeStep = Box<dyn Fn(&Runtime)>;

/// A container made before the refused command, so the command has
/// something to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pre {
    None,
    Created,
    Running,
    Paused,
    Stopped,
}

/// The id of the container a case makes first (see [`Pre`]).
const PRE: &str = "pre";

/// `create` of the case's bundle under the id `{id}`.
const CREATE: &[&str] = &[
    "create",
    "--bundle",
    "{bundle}",
    "--pid-file",
    "{scratch}/{id}.pid",
    "{id}",
];

/// One bad input and the refusal expected for it.
struct Case {
    name: String,
    code: i32,
    msg: &'static str,
    /// The command after `--root <root>`, with `{bundle}`, `{scratch}`,
    /// `{id}` and `{long-id}` expanded. A command starting with `--root`
    /// runs without the runtime's own `--root`.
    args: Vec<&'static str>,
    pre: Pre,
    edits: Vec<Edit>,
    damage: Option<RuntimeStep>,
    cleanup: Option<RuntimeStep>,
}

/// A case refused with exit code `code` and a message containing `msg`;
/// by default the command is [`CREATE`] of an unchanged bundle.
fn case(name: impl Into<String>, code: i32, msg: &'static str) -> Case {
    Case {
        name: name.into(),
        code,
        msg,
        args: CREATE.to_vec(),
        pre: Pre::None,
        edits: Vec::new(),
        damage: None,
        cleanup: None,
    }
}

impl Case {
    /// Run `args` instead of `create`.
    fn args(mut self, args: &[&'static str]) -> Self {
        self.args = args.to_vec();
        self
    }

    /// Make a container `pre` of the bundle first (args `sleep 1000`).
    fn pre(mut self, pre: Pre) -> Self {
        self.pre = pre;
        self
    }

    /// Edit the bundle.
    fn with(mut self, edit: impl Fn(&mut Bundle) + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// Set the config value at a JSON pointer.
    fn set(self, pointer: &'static str, value: Value) -> Self {
        self.with(move |b| {
            b.set(pointer, value.clone());
        })
    }

    /// Remove the config value at a JSON pointer.
    fn remove(self, pointer: &'static str) -> Self {
        self.with(move |b| {
            b.remove(pointer);
        })
    }

    /// Append to the config array at a JSON pointer.
    fn push(self, pointer: &'static str, value: Value) -> Self {
        self.with(move |b| {
            b.push(pointer, value.clone());
        })
    }

    /// Append a mount.
    fn mount(self, destination: &'static str, kind: &'static str, source: &'static str) -> Self {
        self.push(
            "/mounts",
            json!({ "destination": destination, "type": kind, "source": source }),
        )
    }

    /// Drop the namespace entry of `kind`.
    fn no_ns(self, kind: &'static str) -> Self {
        self.with(move |b| {
            b.remove_namespace(kind);
        })
    }

    /// Replace `config.json` with `text`.
    fn raw(self, text: impl Into<String>) -> Self {
        let text = text.into();
        self.with(move |b| b.write_raw_config(&text))
    }

    /// Damage the runtime's state after `pre` is made.
    fn damage(mut self, step: impl Fn(&Runtime) + 'static) -> Self {
        self.damage = Some(Box::new(step));
        self
    }

    /// Undo what the case set up outside the bundle, after the command.
    fn cleanup(mut self, step: impl Fn(&Runtime) + 'static) -> Self {
        self.cleanup = Some(Box::new(step));
        self
    }
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 test path")
}

/// `arg` with the case's placeholders expanded.
fn expand(arg: &str, rt: &Runtime, b: &Bundle) -> String {
    arg.replace("{bundle}", utf8(b.path()))
        .replace("{scratch}", utf8(&rt.scratch()))
        .replace("{long-id}", &"a".repeat(2000))
        .replace("{id}", b.name())
}

/// The message of an error line: the `msg="…"` field of a logrus-style
/// line, unquoted, or the line itself.
fn message(line: &str) -> String {
    let Some(start) = line.find(" msg=\"") else {
        return line.to_owned();
    };
    let quoted = &line[start + 6..];
    let quoted = quoted.strip_suffix('"').unwrap_or(quoted);
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(next @ ('"' | '\\'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whether `text` contains the parts of `pattern` (split at `…`) in order.
fn matches(text: &str, pattern: &str) -> bool {
    let mut rest = text;
    for part in pattern.split('…') {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Checks the refusal: exit code, one line on stderr, the message.
fn check_refusal(out: &Output, code: i32, msg: &str) -> Result<(), String> {
    let stderr = out.stderr_str();
    if out.code() != code {
        return Err(format!(
            "exit code {} (expected {code}); stderr: {stderr:?}",
            out.code()
        ));
    }
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != 1 {
        return Err(format!(
            "{} lines on stderr (expected 1): {stderr:?}",
            lines.len()
        ));
    }
    let text = message(lines[0]);
    if !matches(&text, msg) {
        return Err(format!("the message {text:?} does not contain {msg:?}"));
    }
    Ok(())
}

/// Checks that nothing of the case is left: state, cgroup, processes,
/// mounts, pid file.
fn check_nothing_left(rt: &Runtime, b: &Bundle) -> Result<(), String> {
    let entries = rt.root_entries();
    if !entries.is_empty() {
        return Err(format!("state left under --root: {entries:?}"));
    }
    let cgroups = cgroup_dirs(b.cgroup_path());
    if !cgroups.is_empty() {
        return Err(format!("cgroup left: {cgroups:?}"));
    }
    let scratch = rt.scratch();
    let bundle = b.path().display();
    for marker in [
        format!("{}/", scratch.display()),
        format!("{bundle} "),
        format!("{bundle}/"),
    ] {
        let procs = processes_mentioning(&marker);
        if !procs.is_empty() {
            return Err(format!("processes mentioning {marker:?} left: {procs:?}"));
        }
    }
    let mounts = mounts_under(&b.rootfs());
    if !mounts.is_empty() {
        return Err(format!("mounts left under the rootfs: {mounts:?}"));
    }
    let pid_file = scratch.join(format!("{}.pid", b.name()));
    if pid_file.exists() {
        return Err(format!("pid file {} written", pid_file.display()));
    }
    Ok(())
}

/// Makes the container [`PRE`] of `b` in the state `pre`.
fn make_pre(rt: &Runtime, b: &Bundle, pre: Pre) -> Result<(), String> {
    let ok = |out: Output, what: &str| {
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("setup: {what} failed: {}", out.stderr_str()))
        }
    };
    ok(rt.create(PRE, b), "create pre")?;
    if matches!(pre, Pre::Running | Pre::Paused | Pre::Stopped) {
        ok(rt.start(PRE), "start pre")?;
    }
    match pre {
        Pre::Paused => ok(rt.cmd(&["pause", PRE]), "pause pre")?,
        Pre::Stopped => {
            ok(rt.kill(PRE, "KILL"), "kill pre")?;
            rt.wait_status(PRE, "stopped");
        }
        _ => {}
    }
    Ok(())
}

/// The status of container `id`, if `state` can tell it.
fn status_of(rt: &Runtime, id: &str) -> Option<String> {
    let out = rt.cmd(&["state", id]);
    let state: Value = serde_json::from_slice(&out.stdout).ok()?;
    state["status"].as_str().map(str::to_owned)
}

/// Puts back the `state.json` of [`PRE`] saved before a damage.
fn repair_state(rt: &Runtime, saved: &[u8]) {
    let path = rt.root().join(PRE).join("state.json");
    if path.is_dir() {
        let _ = fs::remove_dir_all(&path);
    } else {
        let _ = fs::remove_file(&path);
    }
    fs::write(&path, saved).expect("restore state.json");
}

/// Runs one case in its own bundle and runtime.
fn run_case(test: &str, case: &Case) -> Result<(), String> {
    let mut b = Bundle::new(test);
    if case.pre != Pre::None {
        b.args(&["sleep", "1000"]);
    }
    for edit in &case.edits {
        edit(&mut b);
    }
    let rt = Runtime::new(test);
    rt.track_id(b.name(), &b);
    if case.pre != Pre::None {
        make_pre(&rt, &b, case.pre)?;
    }
    let saved = (case.pre != Pre::None)
        .then(|| fs::read(rt.root().join(PRE).join("state.json")).ok())
        .flatten();
    if let Some(damage) = &case.damage {
        damage(&rt);
    }
    let status_before = (case.pre != Pre::None && case.damage.is_none())
        .then(|| status_of(&rt, PRE))
        .flatten();
    let entries_before = {
        let mut e = rt.root_entries();
        e.sort();
        e
    };
    b.save();

    let args: Vec<String> = case.args.iter().map(|a| expand(a, &rt, &b)).collect();
    let mut cmd = if case.args.first() == Some(&"--root") {
        Command::new(rt.bin())
    } else {
        rt.command()
    };
    cmd.args(&args);
    let out = rt.output(cmd);
    let refused = check_refusal(&out, case.code, case.msg);

    // The refused command neither added nor removed state entries, and
    // left the container it acted on as it was.
    let mut entries_after = rt.root_entries();
    entries_after.sort();
    let mut untouched = if entries_after == entries_before {
        Ok(())
    } else {
        Err(format!(
            "state entries changed from {entries_before:?} to {entries_after:?}"
        ))
    };
    if let Some(before) = status_before {
        let after = status_of(&rt, PRE);
        if after.as_deref() != Some(before.as_str()) {
            untouched = untouched.and(Err(format!(
                "the status of {PRE} changed from {before:?} to {after:?}"
            )));
        }
    }
    if case.pre != Pre::None {
        if let (Some(saved), true) = (&saved, case.damage.is_some()) {
            repair_state(&rt, saved);
        }
        let out = rt.cmd(&["delete", "--force", PRE]);
        if !out.status.success() {
            untouched = untouched.and(Err(format!(
                "delete --force {PRE} afterwards failed: {}",
                out.stderr_str()
            )));
        }
    }
    if let Some(cleanup) = &case.cleanup {
        cleanup(&rt);
    }
    refused?;
    untouched?;
    check_nothing_left(&rt, &b)
}

/// Runs every case of a table; fails listing the cases that did not hold.
fn run_table(test: &str, cases: &[Case]) {
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "case names must be unique");

    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            run_case(test, c)
                .err()
                .map(|why| format!("case {:?}: {why}", c.name))
        })
        .collect();
    eprintln!("{test}: {} cases, {} failed", cases.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Whether the host runs a pure cgroup v2 hierarchy at /sys/fs/cgroup.
fn unified_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The host's value of a sysctl (so that even a runtime that wrongly
/// applied it would change nothing).
fn host_sysctl(name: &str) -> String {
    let path = Path::new("/proc/sys").join(name.replace('.', "/"));
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[test]
fn config_json_cases() {
    require_root!();
    let mut cases = vec![
        // --- not a config at all ---
        case("truncated JSON", 1, "config.json: EOF while parsing a value")
            .raw(r#"{ "ociVersion": "1.0.2", "process": "#),
        case("empty file", 1, "config.json: EOF while parsing a value at line 1 column 0").raw(""),
        case("a JSON array", 1, "invalid type: sequence, expected struct Spec").raw("[]"),
        case("a JSON array of numbers", 1, "invalid type: sequence, expected struct Spec").raw("[1, 2, 3]"),
        case("JSON null", 1, "invalid type: null, expected struct Spec").raw("null"),
        case("a JSON string", 1, r#"invalid type: string "hello", expected struct Spec"#)
            .raw(r#""hello""#),
        case("trailing garbage", 1, "config.json: trailing characters").raw("{}garbage"),
        case("non-UTF-8 bytes", 1, "config.json: invalid unicode code point").with(|b| {
            b.write_raw_config("");
            fs::write(b.path().join("config.json"), b"{\"ociVersion\": \"\xff\xfe\"}")
                .expect("write config.json");
        }),
        case("deeply nested arrays", 1, "config.json: recursion limit exceeded")
            .raw(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
        case("deeply nested objects", 1, "config.json: recursion limit exceeded").raw(format!(
            "{}1{}",
            r#"{"a":"#.repeat(100_000),
            "}".repeat(100_000)
        )),
        case("10 MB of blanks", 1, "config.json: EOF while parsing a value")
            .raw(" ".repeat(10 << 20)),
        case("10 MB unterminated string", 1, "config.json: EOF while parsing a string")
            .raw(format!(r#"{{"ociVersion": "{}"#, "a".repeat(10 << 20))),
        case("10 MB of garbage", 1, "config.json: expected value at line 1 column 1")
            .raw("x".repeat(10 << 20)),
        // --- ociVersion, root, hostname, annotations ---
        case("ociVersion a number", 1, "invalid type: integer `1`, expected a string")
            .set("/ociVersion", json!(1)),
        case("root missing", 1, "root must be specified").remove("/root"),
        case("root a string", 1, r#"invalid type: string "rootfs", expected struct Root"#)
            .set("/root", json!("rootfs")),
        case("root.path missing", 1, "missing field `path`").remove("/root/path"),
        case("root.path empty", 1, "root.path is empty").set("/root/path", json!("")),
        case("root.path nonexistent", 1, "invalid rootfs: stat …no-such-rootfs: no such file or directory")
            .set("/root/path", json!("no-such-rootfs")),
        case("root.path a file", 1, "invalid rootfs: stat …config.json: not a directory")
            .set("/root/path", json!("config.json")),
        case("root.readonly a string", 1, r#"invalid type: string "yes", expected a boolean"#)
            .set("/root/readonly", json!("yes")),
        case("hostname a number", 1, "invalid type: integer `5`, expected a string")
            .set("/hostname", json!(5)),
        case("hostname too long", 1, "sethostname: invalid argument")
            .set("/hostname", json!("h".repeat(100))),
        case("domainname too long", 1, "setdomainname: invalid argument")
            .set("/domainname", json!("d".repeat(100))),
        case("hostname without a UTS namespace", 1, "unable to set hostname without a private UTS namespace")
            .no_ns("uts")
            .with(|b| {
                b.set("/hostname", json!(host_sysctl("kernel.hostname")));
            }),
        case("annotation value a number", 1, "invalid type: integer `1`, expected a string")
            .set("/annotations", json!({ "a": 1 })),
        case("annotations an array", 1, "invalid type: sequence, expected a map")
            .set("/annotations", json!(["a"])),
        case("linux a string", 1, r#"invalid type: string "x", expected struct Linux"#)
            .set("/linux", json!("x")),
        // --- process ---
        case("process missing", 1, "process property must not be empty").remove("/process"),
        case("process a string", 1, r#"invalid type: string "x", expected struct Process"#)
            .set("/process", json!("x")),
        case("process.args a number", 1, "invalid type: integer `5`, expected a sequence")
            .set("/process/args", json!(5)),
        case("process.args a string", 1, r#"invalid type: string "true", expected a sequence"#)
            .set("/process/args", json!("true")),
        case("process.args of numbers", 1, "invalid type: integer `1`, expected a string")
            .set("/process/args", json!([1])),
        case("process.args empty", 1, "args must not be empty").set("/process/args", json!([])),
        case("process.args missing", 1, "args must not be empty").remove("/process/args"),
        case("binary missing", 1, r#"exec: "/bin/does-not-exist": stat /bin/does-not-exist: no such file or directory"#)
            .set("/process/args", json!(["/bin/does-not-exist"])),
        case("binary not executable", 1, r#"exec: "/etc/passwd": permission denied"#)
            .set("/process/args", json!(["/etc/passwd"])),
        case("binary a directory", 1, r#"exec: "/tmp": permission denied"#)
            .set("/process/args", json!(["/tmp"])),
        case("binary not in PATH", 1, r#"exec: "frobnicate-cmd": executable file not found in $PATH"#)
            .set("/process/args", json!(["frobnicate-cmd"])),
        case("binary an empty string", 1, r#"exec: "": executable file not found in $PATH"#)
            .set("/process/args", json!([""])),
        case("binary name with a NUL byte", 1, r#"exec: "tr…": executable file not found in $PATH"#)
            .set("/process/args", json!(["tr\u{0}ue"])),
        case("process.user.uid a string", 1, r#"process.user.uid: invalid type: string "0", expected uint32"#)
            .set("/process/user/uid", json!("0")),
        case("process.user.uid negative", 1, r#"process.user.uid: invalid value: integer `-1`, expected uint32"#)
            .set("/process/user/uid", json!(-1)),
        case("process.user.uid above 2^32", 1, r#"process.user.uid: invalid value: integer `1099511627776`, expected uint32"#)
            .set("/process/user/uid", json!(1_u64 << 40)),
        case("process.user.gid a float", 1, r#"process.user.gid: invalid type: floating point `1.5`, expected uint32"#)
            .set("/process/user/gid", json!(1.5)),
        case("additionalGids a string", 1, r#"invalid type: string "1", expected a sequence"#)
            .set("/process/user/additionalGids", json!("1")),
        case("70000 additionalGids", 1, "setgroups: invalid argument")
            .set("/process/user/additionalGids", json!((0..70_000).collect::<Vec<u32>>())),
        case("username a number", 1, "invalid type: integer `5`, expected a string")
            .set("/process/user/username", json!(5)),
        case("username unknown", 1, "unable to find user nosuchuser")
            .set("/process/user/username", json!("nosuchuser")),
        case("umask a string", 1, r#"process.user.umask: invalid type: string "022", expected uint32"#)
            .set("/process/user/umask", json!("022")),
        case("rlimits an object", 1, "invalid type: map, expected a sequence")
            .set("/process/rlimits", json!({ "type": "RLIMIT_NOFILE" })),
        case("rlimit soft a string", 1, r#"process.rlimits[0].soft: invalid type: string "1", expected uint64"#)
            .set("/process/rlimits", json!([{ "type": "RLIMIT_NOFILE", "soft": "1", "hard": 1 }])),
        case("rlimit type unknown", 1, "wrong rlimit value: RLIMIT_FROB")
            .set("/process/rlimits", json!([{ "type": "RLIMIT_FROB", "soft": 1, "hard": 1 }])),
        case("rlimit soft above hard", 1, "rlimit RLIMIT_NOFILE: soft limit 100 is above hard limit 10")
            .set("/process/rlimits", json!([{ "type": "RLIMIT_NOFILE", "soft": 100, "hard": 10 }])),
        case("rlimit at u64::MAX", 1, "error setting rlimit type RLIMIT_NOFILE")
            .set("/process/rlimits", json!([{ "type": "RLIMIT_NOFILE", "soft": u64::MAX, "hard": u64::MAX }])),
        case("env entry without '='", 1, r#"invalid environment variable: "FOO""#)
            .set("/process/env", json!([PATH_ENV, "FOO"])),
        case("env entry empty", 1, r#"invalid environment variable: """#)
            .set("/process/env", json!([PATH_ENV, ""])),
        case("env entry with an empty name", 1, r#"environment variable name can't be empty: "=1""#)
            .set("/process/env", json!([PATH_ENV, "=1"])),
        case("env name with a NUL", 1, r#"environment variable name can't contain null(\x00): "A\x00B=1""#)
            .set("/process/env", json!([PATH_ENV, "A\u{0}B=1"])),
        case("env entry a number", 1, "invalid type: integer `1`, expected a string")
            .set("/process/env", json!([1])),
        case("env a string", 1, r#"invalid type: string "A=b", expected a sequence"#)
            .set("/process/env", json!("A=b")),
        case("cwd relative", 1, "Cwd must be an absolute path").set("/process/cwd", json!("tmp")),
        case("cwd empty", 1, "Cwd property must not be empty").set("/process/cwd", json!("")),
        case("cwd a number", 1, "invalid type: integer `1`, expected a string")
            .set("/process/cwd", json!(1)),
        case("cwd a file", 1, r#"chdir to cwd ("/etc/passwd") set in config.json failed: not a directory"#)
            .set("/process/cwd", json!("/etc/passwd")),
        case("cwd missing for a non-root user", 1, r#"chdir to cwd ("/nonexistent/dir") set in config.json failed: no such file or directory"#)
            .set("/process/cwd", json!("/nonexistent/dir"))
            .with(|b| {
                b.user(1000, 1000);
            }),
        case("cwd with a NUL byte", 1, "chdir to cwd (…) set in config.json failed: invalid argument")
            .set("/process/cwd", json!("/tm\u{0}p")),
        case("terminal a string", 1, r#"invalid type: string "yes", expected a boolean"#)
            .set("/process/terminal", json!("yes")),
        case("terminal without a console socket", 1, "cannot allocate tty if corten will detach without setting console socket")
            .set("/process/terminal", json!(true)),
        case("noNewPrivileges a string", 1, r#"invalid type: string "true", expected a boolean"#)
            .set("/process/noNewPrivileges", json!("true")),
        case("consoleSize.height a string", 1, r#"process.consoleSize.height: invalid type: string "x", expected uint16"#)
            .set("/process/consoleSize", json!({ "height": "x" })),
        case("oomScoreAdj a string", 1, r#"process.oomScoreAdj: invalid type: string "x", expected int32"#)
            .set("/process/oomScoreAdj", json!("x")),
        case("oomScoreAdj above 1000", 1, "set oom_score_adj to 5000: invalid argument")
            .set("/process/oomScoreAdj", json!(5000)),
        case("oomScoreAdj below -1000", 1, "set oom_score_adj to -5000: invalid argument")
            .set("/process/oomScoreAdj", json!(-5000)),
        case("capability a number", 1, "invalid type: integer `1`, expected a string")
            .set("/process/capabilities/bounding", json!([1])),
        case("capabilities a string", 1, r#"invalid type: string "CAP_KILL", expected struct Capabilities"#)
            .set("/process/capabilities", json!("CAP_KILL")),
        case("ioPriority class unknown", 1, r#"ioPriority: unknown class "IOPRIO_CLASS_FROB""#)
            .set("/process/ioPriority", json!({ "class": "IOPRIO_CLASS_FROB" })),
        case("scheduler policy unknown", 1, r#"scheduler: unknown policy "SCHED_FROB""#)
            .set("/process/scheduler", json!({ "policy": "SCHED_FROB" })),
        case("execCPUAffinity garbage", 1, r#"invalid CPU/node list "abc""#)
            .set("/process/execCPUAffinity", json!({ "initial": "abc" })),
        // --- mounts ---
        case("mounts an object", 1, "invalid type: map, expected a sequence")
            .set("/mounts", json!({})),
        case("mount entry a string", 1, r#"invalid type: string "/mnt", expected struct Mount"#)
            .push("/mounts", json!("/mnt")),
        case("mount without destination", 1, "missing field `destination`")
            .push("/mounts", json!({ "type": "tmpfs", "source": "tmpfs" })),
        case("mount destination empty", 1, "mount destination is empty")
            .mount("", "tmpfs", "tmpfs"),
        case("mount destination with a NUL byte", 1, "mount destination /mn…t: path contains a NUL byte")
            .mount("/mn\u{0}t", "tmpfs", "tmpfs"),
        case("mount type a number", 1, "invalid type: integer `1`, expected a string")
            .push("/mounts", json!({ "destination": "/mnt", "type": 1 })),
        case("mount source a number", 1, "invalid type: integer `1`, expected a string")
            .push("/mounts", json!({ "destination": "/mnt", "type": "tmpfs", "source": 1 })),
        case("mount options a string", 1, r#"invalid type: string "rw", expected a sequence"#)
            .push("/mounts", json!({ "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": "rw" })),
        case("mount option unknown", 1, r#"mount tmpfs on /mnt (data "frobnicate"): invalid argument"#)
            .with(|b| {
                b.mount("/mnt", "tmpfs", "tmpfs", &["frobnicate"]);
            }),
        case("tmpfs size not a number", 1, r#"mount tmpfs on /mnt (data "size=abc"): invalid argument"#)
            .with(|b| {
                b.mount("/mnt", "tmpfs", "tmpfs", &["size=abc"]);
            }),
        case("mount type unknown", 1, "mount nosuchfs on /mnt (data \"\"): no such device")
            .mount("/mnt", "nosuchfs", "none"),
        case("bind source missing", 1, "mount source /nonexistent-corten-bad-input: no such file or directory")
            .with(|b| {
                b.mount("/mnt", "bind", "/nonexistent-corten-bad-input", &["bind"]);
            }),
        case("relative bind source missing", 1, "mount source …/no-such-source: no such file or directory")
            .with(|b| {
                b.mount("/mnt", "bind", "no-such-source", &["bind"]);
            }),
        case("bind mount inside /proc", 1, "cannot be mounted because it is inside /proc")
            .with(|b| {
                let source = b.path().join("config.json");
                b.mount("/proc/sys/kernel/shmmax", "bind", utf8(&source), &["bind"]);
            }),
        // --- namespaces and id mappings ---
        case("namespace type unknown", 1, r#"namespace {"frobnicate" ""} does not exist"#)
            .push("/linux/namespaces", json!({ "type": "frobnicate" })),
        case("namespace duplicated", 1, r#"malformed spec file: duplicated ns {"pid" ""}"#)
            .push("/linux/namespaces", json!({ "type": "pid" })),
        case("namespace duplicated with a path", 1, r#"duplicated ns {"pid" "/proc/self/ns/pid"}"#)
            .push("/linux/namespaces", json!({ "type": "pid", "path": "/proc/self/ns/pid" })),
        case("namespace type a number", 1, "invalid type: integer `1`, expected a string")
            .push("/linux/namespaces", json!({ "type": 1 })),
        case("namespace without type", 1, "missing field `type`")
            .push("/linux/namespaces", json!({})),
        case("namespace path a number", 1, "invalid type: integer `5`, expected a string")
            .set("/linux/namespaces/0/path", json!(5)),
        case("namespaces a string", 1, r#"invalid type: string "pid", expected a sequence"#)
            .set("/linux/namespaces", json!("pid")),
        case("namespace path missing", 1, "open namespace uts at /nonexistent/ns: no such file or directory")
            .with(|b| {
                b.join_namespace("uts", "/nonexistent/ns");
            }),
        case("namespace path relative", 1, r#"namespace path "ns/uts" is not absolute"#)
            .with(|b| {
                b.join_namespace("uts", "ns/uts");
            }),
        case("namespace path of another kind", 1, "join namespace uts at /proc/self/ns/net: invalid argument")
            .with(|b| {
                b.join_namespace("uts", "/proc/self/ns/net");
            }),
        case("namespace path a regular file", 1, "join namespace uts at …config.json: invalid argument")
            .with(|b| {
                let file = b.path().join("config.json");
                b.join_namespace("uts", utf8(&file));
            }),
        case("pid namespace path a directory", 1, "join namespace pid at /tmp: invalid argument")
            .with(|b| {
                b.join_namespace("pid", "/tmp");
            }),
        case("mount namespace path missing", 1, "open namespace mnt at /nonexistent/mnt: no such file or directory")
            .with(|b| {
                b.join_namespace("mount", "/nonexistent/mnt");
            }),
        case("user namespace path missing", 1, "open namespace user at /nonexistent/userns: no such file or directory")
            .with(|b| {
                b.join_namespace("user", "/nonexistent/userns");
            }),
        case("user namespace without mappings", 1, "User namespaces enabled, but no uid mappings found.")
            .with(|b| {
                b.push_namespace("user").remove("/linux/uidMappings").remove("/linux/gidMappings");
            }),
        case("uidMappings a string", 1, r#"invalid type: string "0:0:1", expected a sequence"#)
            .set("/linux/uidMappings", json!("0:0:1")),
        case("uidMapping containerID a string", 1, r#"linux.uidMappings[0].containerID: invalid type: string "0", expected uint32"#)
            .set("/linux/uidMappings", json!([{ "containerID": "0", "hostID": 0, "size": 1 }])),
        case("time offsets without a time namespace", 1, "time offsets are set but no time namespace is requested")
            .set("/linux/timeOffsets", json!({ "monotonic": { "secs": 1 } })),
        // --- sysctl ---
        case("sysctl of the host (vm)", 1, r#"sysctl "vm.swappiness" is not in a separate kernel namespace"#)
            .with(|b| {
                b.set("/linux/sysctl", json!({ "vm.swappiness": host_sysctl("vm.swappiness") }));
            }),
        case("sysctl of the host (kernel)", 1, r#"sysctl "kernel.panic" is not in a separate kernel namespace"#)
            .with(|b| {
                b.set("/linux/sysctl", json!({ "kernel.panic": host_sysctl("kernel.panic") }));
            }),
        case("sysctl unknown", 1, r#"sysctl "frob.nicate" is not in a separate kernel namespace"#)
            .set("/linux/sysctl", json!({ "frob.nicate": "1" })),
        case("sysctl with a path traversal", 1, r#"sysctl "net/../../kernel/panic" is not in a separate kernel namespace"#)
            .with(|b| {
                b.set("/linux/sysctl", json!({ "net/../../kernel/panic": host_sysctl("kernel.panic") }));
            }),
        case("net sysctl without a network namespace", 1, r#"sysctl "net.ipv4.ip_forward" not allowed in host network namespace"#)
            .no_ns("network")
            .with(|b| {
                b.set("/linux/sysctl", json!({ "net.ipv4.ip_forward": host_sysctl("net.ipv4.ip_forward") }));
            }),
        case("ipc sysctl without an IPC namespace", 1, r#"sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace"#)
            .no_ns("ipc")
            .with(|b| {
                b.set("/linux/sysctl", json!({ "kernel.shmmax": host_sysctl("kernel.shmmax") }));
            }),
        case("kernel.hostname sysctl without a UTS namespace", 1, r#"sysctl "kernel.hostname" is not in a separate kernel namespace"#)
            .no_ns("uts")
            .remove("/hostname")
            .with(|b| {
                b.set("/linux/sysctl", json!({ "kernel.hostname": host_sysctl("kernel.hostname") }));
            }),
        case("sysctl value a number", 1, "invalid type: integer `1`, expected a string")
            .set("/linux/sysctl", json!({ "kernel.shmmax": 1 })),
        case("sysctl a string", 1, r#"invalid type: string "kernel.shmmax=1", expected a map"#)
            .set("/linux/sysctl", json!("kernel.shmmax=1")),
        // --- devices ---
        case("device type unknown", 1, r#"invalid device type "x""#)
            .push("/linux/devices", json!({ "path": "/dev/foo", "type": "x", "major": 1, "minor": 3 })),
        case("device path relative", 1, r#"device path "dev/foo" is not under /dev"#)
            .push("/linux/devices", json!({ "path": "dev/foo", "type": "c", "major": 1, "minor": 3 })),
        case("device path outside /dev", 1, r#"device path "/etc/foo" is not under /dev"#)
            .push("/linux/devices", json!({ "path": "/etc/foo", "type": "c", "major": 1, "minor": 3 })),
        case("device path empty", 1, r#"device path "" is not under /dev"#)
            .push("/linux/devices", json!({ "path": "", "type": "c", "major": 1, "minor": 3 })),
        case("device path escaping with ..", 1, r#"device path "/../../../tmp/escape" is not under /dev"#)
            .push("/linux/devices", json!({ "path": "/../../../tmp/escape", "type": "c", "major": 1, "minor": 3 })),
        case("device major the wildcard -1", 1, "device /dev/foo: cannot mkdev() device with wildcards")
            .push("/linux/devices", json!({ "path": "/dev/foo", "type": "c", "major": -1, "minor": 3 })),
        case("device path climbing out of /dev", 1, r#"device path "/dev/../etc/foo" is not under /dev"#)
            .push("/linux/devices", json!({ "path": "/dev/../etc/foo", "type": "c", "major": 1, "minor": 3 })),
        case("device major a string", 1, r#"linux.devices[0].major: invalid type: string "1", expected int64"#)
            .push("/linux/devices", json!({ "path": "/dev/foo", "type": "c", "major": "1", "minor": 3 })),
        case("device fileMode a string", 1, r#"linux.devices[0].fileMode: invalid type: string "0666", expected uint32"#)
            .push("/linux/devices", json!({ "path": "/dev/foo", "type": "c", "major": 1, "minor": 3, "fileMode": "0666" })),
        case("device without type", 1, "missing field `type`")
            .push("/linux/devices", json!({ "path": "/dev/foo", "major": 1, "minor": 3 })),
        case("device without path", 1, "missing field `path`")
            .push("/linux/devices", json!({ "type": "c", "major": 1, "minor": 3 })),
        case("device rule access unknown", 1, r#"invalid device rule "c *:* rwxq""#)
            .set("/linux/resources/devices", json!([{ "allow": true, "type": "c", "access": "rwxq" }])),
        case("device rule allow a string", 1, r#"linux.resources.devices[0].allow: invalid type: string "yes", expected a boolean"#)
            .set("/linux/resources/devices", json!([{ "allow": "yes" }])),
        case("device rule major a string", 1, r#"linux.resources.devices[0].major: invalid type: string "x", expected int64"#)
            .set("/linux/resources/devices", json!([{ "allow": true, "type": "c", "major": "x" }])),
        // --- seccomp ---
        case("seccomp a string", 1, r#"linux.seccomp: invalid type: string "x", expected struct Seccomp"#)
            .set("/linux/seccomp", json!("x")),
        case("seccomp default action unknown", 1, "string SCMP_ACT_FROB is not a valid action for seccomp")
            .set("/linux/seccomp", seccomp(json!({ "defaultAction": "SCMP_ACT_FROB" }))),
        case("seccomp NOTIFY as the default action", 1, "SCMP_ACT_NOTIFY cannot be used as default action")
            .set("/linux/seccomp", json!({ "defaultAction": "SCMP_ACT_NOTIFY" })),
        case("seccomp architecture unknown", 1, "string SCMP_ARCH_FROB is not a valid arch for seccomp")
            .set("/linux/seccomp", seccomp(json!({ "architectures": ["SCMP_ARCH_FROB"] }))),
        case("seccomp architectures a string", 1, r#"invalid type: string "SCMP_ARCH_X86_64", expected a sequence"#)
            .set("/linux/seccomp", seccomp(json!({ "architectures": "SCMP_ARCH_X86_64" }))),
        case("seccomp syscall action unknown", 1, "string SCMP_ACT_FROB is not a valid action for seccomp")
            .set("/linux/seccomp", seccomp(json!({ "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_FROB" }] }))),
        case("seccomp syscall without action", 1, "string  is not a valid action for seccomp")
            .set("/linux/seccomp", seccomp(json!({ "syscalls": [{ "names": ["getpid"] }] }))),
        case("seccomp operator unknown", 1, "string SCMP_CMP_FROB is not a valid operator for seccomp")
            .set("/linux/seccomp", seccomp(json!({ "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_FROB" }] }] }))),
        case("seccomp argument index 9", 1, "syscall getpid: argument index 9 is out of range")
            .set("/linux/seccomp", seccomp(json!({ "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                "args": [{ "index": 9, "value": 1, "op": "SCMP_CMP_EQ" }] }] }))),
        case("seccomp flag unknown", 1, "seccomp flag SECCOMP_FILTER_FLAG_FROB is not known")
            .set("/linux/seccomp", seccomp(json!({ "flags": ["SECCOMP_FILTER_FLAG_FROB"] }))),
        case("seccomp NOTIFY without listenerPath", 1, "seccomp listenerPath is not set")
            .set("/linux/seccomp", seccomp(json!({ "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_NOTIFY" }] }))),
        case("seccomp listener missing", 1, "failed to connect with seccomp agent specified in the seccomp profile /nonexistent/agent.sock")
            .set("/linux/seccomp", seccomp(json!({ "listenerPath": "/nonexistent/agent.sock",
                "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_NOTIFY" }] }))),
        case("seccomp listener relative", 1, "seccomp profile rel.sock: no such file or directory")
            .set("/linux/seccomp", seccomp(json!({ "listenerPath": "rel.sock",
                "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_NOTIFY" }] }))),
        case("seccomp names a string", 1, r#"invalid type: string "getpid", expected a sequence"#)
            .set("/linux/seccomp", seccomp(json!({ "syscalls": [{ "names": "getpid", "action": "SCMP_ACT_ERRNO" }] }))),
        case("seccomp errnoRet a string", 1, r#"linux.seccomp.syscalls[0].errnoRet: invalid type: string "EPERM", expected uint64"#)
            .set("/linux/seccomp", seccomp(json!({ "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": "EPERM" }] }))),
        case("seccomp defaultErrnoRet a string", 1, r#"linux.seccomp.defaultErrnoRet: invalid type: string "x", expected uint64"#)
            .set("/linux/seccomp", seccomp(json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "x" }))),
        // --- hooks ---
        case("hooks a string", 1, r#"invalid type: string "/bin/true", expected a sequence"#)
            .set("/hooks", json!({ "prestart": "/bin/true" })),
        case("hook path relative", 1, r#"hook path "bin/true" is not absolute"#)
            .set("/hooks", json!({ "prestart": [{ "path": "bin/true" }] })),
        case("hook without path", 1, "missing field `path`")
            .set("/hooks", json!({ "prestart": [{ "args": ["x"] }] })),
        case("hook env a string", 1, r#"invalid type: string "A=b", expected a sequence"#)
            .set("/hooks", json!({ "prestart": [{ "path": "/bin/true", "env": "A=b" }] })),
        case("hook missing", 1, "error running hook #0: fork/exec /nonexistent/hook: no such file or directory")
            .set("/hooks", json!({ "prestart": [{ "path": "/nonexistent/hook" }] })),
        case("hook a directory", 1, "error running hook #0: fork/exec /tmp: permission denied")
            .set("/hooks", json!({ "prestart": [{ "path": "/tmp" }] })),
        case("hook not a program", 1, "error running hook #0: fork/exec …/hook: exec format error")
            .with(|b| {
                let hook = b.write_file("hook", "garbage\n");
                fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod hook");
                b.set("/hooks", json!({ "prestart": [{ "path": hook }] }));
            }),
        case("prestart hook fails", 1, "error running hook #0: error running hook: exit status 1")
            .set("/hooks", json!({ "prestart": [{ "path": "/bin/false" }] })),
        case("createRuntime hook fails", 1, "error running hook #0: error running hook: exit status 1")
            .set("/hooks", json!({ "createRuntime": [{ "path": "/bin/false" }] })),
        case("createContainer hook fails", 1, "error running hook #0: error running hook: exit status 1")
            .set("/hooks", json!({ "createContainer": [{ "path": "/bin/false" }] })),
        case("hook timeout 0", 1, r#"hook "/bin/true": timeout must be positive"#)
            .set("/hooks", json!({ "prestart": [{ "path": "/bin/true", "timeout": 0 }] })),
        case("hook timeout negative", 1, r#"hook "/bin/true": timeout must be positive"#)
            .set("/hooks", json!({ "prestart": [{ "path": "/bin/true", "timeout": -1 }] })),
        case("hook runs past its timeout", 1, "error running hook #0: hook ran past specified timeout of 1.0s")
            .set("/hooks", json!({ "prestart": [{ "path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1 }] })),
        // --- cgroups and resources ---
        case("cgroupsPath a number", 1, "invalid type: integer `5`, expected a string")
            .set("/linux/cgroupsPath", json!(5)),
        case("cgroupsPath with .. inside", 1, "invalid cgroupsPath")
            .with(|b| {
                let path = format!("{}/x/../{}", cgroup_parent(), b.name());
                b.set("/linux/cgroupsPath", json!(path));
            }),
        case("cgroupsPath ending in ..", 1, "invalid cgroupsPath")
            .with(|b| {
                let path = format!("{}/sub/..", b.cgroup_path());
                b.set("/linux/cgroupsPath", json!(path));
            }),
        case("resources a string", 1, r#"linux.resources: invalid type: string "x", expected struct Resources"#)
            .set("/linux/resources", json!("x")),
        case("memory.limit below what the init needs", 1, "init killed by the OOM killer during set-up: the memory limit of 4096 bytes")
            .set("/linux/resources", json!({ "memory": { "limit": 4096 } })),
        case("memory.limit a string", 1, r#"linux.resources.memory.limit: invalid type: string "64m", expected int64"#)
            .set("/linux/resources/memory", json!({ "limit": "64m" })),
        case("memory.limit 2^64", 1, r#"linux.resources.memory.limit: invalid value: integer `18446744073709551615`, expected int64"#)
            .set("/linux/resources/memory", json!({ "limit": 18_446_744_073_709_551_615_u64 })),
        case("memory.limit a float", 1, r#"linux.resources.memory.limit: invalid type: floating point `1.5`, expected int64"#)
            .set("/linux/resources/memory", json!({ "limit": 1.5 })),
        case("memory.reservation a string", 1, r#"linux.resources.memory.reservation: invalid type: string "x", expected int64"#)
            .set("/linux/resources/memory", json!({ "reservation": "x" })),
        case("memory.kernel an array", 1, r#"linux.resources.memory.kernel: invalid type: sequence, expected int64"#)
            .set("/linux/resources/memory", json!({ "kernel": [] })),
        case("cpu.shares a string", 1, r#"linux.resources.cpu.shares: invalid type: string "1024", expected uint64"#)
            .set("/linux/resources/cpu", json!({ "shares": "1024" })),
        case("cpu.shares negative", 1, r#"linux.resources.cpu.shares: invalid value: integer `-1`, expected uint64"#)
            .set("/linux/resources/cpu", json!({ "shares": -1 })),
        case("cpu.quota a string", 1, r#"linux.resources.cpu.quota: invalid type: string "x", expected int64"#)
            .set("/linux/resources/cpu", json!({ "quota": "x" })),
        case("cpu.period negative", 1, r#"linux.resources.cpu.period: invalid value: integer `-1`, expected uint64"#)
            .set("/linux/resources/cpu", json!({ "period": -1 })),
        case("cpu.realtimeRuntime a string", 1, r#"linux.resources.cpu.realtimeRuntime: invalid type: string "x", expected int64"#)
            .set("/linux/resources/cpu", json!({ "realtimeRuntime": "x" })),
        case("cpu.cpus a number", 1, r#"linux.resources.cpu.cpus: invalid type: integer `1`, expected a string"#)
            .set("/linux/resources/cpu", json!({ "cpus": 1 })),
        case("pids a number", 1, r#"linux.resources.pids: invalid type: integer `5`, expected struct Pids"#)
            .set("/linux/resources/pids", json!(5)),
        case("pids.limit a string", 1, r#"linux.resources.pids.limit: invalid type: string "x", expected int64"#)
            .set("/linux/resources/pids", json!({ "limit": "x" })),
        case("pids.limit 1e30", 1, r#"linux.resources.pids.limit: invalid type: floating point `1e+30`, expected int64"#)
            .set("/linux/resources/pids", json!({ "limit": 1e30 })),
        case("blockIO.weight a string", 1, r#"linux.resources.blockIO.weight: invalid type: string "x", expected uint16"#)
            .set("/linux/resources/blockIO", json!({ "weight": "x" })),
        case("blockIO.weightDevice a string", 1, r#"linux.resources.blockIO.weightDevice: invalid type: string "x", expected a sequence"#)
            .set("/linux/resources/blockIO", json!({ "weightDevice": "x" })),
        case("throttle device major a string", 1, r#"linux.resources.blockIO.throttleReadBpsDevice[0].major: invalid type: string "8", expected int64"#)
            .set("/linux/resources/blockIO", json!({ "throttleReadBpsDevice": [{ "major": "8", "minor": 0, "rate": 1 }] })),
        case("hugepageLimits a string", 1, r#"linux.resources.hugepageLimits: invalid type: string "x", expected a sequence"#)
            .set("/linux/resources/hugepageLimits", json!("x")),
        case("network.classID a string", 1, r#"linux.resources.network.classID: invalid type: string "x", expected uint32"#)
            .set("/linux/resources/network", json!({ "classID": "x" })),
        case("network priority name a number", 1, r#"linux.resources.network.priorities[0].name: invalid type: integer `1`, expected a string"#)
            .set("/linux/resources/network", json!({ "priorities": [{ "name": 1, "priority": 1 }] })),
        // --- other linux fields ---
        case("rootfsPropagation unknown", 1, "rootfsPropagation=frob is not supported")
            .set("/linux/rootfsPropagation", json!("frob")),
        case("rootfsPropagation a number", 1, "invalid type: integer `1`, expected a string")
            .set("/linux/rootfsPropagation", json!(1)),
        case("maskedPaths a string", 1, r#"invalid type: string "/proc/kcore", expected a sequence"#)
            .set("/linux/maskedPaths", json!("/proc/kcore")),
        case("personality domain unknown", 1, r#"personality: unknown domain "LINUX32_FROB""#)
            .set("/linux/personality", json!({ "domain": "LINUX32_FROB" })),
        case("intelRdt", 1, "linux.intelRdt is set but Intel RDT (resctrl) is not supported")
            .set("/linux/intelRdt", json!({ "closID": "x", "l3CacheSchema": "L3:0=f" })),
    ];

    // Cases whose answer depends on the host.
    if apparmor_enabled() {
        skip(
            "config_json_cases",
            "AppArmor is enabled: an unknown profile fails differently",
        );
    } else {
        cases.push(
            case(
                "apparmorProfile without AppArmor",
                1,
                "apparmor profile is set but AppArmor is not enabled",
            )
            .set("/process/apparmorProfile", json!("frob-profile")),
        );
    }
    if selinux_enabled() {
        skip(
            "config_json_cases",
            "SELinux is enabled: a label fails differently",
        );
    } else {
        cases.push(
            case(
                "selinuxLabel without SELinux",
                1,
                "selinux label is set but SELinux is not enabled",
            )
            .set(
                "/process/selinuxLabel",
                json!("system_u:system_r:container_t:s0"),
            ),
        );
    }
    if unified_only() {
        skip(
            "config_json_cases",
            "cgroup v2: the cgroup v1 file cases were not run",
        );
    } else {
        cases.extend([
            case(
                "unified on cgroup v1",
                1,
                "invalid configuration: cannot use unified on cgroup v1",
            )
            .set("/linux/resources/unified", json!({ "memory.max": "1" })),
            case(
                "memory.swappiness 200",
                1,
                "invalid memory.swappiness 200: must be 0..100",
            )
            .set("/linux/resources/memory", json!({ "swappiness": 200 })),
            case(
                "memory.limit -2",
                1,
                r#"write "-2" to …memory.limit_in_bytes: invalid argument"#,
            )
            .set("/linux/resources/memory", json!({ "limit": -2 })),
            case(
                "cpu.period 1",
                1,
                r#"write "1" to …cpu.cfs_period_us: invalid argument"#,
            )
            .set(
                "/linux/resources/cpu",
                json!({ "quota": 1000, "period": 1 }),
            ),
            case(
                "cpu.cpus garbage",
                1,
                r#"write "abc" to …cpuset.cpus: invalid argument"#,
            )
            .set("/linux/resources/cpu", json!({ "cpus": "abc" })),
            case(
                "cpu.mems of a missing node",
                1,
                r#"write "4095" to …cpuset.mems: numerical result out of range"#,
            )
            .set("/linux/resources/cpu", json!({ "mems": "4095" })),
        ]);
        if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
            cases.push(
                case(
                    "memory.swap below memory.limit",
                    1,
                    r#"write "50000000" to …memory.memsw.limit_in_bytes: invalid argument"#,
                )
                .set(
                    "/linux/resources/memory",
                    json!({ "limit": 100_000_000, "swap": 50_000_000 }),
                ),
            );
        }
        for controller in ["hugetlb", "rdma"] {
            if Path::new("/sys/fs/cgroup").join(controller).exists() {
                continue;
            }
            let (name, resources) = if controller == "hugetlb" {
                (
                    "hugetlb limit without the controller",
                    json!({ "hugepageLimits": [{ "pageSize": "2MB", "limit": 1 }] }),
                )
            } else {
                (
                    "rdma limit without the controller",
                    json!({ "rdma": { "mlx": { "hcaHandles": 1 } } }),
                )
            };
            let msg = if controller == "hugetlb" {
                "cgroup controller hugetlb is not available on this host"
            } else {
                "cgroup controller rdma is not available on this host"
            };
            cases.push(case(name, 1, msg).set("/linux/resources", resources));
        }
    }
    run_table("bad-config", &cases);
}

#[test]
fn cli_misuse_cases() {
    require_root!();
    use Pre::{Created, Paused, Running, Stopped};
    let cases = vec![
        // --- usage ---
        case("unknown command", 3, "No help topic for 'frobnicate'").args(&["frobnicate"]),
        case("help on an unknown command", 3, "No help topic for 'frob'").args(&["help", "frob"]),
        case("unknown flag", 1, "flag provided but not defined: -frobnicate")
            .args(&["create", "--frobnicate", "--bundle", "{bundle}", "{id}"]),
        case("unknown global flag", 1, "flag provided but not defined: -frobnicate")
            .args(&["--frobnicate", "list"]),
        case("id that looks like a flag", 1, "flag provided but not defined: -x")
            .args(&["create", "--bundle", "{bundle}", "-x"]),
        case("create without an id", 1, r#""create" requires exactly 1 argument(s)"#)
            .args(&["create", "--bundle", "{bundle}"]),
        case("run without an id", 1, r#""run" requires exactly 1 argument(s)"#)
            .args(&["run", "--bundle", "{bundle}"]),
        case("start without an id", 1, r#""start" requires exactly 1 argument(s)"#).args(&["start"]),
        case("kill without an id", 1, r#""kill" requires a minimum of 1 argument(s)"#).args(&["kill"]),
        case("delete without an id", 1, r#""delete" requires exactly 1 argument(s)"#).args(&["delete"]),
        case("state without an id", 1, r#""state" requires exactly 1 argument(s)"#).args(&["state"]),
        case("exec without an id", 1, r#""exec" requires a minimum of 1 argument(s)"#).args(&["exec"]),
        case("pause without an id", 1, r#""pause" requires exactly 1 argument(s)"#).args(&["pause"]),
        case("resume without an id", 1, r#""resume" requires exactly 1 argument(s)"#).args(&["resume"]),
        case("ps without an id", 1, r#""ps" requires a minimum of 1 argument(s)"#).args(&["ps"]),
        case("events without an id", 1, r#""events" requires exactly 1 argument(s)"#).args(&["events"]),
        case("update without an id", 1, r#""update" requires exactly 1 argument(s)"#).args(&["update"]),
        case("state with two ids", 1, r#""state" requires exactly 1 argument(s)"#)
            .args(&["state", "a", "b"]),
        case("list with an argument", 1, r#""list" requires exactly 0 argument(s)"#)
            .args(&["list", "extra"]),
        case("spec with an argument", 1, r#""spec" requires exactly 0 argument(s)"#)
            .args(&["spec", "extra"]),
        case("features with an argument", 1, r#""features" requires exactly 0 argument(s)"#)
            .args(&["features", "extra"]),
        case("kill with three arguments", 1, r#""kill" requires a maximum of 2 argument(s)"#)
            .args(&["kill", PRE, "TERM", "extra"])
            .pre(Created),
        case("--log-format unknown", 1, "invalid log-format: xml").args(&["--log-format", "xml", "list"]),
        case("--log in a missing directory", 1, "open …/no-such-dir/log: no such file or directory")
            .args(&["--log", "{scratch}/no-such-dir/log", "list"]),
        case("list --format unknown", 1, "invalid format option").args(&["list", "--format", "xml"]),
        case("--preserve-fds not a number", 1, "invalid value 'abc' for '--preserve-fds")
            .args(&["create", "--preserve-fds", "abc", "--bundle", "{bundle}", "{id}"]),
        // --- a container that does not exist ---
        case("start of a missing container", 1, "container does not exist").args(&["start", "nosuchctr"]),
        case("kill of a missing container", 1, "container does not exist").args(&["kill", "nosuchctr"]),
        case("delete of a missing container", 1, "container does not exist").args(&["delete", "nosuchctr"]),
        case("state of a missing container", 1, "container does not exist").args(&["state", "nosuchctr"]),
        case("pause of a missing container", 1, "container does not exist").args(&["pause", "nosuchctr"]),
        case("resume of a missing container", 1, "container does not exist").args(&["resume", "nosuchctr"]),
        case("ps of a missing container", 1, "container does not exist").args(&["ps", "nosuchctr"]),
        case("events of a missing container", 1, "container does not exist").args(&["events", "nosuchctr"]),
        case("update of a missing container", 1, "container does not exist")
            .args(&["update", "--pids-limit", "10", "nosuchctr"]),
        case("checkpoint of a missing container", 1, "container does not exist")
            .args(&["checkpoint", "nosuchctr"]),
        case("exec in a missing container", 255, "exec failed: container does not exist")
            .args(&["exec", "nosuchctr", "true"]),
        // --- invalid ids ---
        case("id ../x", 1, r#"invalid container ID format: "../x""#)
            .args(&["create", "--bundle", "{bundle}", "../x"]),
        case("id a/b", 1, r#"invalid container ID format: "a/b""#)
            .args(&["create", "--bundle", "{bundle}", "a/b"]),
        case("id .", 1, r#"invalid container ID format: ".""#)
            .args(&["create", "--bundle", "{bundle}", "."]),
        case("id ..", 1, r#"invalid container ID format: "..""#)
            .args(&["create", "--bundle", "{bundle}", ".."]),
        case("id empty", 1, r#"invalid container ID format: """#)
            .args(&["create", "--bundle", "{bundle}", ""]),
        case("id of 2000 characters", 1, "invalid container ID format")
            .args(&["create", "--bundle", "{bundle}", "{long-id}"]),
        case("id with a space", 1, r#"invalid container ID format: "a b""#)
            .args(&["create", "--bundle", "{bundle}", "a b"]),
        case("id with a newline", 1, "invalid container ID format")
            .args(&["create", "--bundle", "{bundle}", "a\nb"]),
        case("state of id ../x", 1, r#"invalid container ID format: "../x""#).args(&["state", "../x"]),
        case("kill of id a/b", 1, r#"invalid container ID format: "a/b""#).args(&["kill", "a/b"]),
        case("delete --force of id ../../etc", 1, r#"invalid container ID format: "../../etc""#)
            .args(&["delete", "--force", "../../etc"]),
        case("exec in id ../x", 255, r#"exec failed: invalid container ID format: "../x""#)
            .args(&["exec", "../x", "true"]),
        // --- bundle, config and paths ---
        case("--bundle missing", 1, "bundle …/no-such-bundle: no such file or directory")
            .args(&["create", "--bundle", "{scratch}/no-such-bundle", "{id}"]),
        case("--bundle a file", 1, "config.json/config.json: not a directory")
            .args(&["create", "--bundle", "{bundle}/config.json", "{id}"]),
        case("config.json missing", 1, "open …/config.json: no such file or directory")
            .with(|b| {
                b.write_raw_config("");
                fs::remove_file(b.path().join("config.json")).expect("remove config.json");
            }),
        case("config.json a directory", 1, "config.json: is a directory").with(|b| {
            b.write_raw_config("");
            let path = b.path().join("config.json");
            fs::remove_file(&path).expect("remove config.json");
            fs::create_dir(&path).expect("mkdir config.json");
        }),
        case("config.json a dangling symlink", 1, "config.json: no such file or directory").with(|b| {
            b.write_raw_config("");
            let path = b.path().join("config.json");
            fs::remove_file(&path).expect("remove config.json");
            symlink("/nonexistent/config.json", &path).expect("symlink config.json");
        }),
        case("--pid-file in a missing directory", 1, "no-such-dir/.pid: no such file or directory")
            .args(&["create", "--bundle", "{bundle}", "--pid-file", "{scratch}/no-such-dir/pid", "{id}"]),
        case("--console-socket missing", 1, "connect to console socket …/no-such.sock: no such file or directory")
            .set("/process/terminal", json!(true))
            .args(&["create", "--bundle", "{bundle}", "--console-socket", "{scratch}/no-such.sock", "{id}"]),
        case("--console-socket a regular file", 1, "connect to console socket …config.json: connection refused")
            .set("/process/terminal", json!(true))
            .args(&["create", "--bundle", "{bundle}", "--console-socket", "{bundle}/config.json", "{id}"]),
        case("--console-socket without a terminal", 1, "cannot use console socket if corten will not detach or allocate tty")
            .args(&["create", "--bundle", "{bundle}", "--console-socket", "{scratch}/no-such.sock", "{id}"]),
        case("run --detach with a terminal and no console socket", 1, "cannot allocate tty if corten will detach without setting console socket")
            .set("/process/terminal", json!(true))
            .args(&["run", "--detach", "--bundle", "{bundle}", "{id}"]),
        case("run of a malformed config", 1, "run failed: parse …config.json: EOF while parsing")
            .raw("{")
            .args(&["run", "--bundle", "{bundle}", "{id}"]),
        case("--root a file (create)", 1, "mkdir …config.json: file exists")
            .args(&["--root", "{bundle}/config.json", "create", "--bundle", "{bundle}", "{id}"]),
        case("--root a file (state)", 1, "config.json/x/state.json: not a directory")
            .args(&["--root", "{bundle}/config.json", "state", "x"]),
        case("--root a file (list)", 1, "mkdir …config.json: not a directory")
            .args(&["--root", "{bundle}/config.json", "list"]),
        case("--root below a file", 1, "mkdir …config.json/sub: not a directory")
            .args(&["--root", "{bundle}/config.json/sub", "create", "--bundle", "{bundle}", "{id}"]),
        case("--root a dangling symlink", 1, "mkdir …/dangling: file exists")
            .with(|b| {
                symlink("/nonexistent/root", b.path().join("dangling")).expect("symlink");
            })
            .args(&["--root", "{bundle}/dangling", "create", "--bundle", "{bundle}", "{id}"]),
        case("--root in /proc", 1, "mkdir /proc/corten-bad-input: no such file or directory")
            .args(&["--root", "/proc/corten-bad-input", "create", "--bundle", "{bundle}", "{id}"]),
        case("spec over an existing config.json", 1, "File config.json exists. Remove it first")
            .args(&["spec", "--bundle", "{bundle}"]),
        case("spec into a missing directory", 1, "chdir …/no-such-dir: no such file or directory")
            .args(&["spec", "--bundle", "{scratch}/no-such-dir"]),
        // --- an existing container ---
        case("create of an existing id", 1, "container with given ID already exists")
            .args(&["create", "--bundle", "{bundle}", PRE])
            .pre(Created),
        case("kill with an unknown signal name", 1, r#"unknown signal "FROBNICATE""#)
            .args(&["kill", PRE, "FROBNICATE"])
            .pre(Created),
        case("kill with an unknown SIG name", 1, r#"unknown signal "SIGFROB""#)
            .args(&["kill", PRE, "SIGFROB"])
            .pre(Created),
        case("kill --all with an unknown signal", 1, r#"unknown signal "FROB""#)
            .args(&["kill", "--all", PRE, "FROB"])
            .pre(Created),
        case("kill with signal 99999", 1, "unable to signal init: invalid argument")
            .args(&["kill", PRE, "99999"])
            .pre(Created),
        case("kill with signal 65", 1, "unable to signal init: invalid argument")
            .args(&["kill", PRE, "65"])
            .pre(Created),
        case("kill with signal -1", 1, "unable to signal init: invalid argument")
            .args(&["kill", PRE, "-1"])
            .pre(Created),
        case("kill of a stopped container", 1, "container not running")
            .args(&["kill", PRE, "KILL"])
            .pre(Stopped),
        case("start of a running container", 1, "cannot start an already running container")
            .args(&["start", PRE])
            .pre(Running),
        case("start of a stopped container", 1, "cannot start a container that has stopped")
            .args(&["start", PRE])
            .pre(Stopped),
        case("start of a paused container", 1, "cannot start a container in the paused state")
            .args(&["start", PRE])
            .pre(Paused),
        case("delete of a running container", 1, "cannot delete container pre that is not stopped: running")
            .args(&["delete", PRE])
            .pre(Running),
        case("delete of a paused container", 1, "cannot delete container pre that is not stopped: paused")
            .args(&["delete", PRE])
            .pre(Paused),
        case("pause of a stopped container", 1, "container not running")
            .args(&["pause", PRE])
            .pre(Stopped),
        case("pause of a paused container", 1, "container not running")
            .args(&["pause", PRE])
            .pre(Paused),
        case("resume of a running container", 1, "container not paused")
            .args(&["resume", PRE])
            .pre(Running),
        case("resume of a stopped container", 1, "container not paused")
            .args(&["resume", PRE])
            .pre(Stopped),
        case("events of a stopped container", 1, "container with id pre is not running")
            .args(&["events", "--stats", PRE])
            .pre(Stopped),
        case("events --interval not a duration", 1, r#"invalid value "abc" for flag -interval"#)
            .args(&["events", "--interval", "abc", PRE])
            .pre(Running),
        case("ps --format unknown", 1, "invalid format option")
            .args(&["ps", "--format", "xml", PRE])
            .pre(Running),
        // --- exec ---
        case("exec without a command", 255, "exec failed: process args cannot be empty")
            .args(&["exec", PRE])
            .pre(Running),
        case("exec --cwd relative", 255, "exec failed: Cwd must be an absolute path")
            .args(&["exec", "--cwd", "rel", PRE, "true"])
            .pre(Running),
        case("exec --cwd missing", 255, r#"chdir to cwd ("/nonexistent") set in config.json failed: no such file or directory"#)
            .args(&["exec", "--cwd", "/nonexistent", PRE, "true"])
            .pre(Running),
        case("exec of a missing binary", 255, "stat /nonexistent: no such file or directory")
            .args(&["exec", PRE, "/nonexistent"])
            .pre(Running),
        case("exec --env without '='", 255, r#"exec failed: invalid environment variable: "FOO""#)
            .args(&["exec", "--env", "FOO", PRE, "true"])
            .pre(Running),
        case("exec --user -1", 255, "uids and gids must be in range 0-2147483647")
            .args(&["exec", "--user", "-1", PRE, "true"])
            .pre(Running),
        case("exec --user with a group name", 255, "parsing def as int for gid failed")
            .args(&["exec", "--user", "abc:def", PRE, "true"])
            .pre(Running),
        case("exec --user with a user name", 255, "parsing nosuchuser as int for uid failed")
            .args(&["exec", "--user", "nosuchuser", PRE, "true"])
            .pre(Running),
        case("exec --process missing", 255, "open …/no-such.json: no such file or directory")
            .args(&["exec", "--process", "{scratch}/no-such.json", PRE])
            .pre(Running),
        case("exec --process not JSON", 255, "exec failed: expected value at line 1 column 1")
            .with(|b| {
                b.write_file("process.json", "garbage\n");
            })
            .args(&["exec", "--process", "{bundle}/process.json", PRE])
            .pre(Running),
        case("exec --process {}", 255, "exec failed: Cwd property must not be empty")
            .with(|b| {
                b.write_file("process.json", "{}");
            })
            .args(&["exec", "--process", "{bundle}/process.json", PRE])
            .pre(Running),
        case("exec --process with empty args", 255, "exec failed: args must not be empty")
            .with(|b| {
                b.write_file("process.json", r#"{"cwd": "/", "args": []}"#);
            })
            .args(&["exec", "--process", "{bundle}/process.json", PRE])
            .pre(Running),
        case("exec --pid-file in a missing directory", 255, "no-such-dir/.pid: no such file or directory")
            .args(&["exec", "--pid-file", "{scratch}/no-such-dir/pid", PRE, "true"])
            .pre(Running),
        case("exec --tty with a missing console socket", 255, "connect to console socket …/no-such.sock: no such file or directory")
            .args(&["exec", "--tty", "--console-socket", "{scratch}/no-such.sock", PRE, "true"])
            .pre(Running),
        case("exec --detach --tty without a console socket", 255, "cannot allocate tty if corten will detach without setting console socket")
            .args(&["exec", "--detach", "--tty", PRE, "true"])
            .pre(Running),
        case("exec in a stopped container", 255, "exec failed: cannot exec in a stopped container")
            .args(&["exec", PRE, "true"])
            .pre(Stopped),
        case("exec in a paused container", 255, "exec failed: cannot exec in a paused container")
            .args(&["exec", PRE, "true"])
            .pre(Paused),
        // --- update ---
        case("update --memory not a size", 1, "invalid value for memory: invalid size: 'abc'")
            .args(&["update", "--memory", "abc", PRE])
            .pre(Created),
        case("update --memory negative", 1, "invalid value for memory: invalid size: '-5'")
            .args(&["update", "--memory", "-5", PRE])
            .pre(Created),
        case("update --cpu-quota not a number", 1, "invalid value for cpu-quota")
            .args(&["update", "--cpu-quota", "x", PRE])
            .pre(Created),
        case("update --pids-limit not a number", 1, "invalid value 'x' for '--pids-limit")
            .args(&["update", "--pids-limit", "x", PRE])
            .pre(Created),
        case("update with an unknown flag", 1, "flag provided but not defined: -cpu-shares")
            .args(&["update", "--cpu-shares", "5", PRE])
            .pre(Created),
        case("update --blkio-weight above u16", 1, r#"linux.resources.blockIO.weight: invalid value: integer `99999`, expected uint16"#)
            .args(&["update", "--blkio-weight", "99999", PRE])
            .pre(Created),
        case("update --resources missing", 1, "open …/no-such.json: no such file or directory")
            .args(&["update", "--resources", "{scratch}/no-such.json", PRE])
            .pre(Created),
        case("update --resources not JSON", 1, "decode resources: expected value at line 1 column 1")
            .with(|b| {
                b.write_file("resources.json", "garbage\n");
            })
            .args(&["update", "--resources", "{bundle}/resources.json", PRE])
            .pre(Created),
        case("update --resources - with nothing on stdin", 1, "decode resources: EOF while parsing")
            .args(&["update", "--resources", "-", PRE])
            .pre(Created),
        case("update --resources wrongly typed", 1, r#"decode resources: linux.resources.memory.limit: invalid type: string "x", expected int64"#)
            .with(|b| {
                b.write_file("resources.json", r#"{"memory": {"limit": "x"}}"#);
            })
            .args(&["update", "--resources", "{bundle}/resources.json", PRE])
            .pre(Created),
        case("update --resources an array", 1, "decode resources: not a JSON object")
            .with(|b| {
                b.write_file("resources.json", "[]");
            })
            .args(&["update", "--resources", "{bundle}/resources.json", PRE])
            .pre(Created),
        case("update of a stopped container", 1, "container not running")
            .args(&["update", "--pids-limit", "10", PRE])
            .pre(Stopped),
    ];
    run_table("bad-cli", &cases);
}

/// Replaces `<rootfs>/<rel>` (whatever it is) by what `make` creates there.
fn replace_in_rootfs(b: &Bundle, rel: &str, make: impl FnOnce(&Path)) {
    let path = b.rootfs().join(rel);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path).expect("remove dir"),
        Ok(_) => fs::remove_file(&path).expect("remove file"),
        Err(_) => {}
    }
    make(&path);
}

fn make_symlink(target: &'static str) -> impl FnOnce(&Path) {
    move |path| symlink(target, path).expect("symlink")
}

fn make_file(path: &Path) {
    fs::write(path, "x\n").expect("write file");
}

fn make_fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
}

/// Moves the rootfs to `<bundle>/real` and leaves `make` to create what
/// stands at `<bundle>/rootfs` instead.
fn replace_rootfs(b: &Bundle, make: impl FnOnce(&Bundle, &Path)) {
    let rootfs = b.rootfs();
    fs::rename(&rootfs, b.path().join("real")).expect("move the rootfs");
    make(b, &rootfs);
}

#[test]
fn hostile_rootfs_cases() {
    require_root!();
    let cases = vec![
        // --- the rootfs itself ---
        case("rootfs a relative symlink", 1, "invalid rootfs: not an absolute path, or a symlink")
            .with(|b| replace_rootfs(b, |_, p| symlink("real", p).expect("symlink"))),
        case("rootfs an absolute symlink", 1, "invalid rootfs: not an absolute path, or a symlink")
            .with(|b| replace_rootfs(b, |b, p| symlink(b.path().join("real"), p).expect("symlink"))),
        case("rootfs a dangling symlink", 1, "invalid rootfs: stat …/rootfs: no such file or directory")
            .with(|b| replace_rootfs(b, |_, p| symlink("/nonexistent-rootfs", p).expect("symlink"))),
        case("rootfs a symlink loop", 1, "invalid rootfs: stat …/rootfs: too many levels of symbolic links")
            .with(|b| replace_rootfs(b, |_, p| symlink("rootfs", p).expect("symlink"))),
        case("rootfs a symlink to a file", 1, "invalid rootfs: not an absolute path, or a symlink")
            .with(|b| replace_rootfs(b, |b, p| symlink(b.path().join("config.json"), p).expect("symlink"))),
        case("rootfs a regular file", 1, "invalid rootfs: stat …/rootfs: not a directory")
            .with(|b| replace_rootfs(b, |_, p| make_file(p))),
        case("rootfs a FIFO", 1, "invalid rootfs: stat …/rootfs: not a directory")
            .with(|b| replace_rootfs(b, |_, p| make_fifo(p))),
        // --- /proc, /sys, /dev ---
        case("/proc a symlink to /etc", 1, r#"error mounting "proc" to rootfs at "/proc": filesystem "proc" must be mounted on ordinary directory"#)
            .with(|b| replace_in_rootfs(b, "proc", make_symlink("/etc"))),
        case("/proc a symlink out of the rootfs", 1, r#"filesystem "proc" must be mounted on ordinary directory"#)
            .with(|b| replace_in_rootfs(b, "proc", make_symlink("/../../../../tmp"))),
        case("/proc a symlink loop", 1, r#"filesystem "proc" must be mounted on ordinary directory"#)
            .with(|b| replace_in_rootfs(b, "proc", make_symlink("proc"))),
        case("/proc a dangling symlink", 1, r#"filesystem "proc" must be mounted on ordinary directory"#)
            .with(|b| replace_in_rootfs(b, "proc", make_symlink("/nonexistent"))),
        case("/proc a regular file", 1, "mount destination /proc is not a directory")
            .with(|b| replace_in_rootfs(b, "proc", make_file)),
        case("/proc a FIFO", 1, "mount destination /proc is not a directory")
            .with(|b| replace_in_rootfs(b, "proc", make_fifo)),
        case("/sys a symlink", 1, r#"error mounting "sysfs" to rootfs at "/sys": filesystem "sysfs" must be mounted on ordinary directory"#)
            .with(|b| replace_in_rootfs(b, "sys", make_symlink("/etc"))),
        case("/sys a regular file", 1, "mount destination /sys is not a directory")
            .with(|b| replace_in_rootfs(b, "sys", make_file)),
        case("/dev a regular file", 1, "mount destination /dev: not a directory")
            .with(|b| replace_in_rootfs(b, "dev", make_file)),
        // The link is followed inside the rootfs (its target made there, as
        // runc does for a dangling link), so /dev is no longer a plain
        // directory and masking refuses the /dev/null it finds.
        case("/dev a dangling symlink out of the rootfs", 1, "/dev/null in the container is not the null device (char 1:3); refusing to use it to mask paths")
            .with(|b| replace_in_rootfs(b, "dev", make_symlink("/../../../../tmp/corten-bad-input-dev"))),
        // runc 1.1.5 predates the fix for CVE-2025-31133 and accepts this.
        case("/dev a symlink, so /dev/null is no device for masking", 1, "/dev/null in the container is not the null device (char 1:3); refusing to use it to mask paths")
            .with(|b| replace_in_rootfs(b, "dev", make_symlink("/etc"))),
        // --- mount destinations ---
        case("mount through a symlink into /proc", 1, "cannot be mounted because it is inside /proc")
            .with(|b| {
                symlink("/proc/sys/kernel", b.rootfs().join("evil")).expect("symlink");
                let source = b.path().join("config.json");
                b.mount("/evil/shmmax", "bind", utf8(&source), &["bind"]);
            }),
        case("mount at a dangling symlink to a missing file of /proc", 1, "cannot be mounted because it is inside /proc")
            .with(|b| {
                symlink("../proc/sys/kernel/no-such-file", b.rootfs().join("dangling")).expect("symlink");
                let source = b.path().join("config.json");
                b.mount("/dangling", "bind", utf8(&source), &["bind"]);
            }),
        case("mount below a regular file", 1, "mount destination /etc/passwd/x: not a directory")
            .mount("/etc/passwd/x", "tmpfs", "tmpfs"),
        case("mount below a regular file of the image", 1, "mount destination /tmp/x: not a directory")
            .with(|b| replace_in_rootfs(b, "tmp", make_file))
            .mount("/tmp/x", "tmpfs", "tmpfs"),
        case("tmpfs on a regular file", 1, "mount destination /etc/passwd: not a directory")
            .mount("/etc/passwd", "tmpfs", "tmpfs"),
        case("bind of a directory on a file", 1, "mount destination /etc/passwd: not a directory")
            .with(|b| {
                let source = b.path().to_owned();
                b.mount("/etc/passwd", "bind", utf8(&source), &["bind"]);
            }),
        case("bind of a file on a directory", 1, "bind mount /tmp: not a directory")
            .with(|b| {
                let source = b.path().join("config.json");
                b.mount("/tmp", "bind", utf8(&source), &["bind"]);
            }),
        case("mount through a symlink loop", 1, "mount destination /loop/x: too many levels of symbolic links")
            .with(|b| symlink("loop", b.rootfs().join("loop")).expect("symlink"))
            .mount("/loop/x", "tmpfs", "tmpfs"),
        case("mount on a FIFO", 1, "mount destination /mnt/fifo: not a directory")
            .with(|b| make_fifo(&b.rootfs().join("mnt/fifo")))
            .mount("/mnt/fifo", "tmpfs", "tmpfs"),
        // --- the process ---
        case("binary a dangling symlink", 1, r#"exec: "/bin/dangling": stat /bin/dangling: no such file or directory"#)
            .with(|b| symlink("/nonexistent", b.rootfs().join("bin/dangling")).expect("symlink"))
            .set("/process/args", json!(["/bin/dangling"])),
        case("binary a symlink loop", 1, r#"exec: "/bin/loop": stat /bin/loop: too many levels of symbolic links"#)
            .with(|b| symlink("loop", b.rootfs().join("bin/loop")).expect("symlink"))
            .set("/process/args", json!(["/bin/loop"])),
        case("no sh in an empty /bin", 1, r#"exec: "sh": executable file not found in $PATH"#)
            .with(|b| replace_in_rootfs(b, "bin", |p| fs::create_dir(p).expect("mkdir")))
            .set("/process/args", json!(["sh"])),
        case("cwd a symlink loop", 1, r#"chdir to cwd ("/cwdloop") set in config.json failed: too many levels of symbolic links"#)
            .with(|b| symlink("cwdloop", b.rootfs().join("cwdloop")).expect("symlink"))
            .set("/process/cwd", json!("/cwdloop")),
        case("cwd a dangling symlink", 1, r#"chdir to cwd ("/dangling") set in config.json failed: no such file or directory"#)
            .with(|b| symlink("/nonexistent/x", b.rootfs().join("dangling")).expect("symlink"))
            .set("/process/cwd", json!("/dangling")),
        case("cwd a FIFO", 1, r#"chdir to cwd ("/fifo") set in config.json failed: not a directory"#)
            .with(|b| make_fifo(&b.rootfs().join("fifo")))
            .set("/process/cwd", json!("/fifo")),
        case("passwd garbage", 1, "unable to find user user: no matching entries in passwd file")
            .with(|b| {
                fs::write(b.rootfs().join("etc/passwd"), "garbage-without-colons\n").expect("write passwd");
            })
            .set("/process/user/username", json!("user")),
        case("passwd missing", 1, "unable to find user user: no matching entries in passwd file")
            .with(|b| fs::remove_file(b.rootfs().join("etc/passwd")).expect("remove passwd"))
            .set("/process/user/username", json!("user")),
        case("passwd a symlink out of the rootfs", 1, "unable to find user user: no matching entries in passwd file")
            .with(|b| replace_in_rootfs(b, "etc/passwd", make_symlink("/../../../../../etc/passwd")))
            .set("/process/user/username", json!("user")),
        case("/etc a symlink loop", 1, "unable to find user user: no matching entries in passwd file")
            .with(|b| replace_in_rootfs(b, "etc", make_symlink("/etc")))
            .set("/process/user/username", json!("user")),
    ];
    run_table("bad-rootfs", &cases);
}

/// Writes `text` as the `state.json` of [`PRE`].
fn write_state(text: &'static str) -> impl Fn(&Runtime) {
    move |rt| fs::write(rt.root().join(PRE).join("state.json"), text).expect("damage state.json")
}

/// A read-only tmpfs at `<scratch>/ro`.
fn mount_read_only(rt: &Runtime) {
    let dir = rt.scratch().join("ro");
    fs::create_dir_all(&dir).expect("mkdir ro");
    nix::mount::mount(
        Some("tmpfs"),
        &dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_RDONLY
            | nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV,
        Some("size=64k"),
    )
    .expect("mount a read-only tmpfs");
}

fn unmount_read_only(rt: &Runtime) {
    let _ = nix::mount::umount2(&rt.scratch().join("ro"), nix::mount::MntFlags::MNT_DETACH);
}

/// An entry `ghost` under `--root` that no container stands behind; `make`
/// creates it at the given path.
fn ghost(make: impl Fn(&Path) + 'static) -> impl Fn(&Runtime) {
    move |rt| make(&rt.root().join("ghost"))
}

fn ghost_dir_with_state(text: &'static str) -> impl Fn(&Path) {
    move |dir| {
        fs::create_dir(dir).expect("mkdir ghost");
        fs::write(dir.join("state.json"), text).expect("write ghost state");
    }
}

fn remove_ghost(rt: &Runtime) {
    let path = rt.root().join("ghost");
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path).expect("remove ghost"),
        Ok(_) => fs::remove_file(&path).expect("remove ghost"),
        Err(_) => {}
    }
}

#[test]
fn damaged_state_cases() {
    require_root!();
    // Every command that reads the record, on every kind of damage.
    let verbs: &[(&str, &[&'static str], i32)] = &[
        ("state", &["state", PRE], 1),
        ("start", &["start", PRE], 1),
        ("kill", &["kill", PRE, "KILL"], 1),
        ("delete", &["delete", PRE], 1),
        ("pause", &["pause", PRE], 1),
        ("resume", &["resume", PRE], 1),
        ("ps", &["ps", PRE], 1),
        ("events", &["events", "--stats", PRE], 1),
        ("update", &["update", "--pids-limit", "10", PRE], 1),
        ("exec", &["exec", PRE, "true"], 255),
    ];
    type Damage = (&'static str, fn() -> RuntimeStep, &'static str);
    let damages: &[Damage] = &[
        (
            "state.json empty",
            || Box::new(write_state("")),
            "pre/state.json: EOF while parsing a value at line 1 column 0",
        ),
        (
            "state.json truncated",
            || Box::new(write_state(r#"{"id":"#)),
            "pre/state.json: EOF while parsing a value",
        ),
        (
            "state.json not JSON",
            || Box::new(write_state("not json at all")),
            "pre/state.json: expected",
        ),
        (
            "state.json wrongly typed",
            || Box::new(write_state(r#"{"id": 5, "init_process_pid": "x"}"#)),
            "pre/state.json: invalid type: integer `5`, expected a string",
        ),
        (
            "state.json a directory",
            || {
                Box::new(|rt: &Runtime| {
                    let path = rt.root().join(PRE).join("state.json");
                    fs::remove_file(&path).expect("remove state.json");
                    fs::create_dir(&path).expect("mkdir state.json");
                })
            },
            "pre/state.json: is a directory",
        ),
        (
            "state.json deleted",
            || {
                Box::new(|rt: &Runtime| {
                    fs::remove_file(rt.root().join(PRE).join("state.json"))
                        .expect("remove state.json");
                })
            },
            "container does not exist",
        ),
    ];
    let mut cases = Vec::new();
    for (damage, make, msg) in damages {
        for (verb, args, code) in verbs {
            let step = make();
            cases.push(
                case(format!("{verb} with {damage}"), *code, msg)
                    .args(args)
                    .pre(Pre::Created)
                    .damage(move |rt| step(rt)),
            );
        }
    }
    cases.extend([
        case(
            "start with exec.fifo removed",
            1,
            "cannot start an already running container",
        )
        .args(&["start", PRE])
        .pre(Pre::Created)
        .damage(|rt| {
            fs::remove_file(rt.root().join(PRE).join("exec.fifo")).expect("remove exec.fifo")
        }),
        // Entries under --root that no container stands behind.
        case(
            "state of an entry that is a file",
            1,
            "ghost/state.json: not a directory",
        )
        .args(&["state", "ghost"])
        .damage(ghost(make_file))
        .cleanup(remove_ghost),
        case(
            "delete --force of an entry that is a file",
            1,
            "no usable copy either",
        )
        .args(&["delete", "--force", "ghost"])
        .damage(ghost(make_file))
        .cleanup(remove_ghost),
        case("state of an empty entry", 1, "container does not exist")
            .args(&["state", "ghost"])
            .damage(ghost(|p| fs::create_dir(p).expect("mkdir ghost")))
            .cleanup(remove_ghost),
        case("delete of an empty entry", 1, "container does not exist")
            .args(&["delete", "ghost"])
            .damage(ghost(|p| fs::create_dir(p).expect("mkdir ghost")))
            .cleanup(remove_ghost),
        case(
            "kill of an entry that is a symlink",
            1,
            "container does not exist",
        )
        .args(&["kill", "ghost", "KILL"])
        .damage(|rt| {
            let target = rt.scratch().join("elsewhere");
            fs::create_dir_all(&target).expect("mkdir");
            symlink(&target, rt.root().join("ghost")).expect("symlink ghost");
        })
        .cleanup(remove_ghost),
        case(
            "state of a record {}",
            1,
            "ghost/state.json: missing field `ociVersion`",
        )
        .args(&["state", "ghost"])
        .damage(ghost(ghost_dir_with_state("{}")))
        .cleanup(remove_ghost),
        case(
            "kill of a record {}",
            1,
            "ghost/state.json: missing field `ociVersion`",
        )
        .args(&["kill", "ghost", "KILL"])
        .damage(ghost(ghost_dir_with_state("{}")))
        .cleanup(remove_ghost),
        case(
            "delete --force of a record {}",
            1,
            "ghost/state.json: missing field `ociVersion`…no usable copy either…then remove",
        )
        .args(&["delete", "--force", "ghost"])
        .damage(ghost(ghost_dir_with_state("{}")))
        .cleanup(remove_ghost),
        case(
            "start of a record []",
            1,
            "ghost/state.json: invalid length 0",
        )
        .args(&["start", "ghost"])
        .damage(ghost(ghost_dir_with_state("[]")))
        .cleanup(remove_ghost),
        case(
            "state of a 5 MB garbage record",
            1,
            "ghost/state.json: expected value at line 1 column 1",
        )
        .args(&["state", "ghost"])
        .damage(ghost(|dir| {
            fs::create_dir(dir).expect("mkdir ghost");
            fs::write(dir.join("state.json"), "x".repeat(5 << 20)).expect("write ghost state");
        }))
        .cleanup(remove_ghost),
        case(
            "create over a damaged entry",
            1,
            "container with given ID already exists",
        )
        .args(&["create", "--bundle", "{bundle}", "ghost"])
        .damage(ghost(ghost_dir_with_state("not json")))
        .cleanup(remove_ghost),
        // A --root that cannot be written.
        case(
            "--root below a read-only mount",
            1,
            "mkdir …/ro/state: read-only file system",
        )
        .args(&[
            "--root",
            "{scratch}/ro/state",
            "create",
            "--bundle",
            "{bundle}",
            "{id}",
        ])
        .damage(mount_read_only)
        .cleanup(unmount_read_only),
        case(
            "--root on a read-only mount",
            1,
            "mkdir …/ro/…: read-only file system",
        )
        .args(&[
            "--root",
            "{scratch}/ro",
            "create",
            "--bundle",
            "{bundle}",
            "{id}",
        ])
        .damage(mount_read_only)
        .cleanup(unmount_read_only),
    ]);
    run_table("bad-state", &cases);
}

/// The helpers the tables rely on.
#[test]
fn message_matching() {
    let line = r#"time="2026-01-01T00:00:00Z" level=error msg="corten create failed: sysctl \"vm.x\" is not in a separate kernel namespace""#;
    let msg = message(line);
    assert_eq!(
        msg,
        r#"corten create failed: sysctl "vm.x" is not in a separate kernel namespace"#
    );
    assert!(matches(&msg, r#"sysctl "vm.x" is not"#));
    assert!(matches(&msg, "create failed…vm.x…namespace"));
    assert!(!matches(&msg, "namespace…create failed"));
    assert_eq!(message("plain text"), "plain text");
    assert_eq!(message(r#"level=error msg="a \\ b""#), r"a \ b");
}
