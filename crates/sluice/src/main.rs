//! The `sluice` command line.
#![forbid(unsafe_code)]

mod admin;
mod convert;
mod demo;
mod explain;
mod graph;
mod kubernetes;
mod logging;
mod render;
mod route_test;
mod run;
mod status;
mod telemetry;

use clap::{Parser, Subcommand, ValueEnum};
use sluice_api::Duration;
use sluice_compile::{AnalyzeOptions, GatewayIdentity};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Istio-compatible ingress gateway: one binary, no control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum StatusOutput {
    Yaml,
    Json,
}

// Parsed once per process: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Check configuration files offline: Istio's validation rules and istioctl-analyze checks.
    Validate {
        /// Files or directories (read recursively: .yaml, .yml, .json).
        #[arg(required_unless_present = "codes")]
        paths: Vec<PathBuf>,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Namespace the gateway workload runs in (where credentialName Secrets are read).
        #[arg(long, default_value = "istio-system")]
        namespace: String,
        /// Suffix of fully-qualified service names.
        #[arg(long, default_value = "cluster.local")]
        domain_suffix: String,
        /// Also print info-level diagnostics (skipped objects).
        #[arg(long)]
        verbose: bool,
        /// List every diagnostic code with a one-line explanation.
        #[arg(long)]
        codes: bool,
    },
    /// Serve traffic: compile the configuration, listen, and reload on every change (and on
    /// SIGHUP). A configuration with errors is refused and the previous one keeps serving.
    Run {
        /// Configuration files or directories (watched).
        #[arg(long = "config", short = 'c', required_unless_present = "kubernetes")]
        config: Vec<PathBuf>,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Address listeners bind.
        #[arg(long, default_value = "0.0.0.0")]
        bind_address: std::net::IpAddr,
        #[command(flatten)]
        telemetry: telemetry::Args,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        admin: Box<AdminArgs>,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Try sluice with no files: the seed configuration, built-in echo backends, the gateway on
    /// 127.0.0.1:8080, the admin port (with `/ui`) on 127.0.0.1:15000.
    Demo {
        /// Port for the Gateway's port 80.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        log: LogArgs,
        #[command(flatten)]
        trace: telemetry::TraceArgs,
    },
    /// Print the compiled configuration as JSON, offline: what `/config_dump` on the admin port
    /// shows for the same files (listeners, route tables, clusters and endpoints).
    ConfigDump {
        /// Configuration files or directories.
        #[arg(long = "config", short = 'c', required = true)]
        config: Vec<PathBuf>,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Print the Gateway API objects (GatewayClass, Gateway, HTTPRoute) with the `status` sluice
    /// would write: conditions with the spec's reasons, listeners' attached routes.
    Status {
        /// Configuration files or directories.
        #[arg(long = "config", short = 'c', required = true)]
        config: Vec<PathBuf>,
        #[arg(short, long, value_enum, default_value_t = StatusOutput::Yaml)]
        output: StatusOutput,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Run route assertions (test files: a configuration and requests with what the gateway
    /// must do with each); exit 1 on any failure.
    Test {
        /// Test files (YAML; see the README for the format).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Draw the compiled routing: listeners, servers, hosts, routes, clusters, endpoints.
    Graph {
        /// Configuration files or directories.
        #[arg(long = "config", short = 'c', required = true)]
        config: Vec<PathBuf>,
        #[arg(short, long, value_enum, default_value_t = GraphFormat::Mermaid)]
        output: GraphFormat,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Show what the gateway would do with one request, offline: listener, virtual host, route,
    /// clusters and endpoints.
    Explain {
        /// Configuration files or directories.
        #[arg(long = "config", short = 'c', required = true)]
        config: Vec<PathBuf>,
        /// http, https, tcp or tls. TCP and TLS connections need no --host.
        #[arg(long, default_value = "http")]
        protocol: String,
        /// The Gateway (service) port the request arrives on.
        #[arg(long, default_value_t = 80)]
        port: u32,
        /// Host header (required for http and https).
        #[arg(long, required_if_eq_any([("protocol", "http"), ("protocol", "https")]))]
        host: Option<String>,
        /// SNI of the ClientHello (https and tls); default: the Host without its port.
        #[arg(long)]
        sni: Option<String>,
        #[arg(long, default_value = "/")]
        path: String,
        #[arg(long, default_value = "GET")]
        method: String,
        /// A request header, `name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Convert Ingress or Istio objects to the Kubernetes Gateway API: the objects on stdout,
    /// what the Gateway API cannot express as warnings on stderr (and comments in the output).
    Convert(convert::ConvertArgs),
}

/// Kubernetes mode: where the API server is and what to read from it.
#[derive(clap::Args)]
struct KubeArgs {
    /// Read the configuration from the Kubernetes API server (in-cluster config in a pod,
    /// else the kubeconfig) instead of files, and write Gateway API status as the elected
    /// leader.
    #[arg(long, conflicts_with = "config")]
    kubernetes: bool,
    /// A kubeconfig file (default: in-cluster, else KUBECONFIG or ~/.kube/config).
    #[arg(long, requires = "kubernetes")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, requires = "kubernetes")]
    context: Option<String>,
    /// Read namespaced objects only from these namespaces (default: all).
    #[arg(long, value_delimiter = ',', requires = "kubernetes")]
    watch_namespaces: Vec<String>,
    /// Namespaces whose Secrets are read (default: --namespace, where credentialName Secrets
    /// live). Secrets are never read cluster-wide.
    #[arg(long, value_delimiter = ',', requires = "kubernetes")]
    secret_namespaces: Vec<String>,
    /// The Lease (in --namespace) whose holder writes status; one writer among all replicas.
    #[arg(long, default_value = "sluice-status-leader")]
    leader_lease: String,
    /// This replica's name in the Lease (the downward API's pod name).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    /// Do not write status (another controller does, or read-only RBAC).
    #[arg(long)]
    no_status: bool,
}

/// The ports besides traffic, on Istio's gateway ports by default. Each takes an address
/// (`127.0.0.1:0` picks a free port, logged) or `off`.
#[derive(clap::Args)]
struct AdminArgs {
    /// Answer `GET /healthz/ready` here: 200 once every watcher has synced and a
    /// configuration serves, 503 before and from SIGTERM on.
    #[arg(long, default_value = "0.0.0.0:15021", value_parser = parse_listen)]
    ready_address: Listen,
    /// Answer `GET /stats/prometheus` here (Istio's metrics and sluice's own).
    #[arg(long, default_value = "0.0.0.0:15090", value_parser = parse_listen)]
    stats_address: Listen,
    /// The admin port: /ui, /config_dump, /clusters, /routes, /explain, /logging. It shows
    /// the whole configuration and changes the log level: keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:15000", value_parser = parse_listen)]
    admin_address: Listen,
}

/// An address to listen on, or none (`off`).
#[derive(Clone, Copy, Debug)]
struct Listen(Option<std::net::SocketAddr>);

fn parse_listen(s: &str) -> Result<Listen, String> {
    match s {
        "off" | "none" => Ok(Listen(None)),
        _ => s
            .parse()
            .map(|a| Listen(Some(a)))
            .map_err(|_| format!("\"{s}\" is neither ADDRESS:PORT nor off")),
    }
}

impl AdminArgs {
    fn options(&self, logging: logging::LogControl) -> admin::Options {
        admin::Options {
            ready_address: self.ready_address.0,
            stats_address: self.stats_address.0,
            admin_address: self.admin_address.0,
            ..admin::Options::new(logging)
        }
    }
}

/// Logs of the serving commands (stderr).
#[derive(clap::Args)]
struct LogArgs {
    #[arg(long, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    /// A tracing filter: `info`, `debug`, `sluice_proxy=debug,info`. RUST_LOG wins when set;
    /// the admin port's /logging changes it while running.
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// Who this gateway instance is.
#[derive(clap::Args)]
struct IdentityArgs {
    /// Workload labels Gateway selectors are matched against.
    #[arg(long, default_value = "istio=ingressgateway", value_parser = parse_labels)]
    gateway_labels: std::collections::BTreeMap<String, String>,
    /// Namespace the gateway runs in (the downward API's POD_NAMESPACE in a pod).
    #[arg(long, env = "POD_NAMESPACE", default_value = "istio-system")]
    namespace: String,
    /// Gateway port to bound port, e.g. `80=8080,443=8443`. Without it, a port of the instance's
    /// own Service (in --namespace, selecting --gateway-labels) binds its targetPort, as in Istio.
    #[arg(long, default_value = "", value_parser = parse_port_map)]
    port_map: std::collections::BTreeMap<u32, u32>,
    /// This instance's address: a ServiceEntry in --namespace with an endpoint here is its own
    /// Service (its ports are translated like a Kubernetes Service's).
    #[arg(long, env = "INSTANCE_IP")]
    instance_ip: Option<String>,
    /// This instance's locality, `region/zone/subzone`: with outlier detection, endpoints in
    /// the same subzone, then zone, then region take traffic first (Istio's locality failover).
    #[arg(long)]
    locality: Option<String>,
    /// Gateway API GatewayClass names whose Gateways this instance serves (besides classes
    /// whose controllerName is sluice.dev/gateway-controller or istio.io/gateway-controller).
    #[arg(long, value_delimiter = ',', default_value = "sluice,istio")]
    gateway_class: Vec<String>,
    /// Serve only these Gateway API Gateways (`[namespace/]name`, repeatable; the namespace
    /// defaults to `default`): one sluice process per Gateway.
    #[arg(long)]
    gateway: Vec<String>,
    /// Ingress classes served: the `kubernetes.io/ingress.class` annotation, or an
    /// `ingressClassName` no IngressClass in the configuration defines (IngressClasses whose
    /// controller is istio.io/ingress-controller or sluice.dev/ingress-controller are ours).
    #[arg(long, value_delimiter = ',', default_value = "istio,sluice")]
    ingress_class: Vec<String>,
    #[arg(long, default_value = "cluster.local")]
    domain_suffix: String,
    /// The mesh's workload certificates (cert-chain.pem, key.pem, root-cert.pem), for
    /// DestinationRules with ISTIO_MUTUAL.
    #[arg(long)]
    mesh_cert_dir: Option<PathBuf>,
}

/// Istio's pathNormalization modes (NONE is not offered: routes always see at least BASE).
#[derive(Clone, Copy, ValueEnum)]
enum PathMode {
    Base,
    MergeSlashes,
    DecodeAndMergeSlashes,
}

/// Edge limits (Envoy-like defaults).
#[derive(clap::Args)]
struct LimitArgs {
    /// Largest request header block; larger requests get 431.
    #[arg(long, default_value_t = 60)]
    max_request_headers_kb: usize,
    /// Most request headers; more get 431.
    #[arg(long, default_value_t = 100)]
    max_request_headers: usize,
    /// Time a client has to send its request headers, counted from accept (so a connection that
    /// sends nothing is closed after it); also the HTTP/1.1 keep-alive idle time.
    #[arg(long, default_value = "60s")]
    request_headers_timeout: Duration,
    /// A request body that sends nothing for this long gets 408 (Envoy's stream idle timeout).
    #[arg(long, default_value = "5m")]
    request_body_timeout: Duration,
    /// Open connections; more are shed (503 with retry-after on HTTP ports), never queued.
    #[arg(long, default_value_t = 65_536)]
    max_connections: usize,
    /// Open connections one client address may hold (no limit unless set).
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Above this resident memory (MiB), new requests and connections get 503 (no limit unless set).
    #[arg(long)]
    max_rss_mb: Option<u64>,
    /// Listen with SO_REUSEPORT, so a new instance (a binary upgrade) can bind the same ports and
    /// take over while this one drains on SIGTERM.
    #[arg(long)]
    reuse_port: bool,
    /// Path normalisation before routing, as Istio's meshConfig.pathNormalization.
    #[arg(long, value_enum, default_value_t = PathMode::Base)]
    path_normalization: PathMode,
    /// Time open requests get to finish when a listener goes away or on SIGTERM.
    #[arg(long, default_value = "10s")]
    drain_timeout: Duration,
    /// Upstream connect timeout (Istio's default is 10s).
    #[arg(long, default_value = "10s")]
    connect_timeout: Duration,
    /// Request bodies up to this size are kept for retries and mirrors; larger ones stream
    /// through and are tried once.
    #[arg(long, default_value_t = 64)]
    retry_buffer_kb: usize,
    /// Send mirrored requests with `Host: <host>-shadow`, as Istio before 1.28 did.
    #[arg(long)]
    mirror_host_suffix: bool,
}

impl LimitArgs {
    fn options(&self, bind_address: std::net::IpAddr) -> sluice_proxy::ServerOptions {
        sluice_proxy::ServerOptions {
            bind_address,
            max_request_headers_bytes: self.max_request_headers_kb * 1024,
            max_request_headers: self.max_request_headers,
            request_headers_timeout: self.request_headers_timeout.as_std(),
            request_body_timeout: self.request_body_timeout.as_std(),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_rss_bytes: self.max_rss_mb.map(|mb| mb * 1024 * 1024),
            reuse_port: self.reuse_port,
            path_normalization: match self.path_normalization {
                PathMode::Base => sluice_proxy::PathNormalization::Base,
                PathMode::MergeSlashes => sluice_proxy::PathNormalization::MergeSlashes,
                PathMode::DecodeAndMergeSlashes => {
                    sluice_proxy::PathNormalization::DecodeAndMergeSlashes
                }
            },
            drain_timeout: self.drain_timeout.as_std(),
            replay_buffer_bytes: self.retry_buffer_kb * 1024,
            mirror_host_suffix: self.mirror_host_suffix,
            upstream: sluice_proxy::UpstreamOptions {
                connect_timeout: self.connect_timeout.as_std(),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

impl IdentityArgs {
    fn identity(&self) -> GatewayIdentity {
        GatewayIdentity {
            labels: self.gateway_labels.clone(),
            namespace: self.namespace.clone(),
            domain_suffix: self.domain_suffix.clone(),
            port_map: self.port_map.clone(),
            instance_ip: self.instance_ip.clone(),
            locality: self.locality.clone(),
            gateway_classes: self.gateway_class.clone(),
            ingress_classes: self.ingress_class.clone(),
            gateway_names: self
                .gateway
                .iter()
                .map(|g| match g.split_once('/') {
                    Some(_) => g.clone(),
                    None => format!("default/{g}"),
                })
                .collect(),
            mesh_certs: self
                .mesh_cert_dir
                .clone()
                .map(|dir| sluice_compile::tls::MeshCerts { dir }),
        }
    }

    fn analyze(&self) -> AnalyzeOptions {
        AnalyzeOptions {
            domain_suffix: self.domain_suffix.clone(),
            gateway_namespace: self.namespace.clone(),
            now_unix: Some(now_unix()),
            mesh_certs: self.mesh_cert_dir.is_some(),
            ingress_classes: self.ingress_class.clone(),
        }
    }
}

fn parse_labels(s: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("\"{p}\" is not key=value"))
        })
        .collect()
}

fn parse_port_map(s: &str) -> Result<std::collections::BTreeMap<u32, u32>, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (a, b) = p
                .split_once('=')
                .ok_or_else(|| format!("\"{p}\" is not PORT=PORT"))?;
            Ok((
                a.trim().parse().map_err(|_| format!("bad port \"{a}\""))?,
                b.trim().parse().map_err(|_| format!("bad port \"{b}\""))?,
            ))
        })
        .collect()
}

/// jemalloc: the request path's short-lived allocations (heads, buffers, boxed handlers) cost
/// less than with glibc's malloc, and memory freed after a burst of connections goes back to
/// the system instead of staying in the heap.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            kube,
            identity,
            bind_address,
            telemetry,
            limits,
            admin,
            log,
        } => serve(&log, |logging| async move {
            let mut opts = limits.options(bind_address);
            let spans =
                telemetry.apply(&mut opts, &identity.gateway_labels, &identity.namespace)?;
            let mut config = run::Config {
                source: std::sync::Arc::new(sluice_source::Files::new(config)),
                analyze: identity.analyze(),
                identity: identity.identity(),
                must_compile_first: true,
                admin: admin.options(logging),
                on_served: None,
                debounce: None,
                spans,
            };
            if kube.kubernetes {
                kubernetes::configure(&kube, &identity, &mut config).await?;
            }
            run::serve(config, opts).await
        }),
        Command::Demo {
            port,
            admin,
            log,
            trace,
        } => serve(&log, |logging| {
            demo::demo(port, admin.options(logging), trace)
        }),
        Command::ConfigDump { config, identity } => {
            let store = match admitted(&config, &identity) {
                Ok(store) => store,
                Err(code) => return code,
            };
            let (snapshot, _) = sluice_compile::compile(&store, &identity.identity());
            out(&pretty(&sluice_compile::dump::dump(&snapshot)));
            ExitCode::SUCCESS
        }
        Command::Convert(args) => convert::run(&args),
        Command::Validate {
            paths,
            output,
            namespace,
            domain_suffix,
            verbose,
            codes,
        } => {
            if codes {
                for c in sluice_config::diag::CODES {
                    out(&format!("{}  {:<48} {}\n", c.code, c.name, c.summary));
                }
                return ExitCode::SUCCESS;
            }
            validate(
                &paths,
                output,
                AnalyzeOptions {
                    domain_suffix,
                    gateway_namespace: namespace,
                    now_unix: Some(now_unix()),
                    mesh_certs: false,
                    ..Default::default()
                },
                verbose,
            )
        }
        Command::Status {
            config,
            output,
            identity,
        } => {
            let store = match admitted(&config, &identity) {
                Ok(store) => store,
                Err(code) => return code,
            };
            let now = status::rfc3339(now_unix());
            let (objects, _) = sluice_compile::gateway_status::gateway_api_status(
                &store,
                &identity.identity(),
                &now,
            );
            let value = serde_json::to_value(&objects).unwrap_or_default();
            match output {
                StatusOutput::Json => out(&pretty(&value)),
                StatusOutput::Yaml => out(&status::yaml(&value)),
            }
            ExitCode::SUCCESS
        }
        Command::Test { files, identity } => route_tests(&files, &identity),
        Command::Graph {
            config,
            output,
            identity,
        } => {
            let store = match admitted(&config, &identity) {
                Ok(store) => store,
                Err(code) => return code,
            };
            let (snapshot, _) = sluice_compile::compile(&store, &identity.identity());
            out(&match output {
                GraphFormat::Mermaid => graph::mermaid(&snapshot),
                GraphFormat::Dot => graph::dot(&snapshot),
            });
            ExitCode::SUCCESS
        }
        Command::Explain {
            config,
            protocol,
            port,
            host,
            sni,
            path,
            method,
            headers,
            output,
            identity,
        } => {
            let question =
                match explain::Question::new(&protocol, port, host, sni, path, method, &headers) {
                    Ok(q) => q,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                };
            let store = match admitted(&config, &identity) {
                Ok(store) => store,
                Err(code) => return code,
            };
            let (snapshot, _) = sluice_compile::compile(&store, &identity.identity());
            let e = question.explain(&snapshot);
            match output {
                Output::Json => out(&pretty(&e)),
                Output::Text => out(&explain::text(&e)),
            }
            ExitCode::SUCCESS
        }
    }
}

/// The configuration at `config` as the gateway would admit it; errors printed, and the exit
/// code to leave with (2: unreadable, 1: refused).
fn admitted(config: &[PathBuf], identity: &IdentityArgs) -> Result<sluice_config::Store, ExitCode> {
    let loaded = sluice_config::load_paths(config).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let (store, diags) = sluice_compile::admit(&loaded, &identity.analyze());
    store.ok_or_else(|| {
        let errors: Vec<_> = diags.into_iter().filter(|d| d.is_error()).collect();
        eprint!("{}", render::text(&errors, &loaded.sources));
        eprintln!("error: the configuration has errors; the gateway would refuse it");
        ExitCode::from(1)
    })
}

/// `sluice test`: every file's cases against its own configuration.
fn route_tests(files: &[PathBuf], identity: &IdentityArgs) -> ExitCode {
    let (mut passed, mut failed) = (0, 0);
    for path in files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        let file: route_test::TestFile = match parse_test_file(&text) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {}:{e}", path.display());
                return ExitCode::from(2);
            }
        };
        let store = match admitted(&route_test::config_paths(path, &file), identity) {
            Ok(store) => store,
            Err(code) => return code,
        };
        let (snapshot, _) = sluice_compile::compile(&store, &identity.identity());
        let outcomes = route_test::run_cases(&file, &snapshot);
        let (text, f) = route_test::report(path, &outcomes);
        out(&text);
        failed += f;
        passed += outcomes.len() - f;
    }
    out(&format!("\n{passed} passed, {failed} failed\n"));
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A test file through sluice's own YAML reader: errors carry `line:column` and field paths.
fn parse_test_file(text: &str) -> Result<route_test::TestFile, String> {
    let (docs, errors) = sluice_config::yaml::parse(text);
    if let Some(e) = errors.first() {
        return Err(format!("{}:{}: {}", e.pos.line, e.pos.col, e.message));
    }
    let doc = docs.first().ok_or(" empty test file")?;
    sluice_config::de::from_node(&doc.root, &[]).map_err(|e| {
        let at =
            e.at.map(|(start, _)| format!("{}:{}", start.line, start.col))
                .unwrap_or_default();
        let path = sluice_config::yaml::path_to_string(&e.path);
        let help = e.help.map(|h| format!(" ({h})")).unwrap_or_default();
        format!("{at}: {path}: {}{help}", e.message)
    })
}

