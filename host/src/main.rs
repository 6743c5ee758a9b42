fn main() -> std::process::ExitCode {
    kdhost::cli::main()
}
