//! The `candor` command: everything it does lives in [`candor::cli`].

fn main() -> std::process::ExitCode {
    candor::cli::main()
}
