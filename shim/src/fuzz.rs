//! Fuzz target (`make fuzz`): what the shim decodes.
//!
//! - containerd's requests as they arrive (`CreateTaskRequest`,
//!   `ExecProcessRequest`, `UpdateTaskRequest`, the `-info` action's `Any`),
//!   then the runtime options they carry ([`options::runc_options`]: runc's
//!   `Options` message, CRI's `runtimeoptions.v1.Options` and the TOML file
//!   it names, unknown type URLs);
//! - the files it reads back: the runtime it saved in the bundle, the
//!   bundle's `config.json` (pid namespace, sandbox group), the runtime's
//!   JSON log (the last error);
//! - runc's stats event, translated into containerd's v1 and v2 metrics.
//!
//! Inputs are random bytes, protobuf-shaped bytes (fields of every wire
//! type, some malformed), well-formed messages with random fields, random
//! JSON and text. Property: nothing panics, a failure is an error value;
//! what is encoded is well-formed (the metrics decode, the saved runtime
//! reads back as it was written). The exec process and the update
//! resources are not decoded here (the shim hands them to the runtime,
//! whose own fuzz targets take them: `corten` `spec::fuzz`, `cgroups::fuzz`).
//!
//! Few cases by default; `PROPTEST_CASES` overrides (`make fuzz`). A
//! failure's seed is saved under `shim/proptest-regressions/` and replayed
//! by every later run.

use containerd_shim::api::{CreateTaskRequest, ExecProcessRequest, Options, UpdateTaskRequest};
use containerd_shim::protos::cgroups::metrics::Metrics;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::options;

/// proptest's configuration with `cases` cases unless `PROPTEST_CASES` is set.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
const CRI_OPTIONS: &str = "runtimeoptions.v1.Options";

fn type_url() -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just(RUNC_OPTIONS.to_string()),
        2 => Just(format!("type.googleapis.com/{RUNC_OPTIONS}")),
        2 => Just(CRI_OPTIONS.to_string()),
        1 => Just(String::new()),
        1 => Just("/".to_string()),
        1 => Just("io.containerd.runhcs.v1.Options".to_string()),
        1 => any::<String>(),
    ]
    .boxed()
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "", "/usr/sbin/runc", "corten", "/run/x", "true", "false", "\"q\"", "=", "#",
            "a\nb", "\0", "é", "k8s.io", "/run/containerd/containerd.sock", "unix://",
        ])
        .prop_map(str::to_string),
        2 => "[a-zA-Z0-9_./=:\" #-]{0,16}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes shaped like protobuf: fields with small numbers and every wire
/// type, their payloads random (nested fields too), now and then cut short.
fn proto_bytes() -> BoxedStrategy<Vec<u8>> {
    let field = (
        1u64..20,
        0u64..8,
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..24),
    );
    (
        prop::collection::vec(field, 0..8),
        prop::option::weighted(0.2, any::<prop::sample::Index>()),
    )
        .prop_map(|(fields, cut)| {
            let mut out = Vec::new();
            for (number, wire, v, payload) in fields {
                varint(&mut out, number << 3 | wire);
                match wire {
                    0 => varint(&mut out, v),
                    1 => out.extend_from_slice(&v.to_le_bytes()),
                    2 => {
                        varint(&mut out, payload.len() as u64);
                        out.extend_from_slice(&payload);
                    }
                    5 => out.extend_from_slice(&(v as u32).to_le_bytes()),
                    // Group markers and invalid wire types: a payload anyway.
                    _ => out.extend_from_slice(&payload),
                }
            }
            if let Some(cut) = cut {
                let n = cut.index(out.len() + 1);
                out.truncate(n);
            }
            out
        })
        .boxed()
}

fn bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64),
        2 => proto_bytes(),
    ]
    .boxed()
}

