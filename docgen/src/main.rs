//! `corten-docgen OUT_DIR`: writes corten's man pages (`OUT_DIR/man/corten.8`
//! and one `corten-<command>.8` per command) and shell completions
//! (`OUT_DIR/completions/corten.bash`, `_corten` for zsh, `corten.fish`),
//! all from the clap definitions the binary parses with, so they cannot
//! drift from it. `make build` runs it; `make install` and `make deb`
//! install what it wrote.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

fn main() -> io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| io::Error::other("usage: corten-docgen OUT_DIR"))?;
    let pages = man_pages(&out.join("man"))?;
    let shells = completions(&out.join("completions"))?;
    println!(
        "corten-docgen: {pages} man pages in {}, {shells} completions in {}",
        out.join("man").display(),
        out.join("completions").display()
    );
    Ok(())
}

/// The section-8 pages: corten's own (with the global options) and one per
/// command (its own options, as `corten help COMMAND` shows them).
fn man_pages(dir: &Path) -> io::Result<usize> {
    // Pages of commands that no longer exist must not be installed.
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    let date = env!("CORTEN_DOCGEN_DATE");
    let top = corten::cli::top_level_command()
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(
            "Each command has its own page: corten-create(8), corten-run(8), … \
             `corten check` reports whether this host can run corten's containers.",
        );
    let mut buf = Vec::new();
    clap_mangen::Man::new(top.clone())
        .section("8")
        .date(date)
        .manual("corten manual")
        .render(&mut buf)?;
    fs::write(dir.join("corten.8"), &buf)?;
    let mut count = 1;
    let mut cmd = corten::cli::command();
    cmd.build();
    for sub in cmd.get_subcommands() {
        // clap names are 'static; this program runs once and exits.
        let name: &'static str = format!("corten-{}", sub.get_name()).leak();
        let page = sub
            .clone()
            .name(name)
            .bin_name(format!("corten {}", sub.get_name()));
        let mut buf = Vec::new();
        clap_mangen::Man::new(page)
            .title(name.to_uppercase())
            .section("8")
            .date(date)
            .manual("corten manual")
            .render(&mut buf)?;
        fs::write(dir.join(format!("{name}.8")), &buf)?;
        count += 1;
    }
    Ok(count)
}

/// bash, zsh and fish completions of every command and flag.
fn completions(dir: &Path) -> io::Result<usize> {
    fs::create_dir_all(dir)?;
    let shells = [
        (Shell::Bash, "corten.bash"),
        (Shell::Zsh, "_corten"),
        (Shell::Fish, "corten.fish"),
    ];
    for (shell, file) in shells {
        let mut cmd = corten::cli::top_level_command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "corten", &mut buf);
        fs::write(dir.join(file), &buf)?;
    }
    Ok(shells.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn generated(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("corten-docgen-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        man_pages(&dir.join("man")).unwrap();
        completions(&dir.join("completions")).unwrap();
        dir
    }

    fn commands() -> Vec<String> {
        corten::cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect()
    }

    #[test]
    fn a_man_page_per_command_with_its_own_flags() {
        let dir = generated("man");
        let top = fs::read_to_string(dir.join("man/corten.8")).unwrap();
        assert!(
            top.contains(".TH corten 8"),
            "{}",
            &top[..200.min(top.len())]
        );
        for global in [
            "\\-\\-root",
            "\\-\\-log\\-format",
            "\\-\\-systemd\\-cgroup",
            "config.json",
        ] {
            assert!(top.contains(global), "corten.8 lacks {global}");
        }
        let commands = commands();
        assert!(commands.len() >= 18, "{commands:?}");
        for c in &commands {
            let page = fs::read_to_string(dir.join(format!("man/corten-{c}.8")))
                .unwrap_or_else(|e| panic!("corten-{c}.8: {e}"));
            assert!(
                page.contains(&format!(".TH CORTEN-{} 8", c.to_uppercase())),
                "corten-{c}.8 title"
            );
            // A command's page has its own options, not the global ones.
            assert!(
                !page.contains("\\-\\-log\\-format"),
                "corten-{c}.8 lists the global options"
            );
        }
        let run = fs::read_to_string(dir.join("man/corten-run.8")).unwrap();
        for flag in [
            "\\-\\-bundle",
            "\\-\\-detach",
            "\\-\\-console\\-socket",
            "\\-\\-pid\\-file",
        ] {
            assert!(run.contains(flag), "corten-run.8 lacks {flag}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn completions_complete_commands_and_flags() {
        let dir = generated("completions");
        let c = dir.join("completions");
        let zsh = fs::read_to_string(c.join("_corten")).unwrap();
        assert!(zsh.starts_with("#compdef corten"), "zsh: {}", &zsh[..40]);
        let fish = fs::read_to_string(c.join("corten.fish")).unwrap();
        for cmd in commands() {
            assert!(
                fish.contains(&format!("-a \"{cmd}\"")),
                "fish lacks the command {cmd}"
            );
        }
        // bash: what the completion offers for `corten st` and `corten run --bu`.
        let complete = |words: &str| {
            let script = format!(
                ". {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _corten corten \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 echo \"${{COMPREPLY[@]}}\"",
                c.join("corten.bash").display()
            );
            let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
            assert!(
                out.status.success(),
                "bash: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let st = complete("corten st");
        assert!(
            st.split(' ').any(|w| w == "start") && st.split(' ').any(|w| w == "state"),
            "{st:?}"
        );
        assert_eq!(complete("corten run --bu"), "--bundle");
        fs::remove_dir_all(&dir).unwrap();
    }
}
