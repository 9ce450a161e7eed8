//! The device rules' semantics, the generated program run by an eBPF
//! interpreter of the tests' own, and the kernel enforcing it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use serde_json::json;

use super::bpf::{attach as apply, load, sys};
use super::ebpf::R0;
use super::reduce::{access_bits, Key};
use super::*;

fn allow(line: &str) -> DeviceRule {
    DeviceRule::from_v1(true, line).expect(line)
}
fn deny(line: &str) -> DeviceRule {
    DeviceRule::from_v1(false, line).expect(line)
}

/// A request: block?, major, minor, access bits.
type Request = (bool, u32, u32, u8);

/// Parses `"c 1:3 rw"` into a request.
fn request(s: &str) -> Request {
    let r = DeviceRule::from_v1(true, s).expect(s);
    let n = |n: Option<i64>| u32::try_from(n.expect(s)).expect(s);
    (
        r.kind == DeviceKind::Block,
        n(r.major),
        n(r.minor),
        access_bits(&r.access),
    )
}

fn word(imm: i32) -> u32 {
    u32::from_ne_bytes(imm.to_ne_bytes())
}

/// Runs `code` as the kernel would for one request, for the subset of
/// eBPF the generator emits. Like the verifier it refuses reads of
/// uninitialised registers, context loads through anything but the
/// context pointer, backward or out-of-range jumps, and a verdict other
/// than 0 or 1.
fn run(code: &[Insn], (block, major, minor, access): Request) -> bool {
    let ctx = [
        u32::from(access) << 16 | if block { 1 } else { 2 },
        major,
        minor,
    ];
    let mut reg: [Option<u64>; 11] = [None; 11];
    let mut is_ctx = [false; 11];
    reg[1] = Some(0);
    is_ctx[1] = true;
    let mut pc = 0;
    loop {
        let i = *code
            .get(pc)
            .unwrap_or_else(|| panic!("ran off the end at {pc}"));
        let (d, s) = (usize::from(i.dst()), usize::from(i.src()));
        let at = pc;
        let get = |reg: &[Option<u64>; 11], r: usize| {
            reg[r].unwrap_or_else(|| panic!("r{r} read uninitialised at {at}"))
        };
        let low = |x: u64| u32::try_from(x & 0xffff_ffff).unwrap_or(0);
        pc += 1;
        let val = match i.code {
            0x61 => {
                assert!(
                    is_ctx[s],
                    "load through r{s}, not the context, at {}",
                    pc - 1
                );
                let off = usize::try_from(i.off).expect("negative context offset");
                assert!(off % 4 == 0 && off < 12, "context offset {off}");
                u64::from(ctx[off / 4])
            }
            0xb4 => u64::from(word(i.imm)),
            0xbc => u64::from(low(get(&reg, s))),
            0xb7 => u64::from_ne_bytes(i64::from(i.imm).to_ne_bytes()),
            0x54 => u64::from(low(get(&reg, d)) & word(i.imm)),
            0x5c => u64::from(low(get(&reg, d)) & low(get(&reg, s))),
            0x74 => u64::from(low(get(&reg, d)) >> word(i.imm)),
            0x15 | 0x55 | 0x5d => {
                let a = get(&reg, d);
                let b = if i.code == 0x5d {
                    get(&reg, s)
                } else {
                    u64::from_ne_bytes(i64::from(i.imm).to_ne_bytes())
                };
                if (a == b) == (i.code == 0x15) {
                    let off = usize::try_from(i.off).expect("backward jump");
                    pc += off;
                    assert!(pc < code.len(), "jump out of the program");
                }
                continue;
            }
            0x95 => {
                let r0 = get(&reg, 0);
                assert!(r0 <= 1, "verdict {r0}");
                return r0 == 1;
            }
            other => panic!("opcode {other:#x} at {}", pc - 1),
        };
        reg[d] = Some(val);
        is_ctx[d] = false;
    }
}

/// Checks `(request, allowed?)` pairs against the program for `rules`.
fn check(rules: &[DeviceRule], table: &[(&str, bool)]) {
    let code = program(rules);
    for &(req, want) in table {
        assert_eq!(run(&code, request(req)), want, "{req} with rules {rules:?}");
    }
}

fn with_defaults(mut rules: Vec<DeviceRule>) -> Vec<DeviceRule> {
    rules.extend(default_allowed());
    rules
}