/// runc's options message with random fields, encoded.
fn runc_options_bytes() -> BoxedStrategy<Vec<u8>> {
    (text(), text(), text(), any::<[bool; 3]>(), any::<u32>())
        .prop_map(
            |(binary_name, root, criu, [systemd, pivot, keyring], uid)| {
                Options {
                    binary_name,
                    root,
                    criu_path: criu,
                    systemd_cgroup: systemd,
                    no_pivot_root: pivot,
                    no_new_keyring: keyring,
                    io_uid: uid,
                    ..Default::default()
                }
                .write_to_bytes()
                .expect("encode Options")
            },
        )
        .boxed()
}

/// An `Any` as containerd might send it as the runtime options.
fn options_any() -> BoxedStrategy<Any> {
    let value = prop_oneof![2 => runc_options_bytes(), 1 => bytes()];
    (type_url(), value)
        .prop_map(|(type_url, value)| Any {
            type_url,
            value,
            ..Default::default()
        })
        .boxed()
}

/// The shim's handling of runtime options from containerd. A CRI message
/// naming a config file is only decoded (the file is not read: random
/// bytes could name any file of this machine).
fn check_options(any: Option<&Any>) {
    if let Some(a) = any {
        if a.type_url.rsplit('/').next() == Some(CRI_OPTIONS) {
            if let Ok(path) = options::config_path(&a.value) {
                if !path.is_empty() {
                    return;
                }
            }
        }
    }
    if let Ok(o) = options::runc_options(any) {
        check_runtime(o.as_ref());
    }
}

/// The runtime the options make, saved as the shim saves it, reads back
/// the same.
fn check_runtime(o: Option<&Options>) {
    for (namespace, address) in [
        ("default", "/run/containerd/containerd.sock"),
        ("k8s.io", ""),
        ("", "unix:///x"),
    ] {
        let rt = options::runtime(o, namespace, address);
        let saved = serde_json::to_vec(&rt).expect("encode the runtime");
        assert_eq!(options::decode_saved(&saved), Some(rt));
    }
}

