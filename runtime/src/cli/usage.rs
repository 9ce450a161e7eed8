//! Usage errors and help, answered as runc answers them, since scripts and
//! clients see the exit code and the error line:
//!
//! - a wrong number of arguments: `Incorrect Usage.` and the command's help
//!   on stdout, the error line `<argv0>: "kill" requires a maximum of 2
//!   argument(s)` in the log format, exit 1;
//! - an unknown flag: `Incorrect Usage: flag provided but not defined:
//!   -bogus` and the help on stdout, the error line, exit 1;
//! - an unknown command (also with `-h`): `No help topic for 'foo'`, exit 3;
//! - no command at all: the help on stdout, exit 0; `help [COMMAND]` (or
//!   `h`) prints the help of corten or of the command.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::logging;

/// How many positional arguments each command takes, as runc's
/// `checkArgs` counts them: (name, minimum, maximum).
const ARITY: [(&str, usize, usize); 19] = [
    ("create", 1, 1),
    ("start", 1, 1),
    ("state", 1, 1),
    ("kill", 1, 2),
    ("delete", 1, 1),
    ("run", 1, 1),
    ("list", 0, 0),
    ("spec", 0, 0),
    ("exec", 1, usize::MAX),
    ("ps", 1, usize::MAX),
    ("features", 0, 0),
    ("check", 0, 0),
    ("pause", 1, 1),
    ("resume", 1, 1),
    ("update", 1, 1),
    ("events", 1, 1),
    ("checkpoint", 1, 1),
    ("restore", 1, 1),
    ("ps-list", 0, 0),
];

/// runc's `checkArgs` message for `command` given too few (`few`) or too
/// many arguments.
fn arity_message(argv0: &str, command: &str, few: bool) -> String {
    let (_, min, max) = ARITY
        .iter()
        .find(|(n, _, _)| *n == command)
        .copied()
        .unwrap_or((command, 1, 1));
    let what = if min == max {
        format!("exactly {min}")
    } else if few {
        format!("a minimum of {min}")
    } else {
        format!("a maximum of {max}")
    };
    format!("{argv0}: {command:?} requires {what} argument(s)")
}

/// The global flags that take a value (in the next argument unless given
/// as `--flag=value`).
const VALUE_FLAGS: [&str; 5] = [
    "--root",
    "--log",
    "--log-format",
    "--criu",
    "--cgroup-manager",
];

/// The first argument after the global flags: the command's name.
fn first_positional(args: &[String]) -> Option<&str> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if VALUE_FLAGS.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// Whether `-v`/`--version` comes among the global flags, before any
/// command.
fn version_before_command(args: &[String]) -> bool {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-v" | "--version" => return true,
            f if VALUE_FLAGS.contains(&f) => {
                it.next();
            }
            f if !f.starts_with('-') => return false,
            _ => {}
        }
    }
    false
}

/// The command named in `args`, if it is one corten has.
fn command_of(args: &[String]) -> Option<String> {
    let name = first_positional(args)?;
    let cli = super::command();
    let found = cli
        .get_subcommands()
        .find(|c| c.get_name() == name || c.get_all_aliases().any(|a| a == name))
        .map(|c| c.get_name().to_string());
    found
}

/// The help text of `command` (or of corten, with the global options).
fn help_text(command: Option<&str>) -> String {
    let Some(command) = command else {
        return super::top_level_command().render_long_help().to_string();
    };
    // Built, so that the usage line says `corten run`, not `run`.
    let mut cli = super::command();
    cli.build();
    match cli.find_subcommand_mut(command) {
        Some(sub) => sub.render_long_help().to_string(),
        None => super::top_level_command().render_long_help().to_string(),
    }
}

/// clap's "did you mean" for a mistyped flag: ` (did you mean
/// '--bundle'?)`, or nothing. runc has no suggestions: this only adds to
/// the end of its message, whose words stay as they are.
fn suggestion(e: &clap::Error) -> String {
    let found = match e.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        // Ordered by confidence, the best last.
        Some(ContextValue::Strings(v)) => v.last().cloned(),
        _ => None,
    };
    found.map_or_else(String::new, |s| format!(" (did you mean '{s}'?)"))
}

/// A command name close to `name`, for `strat` and `help strat` (clap's
/// own pick for `strat` is `create`).
fn similar_command(name: &str) -> String {
    let cli = super::command();
    let best = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name())
        .filter(|c| close(name, c))
        .min_by_key(|c| c.len().abs_diff(name.len()));
    best.map_or_else(String::new, |c| format!(" (did you mean '{c}'?)"))
}

/// Whether two names are one edit (or one swap of neighbours) apart, or
/// one is a prefix of the other.
fn close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if b.starts_with(&a) || a.starts_with(&b) {
        return true;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ra, rb) = (a.len() - prefix - suffix, b.len() - prefix - suffix);
    let swapped = ra == 2 && rb == 2 && a[prefix] == b[prefix + 1] && a[prefix + 1] == b[prefix];
    swapped || ra.max(rb) <= 1
}