#[test]
fn runc_default_spec() {
    let rules = with_defaults(vec![deny("a *:* rwm")]);
    check(
        &rules,
        &[
            ("c 1:3 rw", true),
            ("c 1:3 r", true),
            ("c 1:5 r", true),
            ("c 1:7 w", true),
            ("c 1:8 r", true),
            ("c 1:9 r", true),
            ("c 5:0 rw", true),
            ("c 5:2 rw", true),
            ("c 136:0 rw", true),
            ("c 136:42 rw", true),
            ("c 10:200 rw", true),
            ("c 1:1 m", true),
            ("b 8:0 m", true),
            ("c 1:1 r", false),
            ("c 1:1 rw", false),
            ("c 1:1 rm", false),
            ("c 10:229 rw", false),
            ("c 4:0 w", false),
            ("c 137:0 r", false),
            ("b 8:0 r", false),
            ("b 1:3 r", false),
        ],
    );
}

#[test]
fn no_rules_denies_everything_and_allow_all_allows_everything() {
    check(&[], &[("c 1:3 r", false), ("b 8:0 m", false)]);
    let all = [allow("a *:* rwm")];
    assert_eq!(program(&all).len(), 2, "allow-all needs no checks");
    check(
        &all,
        &[("c 1:3 rw", true), ("b 8:0 rw", true), ("c 10:229 m", true)],
    );
    check(&[deny("a")], &[("c 1:3 r", false)]);
}

#[test]
fn deny_all_then_allow_one_device() {
    let rules = [deny("a *:* rwm"), allow("c 10:229 rw")];
    check(
        &rules,
        &[
            ("c 10:229 r", true),
            ("c 10:229 w", true),
            ("c 10:229 rw", true),
            ("c 10:229 m", false),
            ("c 10:228 r", false),
            ("c 11:229 r", false),
            ("b 10:229 r", false),
        ],
    );
}

#[test]
fn wildcard_majors_and_minors() {
    let rules = [
        deny("a"),
        allow("c 4:* rw"),
        allow("b *:0 r"),
        allow("c *:* m"),
    ];
    check(
        &rules,
        &[
            ("c 4:0 rw", true),
            ("c 4:63 w", true),
            ("c 5:7 r", false),
            ("b 9:0 r", true),
            ("b 9:1 r", false),
            ("b 9:0 w", false),
            ("c 5:5 m", true),
            ("b 5:5 m", false),
        ],
    );
}

#[test]
fn later_rules_override_earlier_ones() {
    let rules = [deny("a"), allow("c 1:3 rwm"), deny("c 1:3 w")];
    check(
        &rules,
        &[
            ("c 1:3 r", true),
            ("c 1:3 m", true),
            ("c 1:3 w", false),
            ("c 1:3 rw", false),
        ],
    );
    // A reset forgets every exception before it.
    let rules = [deny("a"), allow("c 1:3 rwm"), deny("a"), allow("c 1:5 r")];
    check(
        &rules,
        &[("c 1:3 r", false), ("c 1:5 r", true), ("c 1:5 w", false)],
    );
    let rules = [deny("a"), allow("c 1:3 r"), allow("a")];
    check(&rules, &[("c 1:3 rw", true), ("b 8:0 rw", true)]);
    let rules = [allow("a"), deny("c 1:3 w"), allow("c 1:3 w")];
    check(&rules, &[("c 1:3 rw", true)]);
    // Letters merge into the exception with the same numbers.
    let rules = [deny("a"), allow("c 1:3 r"), allow("c 1:3 w")];
    check(&rules, &[("c 1:3 rw", true), ("c 1:3 m", false)]);
    // Type `a` resets whatever its numbers and access, as on v1.
    let rules = [deny("a"), allow("a 1:3 r")];
    check(&rules, &[("b 8:0 w", true)]);
}

#[test]
fn block_and_char_are_distinct() {
    let rules = [deny("a"), allow("b 8:* rw")];
    check(
        &rules,
        &[("b 8:1 rw", true), ("c 8:1 r", false), ("b 9:1 r", false)],
    );
    let rules = [allow("a"), deny("c *:* rwm")];
    check(
        &rules,
        &[("c 1:3 r", false), ("b 8:0 rw", true), ("b 8:0 m", true)],
    );
}

#[test]
fn mknod_only() {
    let rules = [deny("a"), allow("c *:* m"), allow("b *:* m")];
    check(
        &rules,
        &[
            ("c 1:3 m", true),
            ("c 1:3 r", false),
            ("b 8:0 m", true),
            ("b 8:0 w", false),
            ("c 1:3 rm", false),
        ],
    );
}