/// JSON whose keys are mostly `keys`.
fn json(keys: &'static [&'static str]) -> BoxedStrategy<Value> {
    let number = prop_oneof![
        3 => prop::sample::select(vec![0u64, 1, 1000, u64::MAX, u64::MAX - 1, 1 << 63]).prop_map(Value::from),
        2 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::from(1.5)),
    ];
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        4 => number,
        2 => text().prop_map(Value::String),
    ];
    let key = prop_oneof![
        6 => prop::sample::select(keys).prop_map(str::to_string),
        1 => text(),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

/// The keys of runc's stats event.
const STATS_KEYS: &[&str] = &[
    "type",
    "id",
    "data",
    "pids",
    "current",
    "limit",
    "cpu",
    "usage",
    "total",
    "percpu",
    "kernel",
    "user",
    "throttling",
    "periods",
    "throttledPeriods",
    "throttledTime",
    "memory",
    "cache",
    "raw",
    "rss",
    "anon",
    "file",
    "swap",
    "max",
    "failcnt",
    "kernelTCP",
    "blkio",
    "ioServiceBytesRecursive",
    "ioServicedRecursive",
    "ioQueueRecursive",
    "op",
    "major",
    "minor",
    "value",
    "Read",
    "Write",
    "hugetlb",
    "2MB",
];

/// The keys of a config.json the shim looks at, and a log record's.
const CONFIG_KEYS: &[&str] = &[
    "linux",
    "namespaces",
    "type",
    "path",
    "pid",
    "annotations",
    "io.kubernetes.cri.sandbox-id",
    "level",
    "msg",
    "error",
    "time",
];

/// A protobuf encoding's fields all parse (varints end, lengths fit),
/// nested messages included where `nested` says a field is one.
fn well_formed(mut b: &[u8], depth: u32) -> bool {
    fn varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&x, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    while !b.is_empty() {
        let Some(key) = varint(&mut b) else {
            return false;
        };
        match key & 7 {
            0 => {
                if varint(&mut b).is_none() {
                    return false;
                }
            }
            2 => {
                let Some(len) = varint(&mut b).and_then(|l| usize::try_from(l).ok()) else {
                    return false;
                };
                if len > b.len() {
                    return false;
                }
                let (field, rest) = b.split_at(len);
                b = rest;
                // Every length-delimited field of these messages is a
                // message, except the hugetlb page size (field 3 of 7).
                if depth > 0 && key >> 3 != 3 && !well_formed(field, depth - 1) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

fn counter() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::sample::select(vec![0u64, 1, 999, 1000, 4096, u64::MAX - 1, u64::MAX]).prop_map(Value::from),
        2 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
    ]
    .boxed()
}

/// An object with `fields` (each there or not) of counters.
fn counters(fields: &'static [&'static str]) -> BoxedStrategy<Value> {
    let entries: Vec<_> = fields
        .iter()
        .map(|f| prop::option::of((Just((*f).to_string()), counter())))
        .collect();
    entries
        .prop_map(|kv| Value::Object(kv.into_iter().flatten().collect()))
        .boxed()
}

/// runc's stats event, with every field the shim reads: counters at their
/// limits, blkio entries of a few devices (so that sums meet).
fn stats() -> BoxedStrategy<Value> {
    let blkio_entry = (
        prop::sample::select(vec![0u64, 8, 253]),
        prop::sample::select(vec![0u64, 1, 16]),
        prop::sample::select(vec!["Read", "Write", "read", "WRITE", "Sync", "Total", ""]),
        counter(),
    )
        .prop_map(|(major, minor, op, value)| {
            serde_json::json!({ "major": major, "minor": minor, "op": op, "value": value })
        });
    let blkio_list = prop::collection::vec(blkio_entry, 0..6);
    let blkio = (blkio_list.clone(), blkio_list.clone(), blkio_list).prop_map(|(a, b, c)| {
        serde_json::json!({
            "ioServiceBytesRecursive": a, "ioServicedRecursive": b, "ioQueueRecursive": c
        })
    });
    let usage = counters(&["limit", "usage", "max", "failcnt"]);
    let memory = (
        counters(&["cache"]),
        usage.clone(),
        usage,
        counters(&[
            "rss",
            "anon",
            "file",
            "total_rss",
            "pgfault",
            "hierarchical_memory_limit",
        ]),
    )
        .prop_map(|(mut m, usage, swap, raw)| {
            m["usage"] = usage;
            m["swap"] = swap;
            m["raw"] = raw;
            m
        });
    let cpu = (
        counters(&["total", "kernel", "user"]),
        prop::collection::vec(counter(), 0..4),
        counters(&["periods", "throttledPeriods", "throttledTime"]),
    )
        .prop_map(|(mut usage, percpu, throttling)| {
            usage["percpu"] = Value::Array(percpu);
            serde_json::json!({ "usage": usage, "throttling": throttling })
        });
    let hugetlb = prop::collection::vec((text(), counters(&["usage", "max", "failcnt"])), 0..3)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()));
    (
        prop::option::of(cpu),
        prop::option::of(memory),
        prop::option::of(counters(&["current", "limit"])),
        prop::option::of(blkio),
        prop::option::of(hugetlb),
    )
        .prop_map(|(cpu, memory, pids, blkio, hugetlb)| {
            let mut data = Map::new();
            for (k, v) in [
                ("cpu", cpu),
                ("memory", memory),
                ("pids", pids),
                ("blkio", blkio),
                ("hugetlb", hugetlb),
            ] {
                if let Some(v) = v {
                    data.insert(k.into(), v);
                }
            }
            serde_json::json!({ "type": "stats", "id": "c", "data": data })
        })
        .boxed()
}

