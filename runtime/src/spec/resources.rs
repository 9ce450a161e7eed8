//! `linux.resources` (config-linux.md "Control groups"), and `linux.intelRdt`.
//! Every number has the width and sign of runc's Go struct (a `u16` weight,
//! an `i64` limit), so a value out of range is refused when the config is
//! decoded, with the field's path. `None` (absent or `null`) and zero both
//! mean "not set" to the cgroup writers, as in runc.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `linux.resources`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Device access rules, in order (absent: the device cgroup is left
    /// alone; empty: only the default devices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<DeviceCgroup>>,
    /// `memory`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// `cpu`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// `pids`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    /// `blockIO`
    #[serde(rename = "blockIO", skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIo>,
    /// `hugepageLimits`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hugepage_limits: Vec<HugepageLimit>,
    /// `network`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// `rdma`, by device name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rdma: BTreeMap<String, Rdma>,
    /// `unified`: cgroup v2 file name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unified: BTreeMap<String, String>,
}

impl Resources {
    /// Whether anything but device rules is set (what
    /// `--cgroup-manager disabled` cannot apply).
    pub fn has_limits(&self) -> bool {
        let nothing = Resources {
            devices: self.devices.clone(),
            ..Resources::default()
        };
        *self != nothing
    }
}

/// One of `linux.resources.devices`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeviceCgroup {
    /// Allow (else deny).
    #[serde(default)]
    pub allow: bool,
    /// `a`, `c` or `b` (default `a`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Major number (absent or -1: any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    /// Minor number (absent or -1: any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// `r`, `w`, `m` letters (default `rwm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

/// `linux.resources.memory`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Limit in bytes (-1: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Soft limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    /// Memory + swap limit in bytes (-1: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    /// Deprecated kernel memory limit (ignored, as by runc).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    /// Deprecated kernel TCP memory limit (ignored, as by runc).
    #[serde(rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<i64>,
    /// Swappiness (v1, 0..100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    /// Disable the OOM killer (v1).
    #[serde(rename = "disableOOMKiller", skip_serializing_if = "Option::is_none")]
    pub disable_oom_killer: Option<bool>,
    /// Hierarchical accounting (v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_hierarchy: Option<bool>,
    /// `update`: refuse a limit below the current usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_before_update: Option<bool>,
}

/// `linux.resources.cpu`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    /// Relative share (v1 shares; v2 weight by runc's conversion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    /// CFS quota in µs per period (-1: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    /// CFS burst in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// CFS period in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// Real-time runtime in µs (v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    /// Real-time period in µs (v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
    /// cpuset CPUs (`0-3,7`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// cpuset memory nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    /// `cpu.idle` (SCHED_IDLE for the cgroup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

/// `linux.resources.pids`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Pids {
    /// Maximum number of tasks (-1 or 0: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// `linux.resources.blockIO`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    /// Weight (10..1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Leaf weight (v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    /// Per-device weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    /// Per-device read bytes/s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    /// Per-device write bytes/s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    /// Per-device read operations/s.
    #[serde(
        rename = "throttleReadIOPSDevice",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    /// Per-device write operations/s.
    #[serde(
        rename = "throttleWriteIOPSDevice",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

/// One of `blockIO.weightDevice`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    /// Major number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    /// Minor number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Leaf weight (v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

impl WeightDevice {
    /// `major:minor`, when both are given.
    pub fn key(&self) -> Option<String> {
        Some(format!("{}:{}", self.major?, self.minor?))
    }
}

/// One of the `blockIO.throttle*Device` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ThrottleDevice {
    /// Major number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    /// Minor number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// The rate (0: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
}

impl ThrottleDevice {
    /// `major:minor`, when both are given.
    pub fn key(&self) -> Option<String> {
        Some(format!("{}:{}", self.major?, self.minor?))
    }
}

/// One of `linux.resources.hugepageLimits`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    /// Page size (`2MB`, `1GB`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<String>,
    /// Limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// `linux.resources.network`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Network {
    /// net_cls class id (v1).
    #[serde(rename = "classID", skip_serializing_if = "Option::is_none")]
    pub class_id: Option<u32>,
    /// net_prio priorities per interface (v1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<InterfacePriority>,
}

/// One of `network.priorities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct InterfacePriority {
    /// Interface name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

/// One device of `linux.resources.rdma`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    /// Maximum HCA handles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hca_handles: Option<u32>,
    /// Maximum HCA objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hca_objects: Option<u32>,
}