#[test]
fn deny_exceptions_deny_any_requested_bit_as_on_v1() {
    let rules = [allow("a"), deny("c 1:3 w")];
    check(
        &rules,
        &[
            ("c 1:3 r", true),
            ("c 1:3 w", false),
            ("c 1:3 rw", false),
            ("c 1:4 w", true),
            ("b 1:3 w", true),
        ],
    );
}

#[test]
fn one_exception_must_grant_every_requested_bit_as_on_v1() {
    let rules = [deny("a"), allow("c *:* r"), allow("c 1:3 w")];
    check(
        &rules,
        &[
            ("c 1:3 r", true),
            ("c 1:3 w", true),
            ("c 1:3 rw", false),
            ("c 2:3 r", true),
        ],
    );
}

#[test]
fn a_deny_inside_a_wider_allow_takes_effect() {
    // v1 ignores the deny, runc refuses the list; it applies here.
    let rules = [deny("a"), allow("c *:* rwm"), deny("c 1:3 w")];
    check(
        &rules,
        &[
            ("c 1:3 w", false),
            ("c 1:3 rw", false),
            ("c 1:3 r", true),
            ("c 1:4 w", true),
        ],
    );
    let more = [&rules[..], &[allow("c 1:3 w")]].concat();
    check(&more, &[("c 1:3 rw", true)]);
    let rules = [
        deny("a"),
        allow("c *:* rwm"),
        deny("c 1:* w"),
        allow("c *:* w"),
    ];
    check(&rules, &[("c 1:3 w", true)]);
    let rules = [
        deny("a"),
        allow("c *:* rwm"),
        deny("c 1:* rw"),
        allow("c 1:3 r"),
    ];
    check(
        &rules,
        &[
            ("c 1:3 r", true),
            ("c 1:3 w", false),
            ("c 1:4 r", false),
            ("c 1:4 m", true),
            ("c 2:4 rw", true),
        ],
    );
    let rules = [
        deny("a"),
        allow("c *:3 rwm"),
        deny("c 1:3 w"),
        deny("c *:3 r"),
    ];
    check(
        &rules,
        &[
            ("c 1:3 w", false),
            ("c 1:3 r", false),
            ("c 1:3 m", true),
            ("c 2:3 w", true),
        ],
    );
    // The mirror image with a default allow.
    let rules = [allow("a"), deny("c *:* w"), allow("c 1:3 w")];
    check(
        &rules,
        &[("c 1:3 w", true), ("c 1:4 w", false), ("c 1:4 r", true)],
    );
}

#[test]
fn a_wide_deny_leaves_narrower_allows_as_on_v1() {
    // v1 and runc take letters only from the exception with the same
    // numbers; the narrower one stays.
    let rules = [deny("a"), allow("c 1:3 rwm"), deny("c *:* rwm")];
    check(&rules, &[("c 1:3 rw", true), ("c 1:4 r", false)]);
}

#[test]
fn impossible_numbers_never_match() {
    let rules = [
        deny("a"),
        DeviceRule {
            allow: true,
            kind: DeviceKind::Char,
            major: Some(1 << 32 | 1),
            minor: None,
            access: "rwm".into(),
        },
        DeviceRule {
            allow: true,
            kind: DeviceKind::Char,
            major: Some(-5),
            minor: Some(3),
            access: "rwm".into(),
        },
    ];
    assert_eq!(program(&rules).len(), 2);
    check(&rules, &[("c 1:3 r", false)]);
}

/// The v1 controller, as the kernel implements it, for a cross-check; the
/// flag says whether runc would refuse the list (a hole punched into a
/// wider exception, which v1 ignores).
fn v1_reference(rules: &[DeviceRule]) -> ((bool, Vec<(Key, u8)>), bool) {
    let (mut default_allow, mut ex): (bool, Vec<(Key, u8)>) = (false, Vec::new());
    let mut refused = false;
    for rule in rules {
        let block = match rule.kind {
            DeviceKind::All => {
                (default_allow, ex) = (rule.allow, Vec::new());
                continue;
            }
            kind => kind == DeviceKind::Block,
        };
        let key = Key {
            block,
            major: rule.major,
            minor: rule.minor,
        };
        let bits = access_bits(&rule.access);
        let pos = ex.iter().position(|(k, _)| *k == key);
        if rule.allow != default_allow {
            match pos {
                Some(p) => ex[p].1 |= bits,
                None => ex.push((key, bits)),
            }
            continue;
        }
        refused |= ex
            .iter()
            .any(|(k, b)| k.strictly_wider(&key) && b & bits != 0);
        if let Some(p) = pos {
            ex[p].1 &= !bits;
            if ex[p].1 == 0 {
                ex.remove(p);
            }
        }
    }
    ((default_allow, ex), refused)
}