fn check_stats(event: &Value) -> Result<(), TestCaseError> {
    let m = crate::stats::metrics(event);
    let encoded = m.write_to_bytes().expect("encode v1 metrics");
    prop_assert_eq!(
        Metrics::parse_from_bytes(&encoded).expect("decode v1 metrics"),
        m
    );
    let v2 = crate::stats::metrics_v2(event);
    prop_assert!(well_formed(&v2, 2), "v2 metrics {v2:02x?}");
    for unified in [false, true] {
        prop_assert!(crate::stats::to_any(event, unified).is_ok());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn runtime_options(any in options_any()) {
        check_options(Some(&any));
    }

    /// CRI's options naming a TOML file (written here) with random lines.
    #[test]
    fn cri_options_file(lines in prop::collection::vec((text(), text(), text()), 0..6)) {
        let dir = std::env::temp_dir().join(format!("corten-shim-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("options.toml");
        let toml: String = lines
            .iter()
            .map(|(k, sep, v)| format!("{k}{}{v}\n", if sep.is_empty() { " = " } else { sep }))
            .collect();
        std::fs::write(&file, &toml).expect("write the options file");
        let path = file.to_str().expect("UTF-8 temp dir").as_bytes().to_vec();
        let mut value = vec![0x0a, 1, b't', 0x12];
        varint(&mut value, path.len() as u64);
        value.extend_from_slice(&path);
        let any = Any { type_url: CRI_OPTIONS.into(), value, ..Default::default() };
        let o = options::runc_options(Some(&any));
        let _ = std::fs::remove_dir_all(&dir);
        let o = o.expect("the file is there");
        prop_assert!(o.is_some());
        check_runtime(o.as_ref());
        check_runtime(Some(&options::parse_toml_options(&toml)));
    }

    #[test]
    fn cri_options_message(b in bytes()) {
        let _ = options::config_path(&b);
    }

    #[test]
    fn create_request(b in bytes(), any in prop::option::of(options_any()), id in text()) {
        if let Ok(req) = CreateTaskRequest::parse_from_bytes(&b) {
            check_options(req.options.as_ref());
        }
        // A well-formed request with random options.
        let req = CreateTaskRequest { id, options: any.into(), ..Default::default() };
        let again = CreateTaskRequest::parse_from_bytes(&req.write_to_bytes().expect("encode"))
            .expect("decode what was encoded");
        check_options(again.options.as_ref());
    }

    #[test]
    fn exec_and_update_requests(b in bytes()) {
        if let Ok(req) = ExecProcessRequest::parse_from_bytes(&b) {
            let _ = req.spec.as_ref().map(|s| s.value.len());
        }
        if let Ok(req) = UpdateTaskRequest::parse_from_bytes(&b) {
            let _ = req.resources.as_ref().map(|r| r.value.len());
        }
    }

    /// The `-info` action's stdin.
    #[test]
    fn info_options(b in prop_oneof![bytes(), options_any().prop_map(|a| a.write_to_bytes().expect("encode"))]) {
        if let Ok(any) = Any::parse_from_bytes(&b) {
            check_options(Some(&any));
        }
    }

    #[test]
    fn saved_runtime(v in json(&["binary", "root", "systemd_cgroup", "no_pivot", "no_new_keyring"]), b in bytes()) {
        let _ = options::decode_saved(&b);
        if let Some(rt) = options::decode_saved(&serde_json::to_vec(&v).expect("encode")) {
            let saved = serde_json::to_vec(&rt).expect("encode the runtime");
            prop_assert_eq!(options::decode_saved(&saved), Some(rt));
        }
    }

    #[test]
    fn bundle_config(v in json(CONFIG_KEYS), b in bytes()) {
        for data in [serde_json::to_vec(&v).expect("encode"), b] {
            let _ = crate::tasks::own_pid_namespace(&data);
            let _ = crate::service::group_of(&data);
        }
    }

    #[test]
    fn runtime_log(records in prop::collection::vec(prop_oneof![json(CONFIG_KEYS).prop_map(|v| v.to_string()), text()], 0..6)) {
        let log = records.join("\n");
        if let Some(msg) = crate::runtime::last_error_in(&log) {
            prop_assert!(log.contains("error"), "{msg:?} from {log:?}");
        }
    }

    #[test]
    fn stats_event(event in prop_oneof![stats(), json(STATS_KEYS)]) {
        check_stats(&event)?;
    }
}
