//! Fuzz target: `config.json` through the path `create` takes before it
//! touches the system ([`Spec::from_slice`]: Go-style decoding and the
//! resources' key folding; [`validate`], which compiles the seccomp
//! profile; then the cgroup plan for v1 and v2), and an `exec --process`
//! file through `exec`'s ([`gojson`], [`validate_process`], the process
//! attributes' check).
//!
//! Inputs: arbitrary JSON (keys mostly the spec's), mutations of the
//! configs `corten spec` writes (values replaced, removed, inserted, keys
//! upper-cased, array elements duplicated, random `linux.resources` and
//! `linux.seccomp` sections), and those configs' bytes damaged.
//! Property: nothing panics; the result is a config or an error on one line.

use proptest::prelude::*;
use serde_json::Value;

use super::{default_spec, gojson, Process, Spec};
use crate::fuzz_support::{self as fz, json, one_line};
use crate::plan::{validate, validate_process};

/// The spec's field names, at every level, and the seccomp profile's.
const FIELDS: &[&str] = &[
    "ociVersion",
    "root",
    "path",
    "readonly",
    "process",
    "terminal",
    "consoleSize",
    "height",
    "width",
    "user",
    "uid",
    "gid",
    "umask",
    "additionalGids",
    "username",
    "args",
    "env",
    "cwd",
    "capabilities",
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
    "rlimits",
    "type",
    "hard",
    "soft",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
    "scheduler",
    "policy",
    "nice",
    "priority",
    "flags",
    "runtime",
    "deadline",
    "period",
    "ioPriority",
    "class",
    "execCPUAffinity",
    "initial",
    "final",
    "hostname",
    "domainname",
    "mounts",
    "destination",
    "source",
    "options",
    "hooks",
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
    "timeout",
    "annotations",
    "linux",
    "uidMappings",
    "gidMappings",
    "containerID",
    "hostID",
    "size",
    "sysctl",
    "resources",
    "cgroupsPath",
    "namespaces",
    "devices",
    "major",
    "minor",
    "fileMode",
    "seccomp",
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "syscalls",
    "names",
    "action",
    "errnoRet",
    "index",
    "value",
    "valueTwo",
    "op",
    "listenerPath",
    "rootfsPropagation",
    "maskedPaths",
    "readonlyPaths",
    "mountLabel",
    "timeOffsets",
    "secs",
    "nanosecs",
    "personality",
    "domain",
    "memoryPolicy",
    "mode",
    "nodes",
    "intelRdt",
    "memory",
    "limit",
    "swap",
    "cpu",
    "shares",
    "quota",
    "pids",
];

/// What `create` does with config.json before touching the system.
fn check_config(bytes: &[u8]) -> Result<(), TestCaseError> {
    crate::logging::quiet();
    let spec = match Spec::from_slice(bytes, "/bundle/config.json".into()) {
        Ok(s) => s,
        Err(e) => return one_line(&e.to_string()),
    };
    let filter = match validate(&spec) {
        Ok(f) => f,
        Err(e) => return one_line(&e.to_string()),
    };
    // Validation compiled the profile, the one `create` installs.
    prop_assert_eq!(filter.is_some(), spec.linux().seccomp.is_some());
    if let Some(res) = &spec.linux().resources {
        for v2 in [crate::cgroups::Version::V1, crate::cgroups::Version::V2] {
            if let Err(e) = crate::cgroups::resources::plan(res, v2) {
                one_line(&e.to_string())?;
            }
        }
    }
    Ok(())
}

/// What `exec --process FILE` does with the file.
fn check_process(bytes: &[u8]) -> Result<(), TestCaseError> {
    let p: Process = match gojson::from_slice(bytes) {
        Ok(p) => p,
        Err(e) => return one_line(&e.to_string()),
    };
    if let Err(e) = validate_process(&p) {
        return one_line(&e.to_string());
    }
    if let Err(e) = crate::process::attrs::Attrs::of(&p, None, None).validate() {
        one_line(&e.to_string())?;
    }
    Ok(())
}

/// New values for mutations: any JSON, or a random resources or seccomp
/// section.
fn values() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => json(FIELDS),
        1 => crate::cgroups::fuzz::resources(),
        1 => crate::seccomp::tests::fuzz::profile(),
    ]
    .boxed()
}

/// A config `corten spec` writes (rootless or not), with random
/// `linux.resources` and `linux.seccomp` now and then, then mutated.
fn mutated_config() -> BoxedStrategy<Value> {
    (
        any::<bool>(),
        prop::option::weighted(0.3, crate::cgroups::fuzz::resources()),
        prop::option::weighted(0.3, crate::seccomp::tests::fuzz::profile()),
        prop::collection::vec(fz::mutation(FIELDS, values()), 0..5),
    )
        .prop_map(|(rootless, resources, seccomp, mutations)| {
            let mut v = default_spec(rootless);
            if let Some(r) = resources {
                v["linux"]["resources"] = r;
            }
            if let Some(s) = seccomp {
                v["linux"]["seccomp"] = s;
            }
            for (at, m) in mutations {
                fz::mutate(&mut v, &at, m);
            }
            v
        })
        .boxed()
}

proptest! {
    #![proptest_config(fz::config(256))]

    #[test]
    fn arbitrary_json_config(v in json(FIELDS)) {
        check_config(&serde_json::to_vec(&v).expect("serialise"))?;
    }

    #[test]
    fn mutated_default_config(v in mutated_config()) {
        check_config(&serde_json::to_vec(&v).expect("serialise"))?;
    }

    #[test]
    fn damaged_config_bytes(rootless in any::<bool>(), pretty in any::<bool>(), damage in fz::damage()) {
        let v = default_spec(rootless);
        let bytes = if pretty {
            serde_json::to_vec_pretty(&v)
        } else {
            serde_json::to_vec(&v)
        }
        .expect("serialise");
        check_config(&fz::damaged(bytes, &damage))?;
    }

    #[test]
    fn exec_process_file(
        v in prop_oneof![
            1 => json(FIELDS),
            3 => prop::collection::vec(fz::mutation(FIELDS, json(FIELDS)), 0..6).prop_map(|ms| {
                let mut p = default_spec(false)["process"].clone();
                for (at, m) in ms {
                    fz::mutate(&mut p, &at, m);
                }
                p
            }),
        ],
    ) {
        check_process(&serde_json::to_vec(&v).expect("serialise"))?;
    }
}
