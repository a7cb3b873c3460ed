//! The `provisioner` binary, under a name the system tests can find.
fn main() -> std::process::ExitCode {
    services::cli::main()
}
