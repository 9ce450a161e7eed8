//! Parsing `/proc/self/mountinfo` and `/proc/self/status`.

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount point, unescaped.
    pub mount_point: String,
    /// Per-mount options (`rw`, `nosuid`, …).
    pub mount_options: Vec<String>,
    /// Optional fields (`shared:1`, `master:2`, `unbindable`).
    pub optional: Vec<String>,
    /// Filesystem type.
    pub fstype: String,
    /// Superblock options (`size=…`, `mode=…`).
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// The propagation this entry shows: `shared`, `slave`, `unbindable` or `private`.
    pub fn propagation(&self) -> Vec<&'static str> {
        let mut p = Vec::new();
        if self.optional.iter().any(|o| o.starts_with("shared:")) {
            p.push("shared");
        }
        if self.optional.iter().any(|o| o.starts_with("master:")) {
            p.push("slave");
        }
        if self.optional.iter().any(|o| o == "unbindable") {
            p.push("unbindable");
        }
        if p.is_empty() {
            p.push("private");
        }
        p
    }
}

/// Undo the octal escapes (`\040` for a space) of mountinfo paths.
pub fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse the whole mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    if fields.len() < 6 {
        return None;
    }
    let mut right = right.split(' ');
    let fstype = right.next()?.to_owned();
    let _source = right.next()?;
    let super_options = right.next().unwrap_or_default();
    Some(MountEntry {
        mount_point: unescape(fields[4]),
        mount_options: split_options(fields[5]),
        optional: fields[6..].iter().map(|s| (*s).to_owned()).collect(),
        fstype,
        super_options: split_options(super_options),
    })
}

fn split_options(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The current process's mounts.
pub fn mounts() -> Result<Vec<MountEntry>, String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))
}

/// The value of `key:` in `/proc/self/status`.
pub fn status_field(key: &str) -> Result<String, String> {
    let text = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("read /proc/self/status: {e}"))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        })
        .ok_or_else(|| format!("no {key} in /proc/self/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_optional_fields_and_options() {
        let text = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n\
                    37 35 0:5 / /dev rw,nosuid - tmpfs tmpfs rw,size=64k,mode=755\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, "/mnt/a b");
        assert_eq!(m[0].mount_options, vec!["rw", "noatime"]);
        assert_eq!(m[0].propagation(), vec!["shared", "slave"]);
        assert_eq!(m[1].fstype, "tmpfs");
        assert_eq!(m[1].super_options, vec!["rw", "size=64k", "mode=755"]);
        assert_eq!(m[1].propagation(), vec!["private"]);
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/a\\011b\\134c"), "/a\tb\\c");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\"), "/end\\");
    }
}
