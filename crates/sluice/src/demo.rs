//! `sluice demo`: the seed configuration compiled into the binary, three echo pods for its
//! service `demo`, the gateway on 127.0.0.1:8080 and the admin port (`/ui`) on 127.0.0.1:15000.
//! Needs no files and no cluster.
use crate::run::{self, Config};
use sluice_compile::{AnalyzeOptions, GatewayIdentity};
use sluice_echo::{Echo, Identity};
use sluice_proxy::ServerOptions;

const SEED: [(&str, &str); 4] = [
    (
        "examples/seed/gateway.yaml",
        include_str!("../../../examples/seed/gateway.yaml"),
    ),
    (
        "examples/seed/virtualservice.yaml",
        include_str!("../../../examples/seed/virtualservice.yaml"),
    ),
    (
        "examples/seed/destinationrule.yaml",
        include_str!("../../../examples/seed/destinationrule.yaml"),
    ),
    (
        "examples/seed/services.yaml",
        include_str!("../../../examples/seed/services.yaml"),
    ),
];

/// The seed's ServiceEntry endpoints: two `version: v1` pods and one `version: v3` pod.
const PODS: [(u16, &str, &str); 3] = [
    (18001, "v1", "demo-v1-7d9f8-abcde"),
    (18002, "v1", "demo-v1-7d9f8-fghij"),
    (18003, "v3", "demo-v3-5c4b2-klmno"),
];

pub async fn demo(
    port: u16,
    admin: crate::admin::Options,
    trace: crate::telemetry::TraceArgs,
) -> Result<(), String> {
    let mut pods: Vec<Echo> = Vec::new();
    for (p, version, pod) in PODS {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], p));
        let echo = Echo::start(addr, Identity::new("demo", version, pod))
            .await
            .map_err(|e| format!("cannot start the demo backend on {addr}: {e}"))?;
        pods.push(echo);
    }
    let identity = GatewayIdentity {
        port_map: [(80, u32::from(port))].into(),
        ..Default::default()
    };
    println!(
        "sluice demo: the seed configuration (examples/seed) on http://127.0.0.1:{port} (Gateway port 80)\n\
         backends: service demo, v1 pods on 127.0.0.1:18001 and :18002, v3 pod on 127.0.0.1:18003\n\
         \n\
         try:\n  \
           curl -s localhost:{port}/users     # 90% subset stable (v1), 10% testversion (v3)\n  \
           curl -s localhost:{port}/tasks     # any demo pod\n  \
           curl -si localhost:{port}/other    # 404: no route\n  \
           cargo run --release -- explain --config examples/seed --host localhost --path /users\n\
         \n\
         Ctrl-C stops.\n"
    );
    if let Some(addr) = admin.admin_address.filter(|a| a.port() != 0) {
        println!("the routing, with request counts: http://{addr}/ui\n");
    }
    let mut opts = ServerOptions {
        bind_address: [127, 0, 0, 1].into(),
        ..Default::default()
    };
    let config = Config {
        source: std::sync::Arc::new(sluice_source::Embedded::new(SEED.to_vec())),
        analyze: AnalyzeOptions::default(),
        identity,
        must_compile_first: true,
        admin,
        on_served: None,
        debounce: None,
        spans: trace.start(&mut opts)?,
    };
    let served = run::serve(config, opts).await;
    drop(pods);
    served
}
