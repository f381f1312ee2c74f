//! The `sluice` command line.
#![forbid(unsafe_code)]

mod explain;
mod render;

use clap::{Parser, Subcommand, ValueEnum};
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
    /// Show what the gateway would do with one request, offline: listener, virtual host, route,
    /// clusters and endpoints.
    Explain {
        /// Configuration files or directories.
        #[arg(long = "config", short = 'c', required = true)]
        config: Vec<PathBuf>,
        /// Only plaintext HTTP is compiled by this version.
        #[arg(long, default_value = "http")]
        protocol: String,
        /// The Gateway (service) port the request arrives on.
        #[arg(long, default_value_t = 80)]
        port: u32,
        #[arg(long)]
        host: String,
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
}

/// Who this gateway instance is.
#[derive(clap::Args)]
struct IdentityArgs {
    /// Workload labels Gateway selectors are matched against.
    #[arg(long, default_value = "istio=ingressgateway", value_parser = parse_labels)]
    gateway_labels: std::collections::BTreeMap<String, String>,
    /// Namespace the gateway runs in.
    #[arg(long, default_value = "istio-system")]
    namespace: String,
    /// Gateway port to bound port, e.g. `80=8080,443=8443`.
    #[arg(long, default_value = "", value_parser = parse_port_map)]
    port_map: std::collections::BTreeMap<u32, u32>,
    #[arg(long, default_value = "cluster.local")]
    domain_suffix: String,
}

impl IdentityArgs {
    fn identity(&self) -> GatewayIdentity {
        GatewayIdentity {
            labels: self.gateway_labels.clone(),
            namespace: self.namespace.clone(),
            domain_suffix: self.domain_suffix.clone(),
            port_map: self.port_map.clone(),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
                    println!("{}  {:<48} {}", c.code, c.name, c.summary);
                }
                return ExitCode::SUCCESS;
            }
            validate(
                &paths,
                output,
                AnalyzeOptions {
                    domain_suffix,
                    gateway_namespace: namespace,
                },
                verbose,
            )
        }
        Command::Explain {
            config,
            protocol,
            port,
            host,
            path,
            method,
            headers,
            output,
            identity,
        } => {
            if protocol != "http" {
                eprintln!(
                    "error: --protocol {protocol}: only http is compiled by this version of sluice"
                );
                return ExitCode::from(2);
            }
            let mut parsed = Vec::new();
            for h in &headers {
                match h.split_once(':') {
                    Some((k, v)) => {
                        parsed.push((k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    }
                    None => {
                        eprintln!("error: -H \"{h}\": expected `name: value`");
                        return ExitCode::from(2);
                    }
                }
            }
            let loaded = match sluice_config::load_paths(&config) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = AnalyzeOptions {
                domain_suffix: identity.domain_suffix.clone(),
                gateway_namespace: identity.namespace.clone(),
            };
            let (store, diags) = sluice_compile::check(&loaded, &opts);
            let errors: Vec<_> = diags.into_iter().filter(|d| d.is_error()).collect();
            if !errors.is_empty() {
                eprint!("{}", render::text(&errors, &loaded.sources));
                eprintln!("error: the configuration has errors; the gateway would refuse it");
                return ExitCode::from(1);
            }
            let (snapshot, _) = sluice_compile::compile(&store, &identity.identity());
            let e = sluice_compile::explain::explain(
                &snapshot,
                &sluice_compile::explain::Request {
                    port,
                    host: &host,
                    path: &path,
                    method: &method,
                    headers: &parsed,
                },
            );
            match output {
                Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default())
                }
                Output::Text => print!("{}", explain::text(&e)),
            }
            ExitCode::SUCCESS
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
    if !verbose && output == Output::Text {
        diags.retain(|d| d.severity != sluice_config::Severity::Info);
    }
    let failed = diags.iter().any(|d| d.is_error());
    match output {
        Output::Json => println!("{}", render::json(&diags)),
        Output::Text => {
            print!("{}", render::text(&diags, &loaded.sources));
            println!(
                "{}: {} object(s) checked, {}",
                if failed { "failed" } else { "ok" },
                loaded.objects.len(),
                render::summary(&diags)
            );
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
