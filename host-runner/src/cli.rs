//! The command line: flags, subcommands, and the mapping of every outcome to an exit code.

use crate::catalog;
use crate::cluster::{RECONCILE_LABEL, Recorded, Snapshot};
use crate::engine::{Limits, PolicyEngine};
use crate::error::{RunError, exit};
use crate::kratix::{self, KratixDirs, KratixEnv, Run};
use crate::kube::{KubeClient, LiveCluster};
use crate::policy::{Policy, PolicyError};
use crate::preview::{self, PreviewOptions};
use crate::probe::{HttpFetcher, NoFetch, ProbeSettings};
use crate::render::OutputFormat;
use crate::{monitor, standby};
use clap::{Args, Parser, Subcommand};
use policy_core::api::Timestamp;
use policy_core::api::catalog::CatalogCall;
use policy_core::api::migrate::LegacySettings;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    /// Loads the policy these flags ask for.
    pub fn load(&self) -> Result<Policy, RunError> {
        let mut limits = Limits::default();
        if let Some(fuel) = self.fuel {
            limits.fuel = fuel;
        }
        if let Some(mib) = self.memory_mib {
            limits.memory_bytes = mib.saturating_mul(1 << 20);
        }
        Ok(Policy::new(match &self.module {
            Some(path) => PolicyEngine::from_file(path, limits)?,
            None => PolicyEngine::embedded(limits)?,
        }))
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide the routing of every license in YAML files, with no cluster.
    Preview(PreviewArgs),
    /// Rewrite the existing platform's licenses and instances in this platform's format, each change explained;
    /// no data is moved.
    Migrate(MigrateArgs),
    /// Run the Kratix workflow the environment names (in a pipeline container), or offline from a snapshot.
    Kratix(KratixArgs),
    /// List the Foundry release catalog: every release, and what `latest` and each channel resolve to.
    Catalog(CatalogArgs),
    /// Serve the browser preview (built by `cargo xtask build-web`) on a local address.
    ServePreview(ServePreviewArgs),
    /// Serve the standby page of every standby hostname, with the "Request activation" button.
    StandbyPage(StandbyArgs),
    /// Poll the Foundry server in this pod and write its players into its FoundryInstance status (a sidecar).
    Monitor(MonitorArgs),
}

/// `standby-page` flags.
#[derive(Debug, Args)]
pub struct StandbyArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Kubeconfig to use instead of the in-cluster service account.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Offer activation (needs the activation RBAC: create requests, patch licenses); without it no license
    /// shows the button.
    #[arg(long)]
    pub activation: bool,
    /// Seconds between two reviews of the activation requests.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub review_interval: u64,
    /// Seconds a CSRF token is valid (at least; at most twice this).
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub token_lifetime: u64,
    /// Page views served per client per minute.
    #[arg(long, default_value_t = 300, value_name = "N")]
    pub page_limit: u32,
    /// POSTs accepted per client per minute.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub client_limit: u32,
    /// Activations and requests accepted per instance per hour.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub instance_limit: u32,
    /// Count clients by the last X-Forwarded-For entry (the address the Gateway in front appended) instead of
    /// the peer address. Only behind a proxy that appends it: anyone else can write that header.
    #[arg(long)]
    pub trust_forwarded_for: bool,
    /// Timeout of each Kubernetes API call, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub api_timeout: u64,
    /// Objects of one kind held per namespace; a namespace with more gets 503 on its own hosts.
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub namespace_objects: usize,
    /// KiB of objects of one kind held per namespace; a namespace with more gets 503 on its own hosts.
    #[arg(long, default_value_t = 2_048, value_name = "KIB")]
    pub namespace_kib: usize,
    /// MiB of objects of one kind held in all.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub store_mib: usize,
    /// Connections held at once; more are closed at once.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections: usize,
    /// Objects of one kind a (re)list may deliver before it is abandoned (and retried later).
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    pub list_limit: usize,
    /// Seconds a (re)list may take before it is abandoned (and retried later).
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub list_deadline: u64,
    /// Policy evaluations at once (default: the cores this process may use).
    #[arg(long, value_name = "N")]
    pub evaluations: Option<usize>,
}

