//! The man pages' date: `SOURCE_DATE_EPOCH` (reproducible builds), else
//! the last commit's, else today.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    if let Some(date) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| {
        let out = Command::new("date")
            .args(["-u", "-d", &format!("@{s}"), "+%Y-%m-%d"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }) {
        println!("cargo:rustc-env=CORTEN_DOCGEN_DATE={date}");
        return;
    }
    let git = Command::new("git")
        .args(["log", "-1", "--format=%cs"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|d| !d.is_empty());
    let date = git.unwrap_or_else(|| {
        Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    });
    println!("cargo:rustc-env=CORTEN_DOCGEN_DATE={date}");
    // HEAD, and the branch it names (a commit changes the ref, not HEAD).
    println!("cargo:rerun-if-changed=../.git/HEAD");
    if let Ok(head) = std::fs::read_to_string("../.git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=../.git/{r}");
        }
    }
}