/// `linux.intelRdt` (decoded so that a malformed one is refused with its
/// path like any field; corten refuses every Intel RDT request).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntelRdt {
    /// The resctrl group.
    #[serde(rename = "closID", skip_serializing_if = "Option::is_none")]
    pub clos_id: Option<String>,
    /// L3 cache allocation schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l3_cache_schema: Option<String>,
    /// Memory bandwidth schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_bw_schema: Option<String>,
    /// Full schemata lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemata: Vec<String>,
    /// Cache monitoring.
    #[serde(rename = "enableCMT", skip_serializing_if = "Option::is_none")]
    pub enable_cmt: Option<bool>,
    /// Memory bandwidth monitoring.
    #[serde(rename = "enableMBM", skip_serializing_if = "Option::is_none")]
    pub enable_mbm: Option<bool>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::gojson::from_value_at;

    fn decode(v: serde_json::Value) -> Result<Resources, String> {
        from_value_at(v, "linux.resources").map_err(|e| e.to_string())
    }

    #[test]
    fn well_typed_resources_decode() {
        let r = decode(json!({
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
            "memory": {"limit": -1, "swap": 1_i64 << 40, "swappiness": null, "disableOOMKiller": true},
            "cpu": {"shares": 1024, "quota": -1, "cpus": "0-1"},
            "pids": {"limit": 10},
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
            "unified": {"memory.high": "max"},
            "someFutureField": {"anything": "goes"}
        }))
        .unwrap();
        assert_eq!(r.memory.as_ref().unwrap().swappiness, None);
        assert_eq!(r.devices.as_ref().unwrap().len(), 2);
        assert!(r.has_limits());
        assert_eq!(decode(json!({})).unwrap(), Resources::default());
        let only_devices = decode(json!({"devices": []})).unwrap();
        assert_eq!(only_devices.devices, Some(Vec::new()));
        assert!(!only_devices.has_limits());
    }

    #[test]
    fn a_wrong_type_names_the_field_with_go_s_type() {
        let e = |v| decode(v).unwrap_err();
        assert_eq!(
            e(json!({"memory": {"limit": "lots"}})),
            r#"linux.resources.memory.limit: invalid type: string "lots", expected int64"#
        );
        assert_eq!(
            e(json!({"devices": [{"allow": "yes"}]})),
            r#"linux.resources.devices[0].allow: invalid type: string "yes", expected a boolean"#
        );
        assert!(e(json!({"unified": {"cpu.max": 5}})).starts_with(
            "linux.resources.unified.cpu.max: invalid type: integer `5`, expected a string"
        ));
        // A map key with a line break (found by the fuzz target): escaped.
        assert!(e(json!({"rdma": {"x\ny": {"hcaHandles": -1}}}))
            .starts_with(r"linux.resources.rdma.x\ny.hcaHandles: "));
        assert_eq!(
            e(json!({"cpu": 3})),
            "linux.resources.cpu: invalid type: integer `3`, expected struct Cpu"
        );
        assert!(decode(json!([1])).is_err());
    }

    #[test]
    fn keys_fold_to_the_field_names_as_go_matches_them() {
        let r = decode(
            json!({"CPU": {"Shares": 512, "quota": null}, "Memory": {"LIMIT": 5},
            "unified": {"Memory.Max": "1"}, "devices": [{"Allow": true}], "Other": 1}),
        )
        .unwrap();
        let cpu = r.cpu.unwrap();
        assert_eq!((cpu.shares, cpu.quota), (Some(512), None));
        assert_eq!(r.memory.unwrap().limit, Some(5));
        assert_eq!(r.unified["Memory.Max"], "1");
        assert!(r.devices.unwrap()[0].allow);
    }

    #[test]
    fn numbers_must_fit_their_width_and_sign() {
        assert!(decode(json!({"cpu": {"shares": -1}})).is_err());
        assert!(decode(json!({"cpu": {"shares": 1.5}})).is_err());
        assert!(decode(json!({"blockIO": {"weight": 65535}})).is_ok());
        assert_eq!(
            decode(json!({"blockIO": {"weight": 65536}})).unwrap_err(),
            "linux.resources.blockIO.weight: invalid value: integer `65536`, expected uint16"
        );
        assert!(decode(json!({"network": {"classID": 4_294_967_296_u64}})).is_err());
        assert!(decode(json!({"memory": {"limit": u64::MAX}})).is_err());
    }
}