fn v1_decide(
    (default_allow, ex): &(bool, Vec<(Key, u8)>),
    (block, major, minor, access): Request,
) -> bool {
    let names = |k: &Key| {
        k.block == block
            && k.major.is_none_or(|m| m == i64::from(major))
            && k.minor.is_none_or(|m| m == i64::from(minor))
    };
    if *default_allow {
        !ex.iter().any(|(k, bits)| names(k) && bits & access != 0)
    } else {
        ex.iter().any(|(k, bits)| names(k) && access & !bits == 0)
    }
}

#[test]
fn matches_the_v1_controller_on_random_lists() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
    };
    let nums = [None, Some(1), Some(5), Some(1 << 32 | 1)];
    let access = ["r", "w", "m", "rw", "rm", "wm", "rwm"];
    let (mut compared, mut refused) = (0, 0);
    for _ in 0..3000 {
        let len = next(7);
        let rules: Vec<DeviceRule> = (0..len)
            .map(|_| DeviceRule {
                allow: next(2) == 0,
                kind: [
                    DeviceKind::All,
                    DeviceKind::Char,
                    DeviceKind::Char,
                    DeviceKind::Block,
                ][next(4)],
                major: nums[next(4)],
                minor: nums[next(3)],
                access: access[next(7)].to_string(),
            })
            .collect();
        let (reference, runc_refuses) = v1_reference(&rules);
        if runc_refuses {
            refused += 1;
        } else {
            compared += 1;
        }
        let code = program(&rules);
        for block in [false, true] {
            for major in [1, 5, 7] {
                for minor in [1, 5, 9] {
                    for acc in 1..=ACC_ALL {
                        let req = (block, major, minor, acc);
                        let (ours, v1) = (run(&code, req), v1_decide(&reference, req));
                        if !runc_refuses {
                            assert_eq!(ours, v1, "{req:?} with {rules:?}");
                        } else if !reference.0 {
                            // With a default deny, honouring the hole v1
                            // ignores can only deny more.
                            assert!(!ours || v1, "{req:?} allowed beyond v1 with {rules:?}");
                        }
                    }
                }
            }
        }
    }
    assert!(
        compared > 2000 && refused > 50,
        "compared {compared}, refused {refused}"
    );
}

#[test]
fn rules_from_spec_applies_the_spec_defaults() {
    let spec = json!([
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw" },
        { "allow": true, "type": "b", "major": -1, "minor": null },
        {}
    ]);
    let rules = rules_from_spec(&super::text_tests::rules(spec)).expect("valid");
    assert_eq!(
        rules,
        vec![
            deny("a *:* rwm"),
            allow("c 10:229 rw"),
            allow("b *:* rwm"),
            DeviceRule {
                allow: false,
                kind: DeviceKind::All,
                major: None,
                minor: None,
                access: "rwm".into()
            },
        ]
    );
    assert_eq!(rules_from_spec(&[]).expect("none").len(), 0);
    let bad = [
        json!([{ "allow": true, "type": "u" }]),
        json!([{ "allow": true, "access": "rwx" }]),
    ];
    for b in bad {
        let e = rules_from_spec(&super::text_tests::rules(b)).expect_err("invalid");
        assert!(
            e.to_string().starts_with("linux.resources.devices[0]: "),
            "{e}"
        );
    }
}

#[test]
fn default_allowed_is_runcs_list() {
    let rules = default_allowed();
    assert_eq!(rules.len(), 11);
    assert!(rules.iter().all(|r| r.allow));
    assert_eq!(rules[0], allow("c *:* m"));
    assert_eq!(rules[1], allow("b *:* m"));
    assert_eq!(rules[8], allow("c 136:* rwm"));
    assert_eq!(rules[10], allow("c 10:200 rwm"));
}

// ---- against the kernel -------------------------------------------------

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Removes the test's own cgroup when the test ends, even on failure.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // The shells have exited, but the cgroup may take a moment to
        // become empty.
        for _ in 0..200 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        eprintln!("could not remove {}", self.0.display());
    }
}

