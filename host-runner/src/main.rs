//! `host-runner`: see the library documentation and `host-runner --help`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(host_runner::cli::main_with(std::env::args_os()))
}
