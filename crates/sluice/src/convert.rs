//! `sluice convert`: Ingress or Istio objects as the Kubernetes Gateway API, and `--check`,
//! which proves the converted objects route every generated request as the originals do.
use crate::{out, render, IdentityArgs, StatusOutput};
use clap::ValueEnum;
use sluice_convert::{ConvertError, From, Options};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum SourceApi {
    Ingress,
    Istio,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TargetApi {
    GatewayApi,
}

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// Files or directories (read recursively: .yaml, .yml, .json).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The API to convert from: `ingress` (networking.k8s.io Ingress) or `istio` (Gateway,
    /// VirtualService; DestinationRule subsets become Services).
    #[arg(long, value_enum)]
    from: SourceApi,
    #[arg(long, value_enum, default_value_t = TargetApi::GatewayApi)]
    to: TargetApi,
    #[arg(short, long, value_enum, default_value_t = StatusOutput::Yaml)]
    output: StatusOutput,
    /// Compile the original and the converted objects and compare what each does with requests
    /// generated from both (hosts, paths, headers, query parameters, methods); exit 1 on any
    /// difference.
    #[arg(long)]
    check: bool,
    /// gatewayClassName of the Gateways converted from Istio Gateways.
    #[arg(long, default_value = "istio")]
    gateway_class_name: String,
    #[command(flatten)]
    identity: IdentityArgs,
}

pub fn run(args: &ConvertArgs) -> ExitCode {
    let TargetApi::GatewayApi = args.to;
    let loaded = match sluice_config::load_paths(&args.paths) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (store, diags) = sluice_compile::admit(&loaded, &args.identity.analyze());
    let Some(store) = store else {
        let errors: Vec<_> = diags.into_iter().filter(|d| d.is_error()).collect();
        eprint!("{}", render::text(&errors, &loaded.sources));
        eprintln!("error: the configuration has errors; fix them before converting it");
        return ExitCode::from(1);
    };
    let opts = Options {
        from: match args.from {
            SourceApi::Ingress => From::Ingress,
            SourceApi::Istio => From::Istio,
        },
        identity: args.identity.identity(),
        gateway_class: args.gateway_class_name.clone(),
    };
    let conversion = match sluice_convert::convert(&store, &opts) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let yaml = sluice_convert::yaml(&conversion.objects);
    match args.output {
        StatusOutput::Yaml => out(&yaml),
        StatusOutput::Json => out(&sluice_convert::json(&conversion.objects)),
    }
    eprint!("{}", render::text(&conversion.warnings, &loaded.sources));
    eprintln!(
        "convert: {} object(s) written, {} warning(s)",
        conversion.objects.iter().filter(|o| !o.disabled).count(),
        conversion.warnings.len()
    );
    if !args.check {
        return ExitCode::SUCCESS;
    }
    match sluice_convert::check::check(&loaded, &yaml, &opts) {
        Ok(report) => {
            eprint!("{}", report.text());
            if report.differences.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &ConvertError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}