/// Moves a shell into `dir` and has it read one byte of `dev`: `Ok` when
/// that worked, else `Err(stderr)`.
fn read_in_cgroup(dir: &Path, dev: &str) -> Result<(), String> {
    let out = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            r#"echo $$ > "$0/cgroup.procs" || exit 90; exec head -c1 "$1""#,
        ])
        .arg(dir)
        .arg(dev)
        .output()
        .expect("run /bin/sh");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(
        out.status.code(),
        Some(90),
        "could not join {}: {stderr}",
        dir.display()
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(stderr)
    }
}

fn attached_names(dir: &Path) -> Vec<String> {
    let fd = OwnedFd::from(std::fs::File::open(dir).expect("open cgroup"));
    sys::prog_query(fd.as_fd())
        .expect("BPF_PROG_QUERY")
        .into_iter()
        .map(|id| {
            let prog = sys::prog_get_fd_by_id(id).expect("BPF_PROG_GET_FD_BY_ID");
            String::from_utf8_lossy(&sys::prog_name(prog.as_fd()).expect("prog name")).into_owned()
        })
        .collect()
}

#[test]
fn kernel_enforces_and_replaces_the_filter() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("devices kernel test SKIPPED: needs root and a cgroup2 mount");
        return;
    }
    let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .map(Path::new)
        .find(|p| crate::sys::is_fs(p, CGROUP2_SUPER_MAGIC))
        .unwrap_or_else(|| {
            panic!("no cgroup2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup")
        });
    let dir = root.join(format!("corten-bpf-test-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let _cleanup = TestCgroup(dir.clone());

    let mut rules = vec![deny("a *:* rwm"), allow("c 1:3 rwm")];
    if sys::prog_query(std::fs::File::open(&dir).expect("open the cgroup").as_fd())
        .is_err_and(|e| e.raw_os_error() == Some(libc::ENOSYS))
        && crate::test_support::skip_under_emulation(
            "cgroups::devices::tests::kernel_enforces_and_replaces_the_filter",
            "the emulator has no bpf(2) (ENOSYS); covered by the arm64 VM",
        )
    {
        return;
    }
    apply(&dir, &rules).unwrap_or_else(|e| {
        panic!(
            "apply to {}: {e} (EPERM/ENOSYS: no usable bpf(2) here)",
            dir.display()
        )
    });
    assert_eq!(attached_names(&dir), [PROG_NAME]);
    read_in_cgroup(&dir, "/dev/null").expect("/dev/null is allowed");
    let err = read_in_cgroup(&dir, "/dev/zero").expect_err("/dev/zero is denied");
    assert!(err.contains("Operation not permitted"), "{err}");

    // `corten update`: the new program replaces the old one.
    rules.push(allow("c 1:5 r"));
    apply(&dir, &rules).expect("second apply");
    assert_eq!(attached_names(&dir), [PROG_NAME]);
    read_in_cgroup(&dir, "/dev/zero").expect("/dev/zero is allowed after the update");
    read_in_cgroup(&dir, "/dev/null").expect("/dev/null is still allowed");

    // A program someone else attached stays.
    let other = sys::prog_load(
        &[Insn::mov64_imm(R0, 1), Insn::exit()],
        "other_filter",
        None,
    )
    .expect("load");
    let fd = OwnedFd::from(std::fs::File::open(&dir).expect("open cgroup"));
    sys::prog_attach(fd.as_fd(), other.as_fd()).expect("attach other");
    apply(&dir, &rules).expect("third apply");
    let mut names = attached_names(&dir);
    names.sort();
    assert_eq!(names, ["corten_devices", "other_filter"]);

    // A refused program comes back with the verifier's reasons.
    let err = load(&[Insn::exit()], "bad").expect_err("r0 is never set");
    assert!(
        err.to_string().contains("verifier log: ") && err.to_string().contains("R0"),
        "{err}"
    );

    // Every shape of block the generator emits passes the verifier.
    let holes = [
        deny("a"),
        allow("c *:* rwm"),
        deny("c 1:* w"),
        allow("b 8:* rw"),
        deny("b 8:3 r"),
    ];
    apply(&dir, &holes).expect("hole program loads");
    let blacklist = [
        allow("a"),
        deny("c *:* w"),
        allow("c 1:3 w"),
        deny("b 8:0 rwm"),
    ];
    apply(&dir, &blacklist).expect("deny-list program loads");
    read_in_cgroup(&dir, "/dev/zero").expect("/dev/zero is allowed with a deny-list");
}
