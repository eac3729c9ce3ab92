fn main() -> std::process::ExitCode {
    sshkeep::cli::main()
}
