//! The `corten` command: see the library crate for the engine.

fn main() -> std::process::ExitCode {
    corten::cli::main()
}
