//! The command line: flags, subcommands, and the mapping of every outcome to an exit code.

use crate::engine::{Limits, PolicyEngine};
use crate::error::{RunError, exit};
use crate::preview::{self, PreviewOptions};
use crate::render::OutputFormat;
use clap::{Args, Parser, Subcommand};
use policy_core::time::Timestamp;
use std::io::Write;
use std::path::PathBuf;

/// Runs the Foundry VTT platform policy: previews routing decisions from files, and (in a cluster) runs the
/// Kratix workflows of the FoundryLicense and FoundryInstance Promises.
#[derive(Debug, Parser)]
#[command(name = "host-runner", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 decided (warnings included), 1 internal or output error, 2 usage, \
3 invalid input, 4 policy module failed, 5 Kubernetes API or service failed.";

/// How the policy module is loaded and limited.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Use this policy module instead of the embedded one (an OPA-ABI `.wasm`).
    #[arg(long, global = true, value_name = "FILE")]
    pub module: Option<PathBuf>,
    /// Fuel per evaluation (about one unit per wasm instruction).
    #[arg(long, global = true, value_name = "UNITS")]
    pub fuel: Option<u64>,
    /// Memory limit per evaluation, in MiB.
    #[arg(long, global = true, value_name = "MIB")]
    pub memory_mib: Option<usize>,
}

impl EngineArgs {
    /// Loads the engine these flags ask for.
    pub fn load(&self) -> Result<PolicyEngine, RunError> {
        let mut limits = Limits::default();
        if let Some(fuel) = self.fuel {
            limits.fuel = fuel;
        }
        if let Some(mib) = self.memory_mib {
            limits.memory_bytes = mib.saturating_mul(1 << 20);
        }
        Ok(match &self.module {
            Some(path) => PolicyEngine::from_file(path, limits)?,
            None => PolicyEngine::embedded(limits)?,
        })
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide the routing of every license in YAML files, with no cluster.
    Preview(PreviewArgs),
    /// Serve the browser preview (built by `cargo xtask build-web`) on a local address.
    ServePreview(ServePreviewArgs),
}

/// `serve-preview` flags.
#[derive(Debug, Args)]
pub struct ServePreviewArgs {
    /// Address to listen on. Loopback by default; the page needs no one else.
    #[arg(long, value_name = "ADDR", default_value = crate::serve::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// The directory to serve (what `cargo xtask build-web` wrote).
    #[arg(long, value_name = "DIR", default_value = crate::serve::DEFAULT_DIR)]
    pub dir: PathBuf,
}

/// `preview` flags.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// YAML files or directories (read recursively) of Kubernetes objects.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// What a live run would measure: `now` (RFC 3339) and `players` per instance.
    #[arg(long, value_name = "FILE")]
    pub observations: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Also write, per license, `<DIR>/<namespace>/<license>/{output,metadata}` as the Kratix pipeline would.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The current time, as the policy wants it.
pub fn clock() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_clamped(secs)
}

/// Runs the command line and returns the process exit code.
pub fn main_with(args: impl IntoIterator<Item = std::ffi::OsString>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { exit::OK };
        }
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    match run(&cli, &mut stdout, &mut stderr) {
        Ok(()) => exit::OK,
        Err(e) => {
            let _ = stderr.write_all(e.report().as_bytes());
            e.exit_code()
        }
    }
}

fn run(cli: &Cli, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Result<(), RunError> {
    match &cli.command {
        Command::Preview(args) => {
            let engine = cli.engine.load()?;
            let options = PreviewOptions {
                paths: args.paths.clone(),
                observations: args.observations.clone(),
                output: args.output,
                out_dir: args.out.clone(),
            };
            preview::run(&engine, &options, clock(), stdout, stderr).map(|_| ())
        }
        Command::ServePreview(args) => {
            let server = crate::serve::Server::bind(args.listen, &args.dir)?;
            let addr = server.local_addr()?;
            if !addr.ip().is_loopback() {
                let _ = writeln!(stderr, "warning: serving on {addr}, which other machines can reach");
            }
            let _ = writeln!(stdout, "serving {} at http://{addr}/ (Ctrl-C stops)", server.root().display());
            let _ = stdout.flush();
            server.run();
            Ok(())
        }
    }
}