/// The clock the analysis is given (it reads none itself), for certificate expiry.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Indented JSON and a newline.
fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Writes to stdout; a closed pipe (`sluice explain … | head`) is not an error worth a panic.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// Runs a serving command on a multi-threaded runtime with logs on stderr; `f` gets the
/// handle that changes the log level.
fn serve<F, Fut>(log: &LogArgs, f: F) -> ExitCode
where
    F: FnOnce(logging::LogControl) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let logging = match logging::init(log.log_format, &log.log_level) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // On one core (a pinned or CPU-limited pod) the single-threaded scheduler does the same
    // work without cross-thread wake-ups; with more cores, one worker per core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(f(logging)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            run::eprint_block(&e);
            eprintln!("error: sluice cannot start with this configuration");
            ExitCode::from(1)
        }
    }
}

fn validate(paths: &[PathBuf], output: Output, opts: AnalyzeOptions, verbose: bool) -> ExitCode {
    let loaded = match sluice_config::load_paths(paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (_, mut diags) = sluice_compile::check(&loaded, &opts);
    if loaded.objects.is_empty() && !diags.iter().any(|d| d.is_error()) {
        let where_: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        diags.push(
            sluice_config::Diagnostic::new(
                sluice_config::Severity::Error,
                sluice_config::diag::codes::NO_OBJECTS,
                format!("no objects found in {}: nothing was checked", where_.join(", ")),
            )
            .help("point validate at .yaml, .yml or .json files (or directories holding them) with Istio or Kubernetes objects"),
        );
    }
    if !verbose && output == Output::Text {
        diags.retain(|d| d.severity != sluice_config::Severity::Info);
    }
    let failed = diags.iter().any(|d| d.is_error());
    match output {
        Output::Json => out(&(render::json(&diags) + "\n")),
        Output::Text => {
            out(&render::text(&diags, &loaded.sources));
            out(&format!(
                "{}: {} object(s) checked, {}\n",
                if failed { "failed" } else { "ok" },
                loaded.objects.len(),
                render::summary(&diags)
            ));
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