/// `monitor` flags.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The FoundryInstance this pod runs.
    #[arg(long, env = "FOUNDRY_INSTANCE", value_name = "NAME")]
    pub instance: String,
    /// Its namespace.
    #[arg(long, env = "FOUNDRY_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: String,
    /// Foundry's status endpoint.
    #[arg(long, default_value = policy_core::api::monitor::DEFAULT_STATUS_URL, value_name = "URL")]
    pub status_url: String,
    /// Seconds between polls while they succeed.
    #[arg(long, default_value_t = policy_core::api::monitor::DEFAULT_INTERVAL_SECONDS, value_name = "SECS")]
    pub interval: u64,
    /// Longest wait between polls while Foundry does not answer, in seconds.
    #[arg(long, default_value_t = policy_core::api::monitor::DEFAULT_MAX_BACKOFF_SECONDS, value_name = "SECS")]
    pub max_backoff: u64,
    /// Timeout of each poll, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub probe_timeout: u64,
    /// Kubeconfig to use instead of the in-cluster service account.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Timeout of each Kubernetes API call, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub api_timeout: u64,
    /// Stop after this many polls (default: run for ever).
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,
}

/// `kratix` flags.
#[derive(Debug, Args)]
pub struct KratixArgs {
    /// Directory holding `object.yaml`.
    #[arg(long, env = "KRATIX_INPUT_DIR", default_value = "/kratix/input", value_name = "DIR")]
    pub input_dir: PathBuf,
    /// Directory the output manifests are written to.
    #[arg(long, env = "KRATIX_OUTPUT_DIR", default_value = "/kratix/output", value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Directory `status.yaml` is written to.
    #[arg(long, env = "KRATIX_METADATA_DIR", default_value = "/kratix/metadata", value_name = "DIR")]
    pub metadata_dir: PathBuf,
    /// Run without a cluster: read cluster objects from `--snapshot`, make no API calls and no probes, and print
    /// the changes a live run would make.
    #[arg(long, requires = "snapshot")]
    pub offline: bool,
    /// YAML file or directory of the cluster objects an offline run sees.
    #[arg(long, value_name = "PATH", requires = "offline")]
    pub snapshot: Option<PathBuf>,
    /// Known player counts and `now` (as for `preview`); live runs probe only what this does not give.
    #[arg(long, value_name = "FILE")]
    pub observations: Option<PathBuf>,
    /// Kubeconfig to use instead of the in-cluster service account.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Timeout of each Kubernetes API call, in seconds (each call is retried up to 3 times).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub api_timeout: u64,
    /// Timeout of the Foundry player probe, in seconds.
    #[arg(long, default_value_t = 3, value_name = "SECS")]
    pub probe_timeout: u64,
    /// Connect player probes to HOST:PORT instead of the instance Service (the Host header is kept).
    #[arg(long, value_name = "HOST:PORT")]
    pub connect_to: Option<String>,
    /// A release catalog (YAML or JSON) that replaces or extends the shipped one. Without it, the file named by
    /// `FOUNDRY_RELEASE_CATALOG` is used when it exists.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
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
    /// Also write, per license and instance, `<DIR>/<namespace>/<plural>/<name>/{output,metadata}` as their Kratix
    /// workflows would.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A release catalog (YAML or JSON) that replaces or extends the shipped one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

/// `migrate` flags.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// YAML files or directories (read recursively) of the existing platform's objects.
    #[arg(required_unless_present = "live", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Read the objects from the cluster instead (every namespace), with the kubeconfig's credentials (in a pod,
    /// its service account): licenses, instances and, when their CRD is installed, FoundryPasswords.
    #[arg(long, conflicts_with = "paths")]
    pub live: bool,
    /// Kubeconfig for `--live` (default: the service account, `$KUBECONFIG`, `~/.kube/config`).
    #[arg(long, value_name = "FILE", requires = "live")]
    pub kubeconfig: Option<PathBuf>,
    /// Timeout of each Kubernetes API call, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub api_timeout: u64,
    /// The existing platform's NFS server (its instance pipeline's `NFS_SERVER_HOST`); needed for NFS instances.
    #[arg(long, value_name = "HOST")]
    pub nfs_server: Option<String>,
    /// The existing platform's NFS base path (its `NFS_BASE_PATH`); needed for NFS instances without `nfsBasePath`.
    #[arg(long, value_name = "PATH")]
    pub nfs_base: Option<String>,
    /// Output format of the report.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Write the migrated objects to `<DIR>/<namespace>/<plural>/<name>.yaml` (replacing what the directory held).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `catalog` flags.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// A release catalog (YAML or JSON) that replaces or extends the shipped one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
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
    // Not locked for the whole run: the services log to stderr from their worker threads.
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
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
            let policy = cli.engine.load()?;
            let options = PreviewOptions {
                paths: args.paths.clone(),
                observations: args.observations.clone(),
                output: args.output,
                out_dir: args.out.clone(),
                catalog: catalog::read(args.catalog.as_deref(), None)?,
            };
            preview::run(&policy, &options, clock(), stdout, stderr).map(|_| ())
        }
        Command::Migrate(args) => {
            let policy = cli.engine.load()?;
            let objects = if args.live {
                let rt = runtime()?;
                let timeout = std::time::Duration::from_secs(args.api_timeout.max(1));
                let client = rt.block_on(KubeClient::connect(args.kubeconfig.as_deref(), timeout))?;
                rt.block_on(crate::migrate::read_live(&client))?
            } else {
                crate::load::load_paths(&args.paths)?
            };
            let options = crate::migrate::MigrateOptions {
                objects,
                settings: LegacySettings { nfs_server: args.nfs_server.clone(), nfs_base: args.nfs_base.clone() },
                output: args.output,
                out_dir: args.out.clone(),
            };
            crate::migrate::run(&policy, &options, stdout).map(|_| ())
        }
        Command::Kratix(args) => run_kratix(cli, args, stdout, stderr),
        Command::Catalog(args) => {
            let policy = cli.engine.load()?;
            let call = CatalogCall { catalog: catalog::read(args.catalog.as_deref(), None)? };
            let listing = policy.catalog(&call).map_err(|e| match e {
                PolicyError::Engine(e) => RunError::Policy(e),
                PolicyError::Refused(d) => RunError::Invalid(
                    d.into_iter()
                        .map(|diagnostic| crate::error::Located { diagnostic, source: args.catalog.clone() })
                        .collect(),
                ),
            })?;
            let text = crate::render::catalog(&listing, args.output);
            stdout
                .write_all(text.as_bytes())
                .map_err(|e| RunError::Output { path: "<stdout>".into(), reason: e.to_string() })
        }
        Command::ServePreview(args) => {
            let server = crate::serve::Server::bind(args.listen, &args.dir)?;
            let addr = server.local_addr()?;
            if !addr.ip().is_loopback() {
                let _ = writeln!(stderr, "warning: serving on {addr}, which other machines can reach");
            }
            let _ = writeln!(stdout, "serving {} at http://{addr}/ (Ctrl-C stops)", server.root().display());
            let _ = stdout.flush();
            crate::http::init_logging();
            server.run()?;
            Ok(())
        }
        Command::StandbyPage(args) => run_standby(cli, args, stdout),
        Command::Monitor(args) => run_monitor(cli, args, stderr),
    }
}

