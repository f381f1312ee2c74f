//! The `sluice` command line.
#![forbid(unsafe_code)]

mod render;

use clap::{Parser, Subcommand, ValueEnum};
use sluice_compile::AnalyzeOptions;
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