/// Answers `corten` without a command, and `corten help [COMMAND]`;
/// `None` when `args` is neither.
pub fn help_command(args: &[String]) -> Option<ExitCode> {
    if args.len() == 1 {
        print!("{}", help_text(None));
        return Some(ExitCode::SUCCESS);
    }
    if version_before_command(args) {
        // runc (urfave/cli) answers --version before looking at a command:
        // `runc --version x` prints the version.
        println!("{}", super::VERSION);
        return Some(ExitCode::SUCCESS);
    }
    let name = first_positional(args)?;
    let pos = args.iter().position(|a| a == name)?;
    match name {
        "help" | "h" => match args.get(pos + 1) {
            None => {
                print!("{}", help_text(None));
                Some(ExitCode::SUCCESS)
            }
            Some(c) if super::command().find_subcommand(c).is_some() => {
                print!("{}", help_text(Some(c)));
                Some(ExitCode::SUCCESS)
            }
            Some(c) => {
                init_logging_from(args);
                Some(no_help_topic(c, &similar_command(c)))
            }
        },
        _ => None,
    }
}

/// runc's words for an unknown command (exit 3), and corten's suggestion.
fn no_help_topic(command: &str, suggestion: &str) -> ExitCode {
    logging::error(&format!("No help topic for '{command}'{suggestion}"));
    ExitCode::from(3)
}

/// Reports a clap parse error of `args` the way runc reports its usage
/// errors, and returns the exit code.
pub fn report(e: &clap::Error, args: &[String]) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        if command_of(args).is_none() {
            // The parsed command hides the global options; the top-level
            // help shows them (`-h`: clap's summary, `--help`: all).
            if args.iter().any(|a| a == "-h") {
                print!("{}", super::top_level_command().render_help());
            } else {
                print!("{}", help_text(None));
            }
        } else {
            let _ = e.print();
        }
        return ExitCode::SUCCESS;
    }
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let command = command_of(args);
    if e.kind() == ErrorKind::InvalidSubcommand
        || (command.is_none() && !invalid.is_empty() && !invalid.starts_with('-'))
    {
        let name = match e.get(ContextKind::InvalidSubcommand) {
            Some(ContextValue::String(s)) => s.clone(),
            _ => invalid,
        };
        init_logging_from(args);
        return no_help_topic(&name, &similar_command(&name));
    }
    // Global flags are parsed before the log options apply, as in runc.
    if command.is_some() {
        init_logging_from(args);
    }
    let argv0 = args.first().map_or("corten", String::as_str);
    let name = command.as_deref().unwrap_or_default();
    let (head, msg) = match e.kind() {
        ErrorKind::UnknownArgument if invalid.starts_with('-') => {
            let flag = format!("-{}", invalid.trim_start_matches('-'));
            let flag = flag.split('=').next().unwrap_or_default().to_string();
            let msg = format!("flag provided but not defined: {flag}{}", suggestion(e));
            (format!("Incorrect Usage: {msg}"), msg)
        }
        ErrorKind::UnknownArgument => (
            "Incorrect Usage.".to_string(),
            arity_message(argv0, name, false),
        ),
        ErrorKind::MissingRequiredArgument => (
            "Incorrect Usage.".to_string(),
            arity_message(argv0, name, true),
        ),
        _ => {
            // A bad value (`--preserve-fds x`): clap's first line.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let msg = first.trim_start_matches("error: ").to_string();
            (format!("Incorrect Usage: {msg}"), msg)
        }
    };
    println!("{head}\n\n{}", help_text(command.as_deref()));
    logging::error(&msg);
    ExitCode::FAILURE
}

/// Sets up logging from `--log` and `--log-format` found in `args`, for an
/// error reported before the command line could be parsed.
fn init_logging_from(args: &[String]) {
    let mut log = None;
    let mut format = logging::Format::Text;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match flag {
            "--log" => log = value().map(std::path::PathBuf::from),
            "--log-format" if value().as_deref() == Some("json") => {
                format = logging::Format::Json;
            }
            _ => {}
        }
    }
    let _ = logging::init(log, format, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_messages_are_runcs() {
        assert_eq!(
            arity_message("runc", "kill", false),
            r#"runc: "kill" requires a maximum of 2 argument(s)"#
        );
        assert_eq!(
            arity_message("/usr/sbin/runc", "create", true),
            r#"/usr/sbin/runc: "create" requires exactly 1 argument(s)"#
        );
        assert_eq!(
            arity_message("corten", "ps", true),
            r#"corten: "ps" requires a minimum of 1 argument(s)"#
        );
    }

    #[test]
    fn the_command_is_the_first_name_after_the_global_flags() {
        let a = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            command_of(&a(&["corten", "--root", "/r", "kill", "x"])).as_deref(),
            Some("kill")
        );
        assert_eq!(command_of(&a(&["corten", "--bogus"])), None);
    }
}