fn runtime() -> Result<Arc<tokio::runtime::Runtime>, RunError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| RunError::Internal(format!("async runtime: {e}")))
}

fn run_standby(cli: &Cli, args: &StandbyArgs, stdout: &mut dyn Write) -> Result<(), RunError> {
    let policy = cli.engine.load()?;
    // Every core the process may use (`available_parallelism` reads the CPU affinity and cgroup quota).
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| RunError::Internal(format!("async runtime: {e}")))?;
    let api_timeout = Duration::from_secs(args.api_timeout.max(1));
    let cluster = rt.block_on(KubeClient::connect(args.kubeconfig.as_deref(), api_timeout))?;
    let options = standby::StandbyOptions {
        listen: args.listen,
        activation: args.activation,
        review_interval: Duration::from_secs(args.review_interval.max(1)),
        token_lifetime: Duration::from_secs(args.token_lifetime.max(1)),
        page_limit: args.page_limit,
        client_limit: args.client_limit,
        client_window: Duration::from_secs(60),
        instance_limit: args.instance_limit,
        instance_window: Duration::from_secs(3600),
        trust_forwarded_for: args.trust_forwarded_for,
        evaluations: args.evaluations.unwrap_or(cores).max(1),
        server: crate::http::ServerLimits {
            max_connections: args.max_connections.max(1),
            max_body: standby::MAX_BODY,
            ..crate::http::ServerLimits::default()
        },
        store: standby::store::StoreLimits {
            objects: args.namespace_objects.max(1),
            bytes: args.namespace_kib.saturating_mul(1024).max(1024),
            total_bytes: args.store_mib.saturating_mul(1 << 20).max(1 << 20),
            list_items: args.list_limit.max(1),
            list_deadline: Duration::from_secs(args.list_deadline.max(1)),
            ..standby::store::StoreLimits::default()
        },
    };
    crate::http::init_logging();
    let announce = |addr: std::net::SocketAddr| {
        let _ = writeln!(stdout, "standby-page: listening on {addr}");
        let _ = stdout.flush();
    };
    rt.block_on(standby::serve(policy, cluster, options, clock, announce)).map_err(|e| RunError::Usage(e.to_string()))
}

