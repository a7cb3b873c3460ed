fn main() -> std::process::ExitCode {
    services::cli::main()
}
