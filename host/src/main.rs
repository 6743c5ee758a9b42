//! `kdhost`: parse the command line, run it (everything else is in the library).

fn main() -> std::process::ExitCode {
    kdhost::cli::main()
}