fn run_monitor(cli: &Cli, args: &MonitorArgs, stderr: &mut dyn Write) -> Result<(), RunError> {
    let policy = cli.engine.load()?;
    let rt = runtime()?;
    let api_timeout = Duration::from_secs(args.api_timeout.max(1));
    let cluster = rt.block_on(KubeClient::connect(args.kubeconfig.as_deref(), api_timeout))?;
    let fetcher = HttpFetcher::new(
        rt.clone(),
        ProbeSettings { timeout: Duration::from_secs(args.probe_timeout.max(1)), connect_to: None },
    );
    let settings = monitor::MonitorSettings {
        instance: args.instance.clone(),
        namespace: args.namespace.clone(),
        status_url: args.status_url.clone(),
        interval: args.interval,
        max_backoff: args.max_backoff,
        iterations: args.iterations,
    };
    rt.block_on(monitor::run(&policy, &cluster, &fetcher, &settings, &clock, stderr)).map_err(|e| match e {
        monitor::MonitorError::Policy(PolicyError::Engine(e)) => RunError::Policy(e),
        other => RunError::Usage(other.to_string()),
    })
}

fn run_kratix(cli: &Cli, args: &KratixArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Result<(), RunError> {
    let policy = cli.engine.load()?;
    let env = KratixEnv::read(|k| std::env::var(k).ok());
    let dirs = KratixDirs {
        input: args.input_dir.clone(),
        output: args.output_dir.clone(),
        metadata: args.metadata_dir.clone(),
    };
    let (observations, now) = kratix::base_observations(args.observations.as_deref(), clock())?;
    let catalog = catalog::read(args.catalog.as_deref(), std::env::var_os(catalog::CATALOG_ENV).map(PathBuf::from))?;
    let report = |summary: &kratix::Summary, out: &mut dyn Write| {
        for line in &summary.lines {
            let _ = writeln!(out, "{line}");
        }
    };
    if args.offline {
        let snapshot_path =
            args.snapshot.as_deref().ok_or_else(|| RunError::Usage("--offline needs --snapshot".into()))?;
        let snapshot = Snapshot::from_path(snapshot_path)?;
        let run = Run { policy: &policy, cluster: &snapshot, fetcher: &NoFetch, dirs, env, observations, now, catalog };
        let result = run.execute(stderr);
        for change in snapshot.recorded() {
            let _ = writeln!(stderr, "offline: {}", describe_change(&change));
        }
        return result.map(|summary| report(&summary, stdout));
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RunError::Internal(format!("async runtime: {e}")))?,
    );
    let cluster = LiveCluster::connect(rt.clone(), args.kubeconfig.as_deref(), Duration::from_secs(args.api_timeout))?;
    let settings =
        ProbeSettings { timeout: Duration::from_secs(args.probe_timeout), connect_to: args.connect_to.clone() };
    let fetcher = HttpFetcher::new(rt, settings);
    let run = Run { policy: &policy, cluster: &cluster, fetcher: &fetcher, dirs, env, observations, now, catalog };
    run.execute(stderr).map(|summary| report(&summary, stdout))
}

fn describe_change(change: &Recorded) -> String {
    match change {
        Recorded::Touch { namespace, name } => {
            format!("would label FoundryLicense {namespace}/{name} with {RECONCILE_LABEL}=true (re-route)")
        }
        Recorded::Status { target, status } => {
            format!("would merge into the status of {}/{}/{}: {status}", target.plural, target.namespace, target.name)
        }
        Recorded::TouchInstance { namespace, name } => {
            format!("would label FoundryInstance {namespace}/{name} with {RECONCILE_LABEL}=true (reconfigure)")
        }
        Recorded::InstanceStatus { namespace, name, status } => {
            format!("would merge into the status of foundryinstances/{namespace}/{name}: {status}")
        }
    }
}
