//! The man pages' date: the last commit's (reproducible builds), else
//! `SOURCE_DATE_EPOCH`, else today.
use std::process::Command;

fn main() {
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
    println!("cargo:rerun-if-changed=../.git/HEAD");
}
