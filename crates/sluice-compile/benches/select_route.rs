//! `select_route` cost with 10,000 virtual hosts: it must not grow with the number of hosts.
use criterion::{criterion_group, criterion_main, Criterion};
use sluice_compile::{compile, select_route, GatewayIdentity, RequestView, RouteDecision};
use sluice_config::Loader;
use std::hint::black_box;

const HOSTS: usize = 10_000;

fn config() -> String {
    let mut y = String::from(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n\
         spec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n",
    );
    for i in 0..HOSTS {
        // Every tenth host is a wildcard, so suffix lookups have company.
        let host = if i % 10 == 0 {
            format!("\"*.tenant-{i}.example.com\"")
        } else {
            format!("svc-{i}.example.com")
        };
        y.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs-{i}, namespace: default}}\n\
             spec:\n  hosts: [{host}]\n  gateways: [gw]\n  http:\n\
             \x20   - match: [{{uri: {{prefix: /api/v2}}, headers: {{x-canary: {{exact: \"yes\"}}}}}}]\n\
             \x20     route: [{{destination: {{host: canary-{i}.default.svc.cluster.local}}}}]\n\
             \x20   - match: [{{uri: {{prefix: /api}}}}]\n\
             \x20     route: [{{destination: {{host: api-{i}.default.svc.cluster.local}}, weight: 90}}, {{destination: {{host: api-next-{i}.default.svc.cluster.local}}, weight: 10}}]\n\
             \x20   - route: [{{destination: {{host: web-{i}.default.svc.cluster.local}}}}]\n"
        ));
    }
    y
}

fn bench(c: &mut Criterion) {
    let mut loader = Loader::new();
    loader.add_text("bench.yaml".into(), &config());
    let loaded = loader.finish();
    let (store, _) = sluice_compile::check(&loaded, &Default::default());
    let (snapshot, _) = compile(&store, &GatewayIdentity::default());
    let table = &snapshot.route_tables["http.80"];
    assert!(table.virtual_hosts.len() >= HOSTS);
    let headers: Vec<(String, String)> = vec![
        ("user-agent".into(), "bench".into()),
        ("accept".into(), "*/*".into()),
    ];
    let mut run = |name: &str, host: &'static str, path: &'static str, expect_forward: bool| {
        let req = RequestView {
            authority: host,
            path_and_query: path,
            method: "GET",
            scheme: "http",
            port: 80,
            headers: headers.as_slice(),
        };
        let forwarded = matches!(select_route(table, &req), RouteDecision::Forward { .. });
        assert_eq!(forwarded, expect_forward, "{name}");
        c.bench_function(name, |b| {
            b.iter(|| {
                black_box(matches!(
                    select_route(table, black_box(&req)),
                    RouteDecision::Forward { .. }
                ))
            })
        });
    };
    run(
        "exact host, second route",
        "svc-5001.example.com",
        "/api/users?id=7",
        true,
    );
    run(
        "exact host with port, catch-all",
        "svc-9999.example.com:80",
        "/index.html",
        true,
    );
    run("wildcard host", "a.b.tenant-5000.example.com", "/api", true);
    run("unknown host (404)", "nothing.example.org", "/", false);
}

criterion_group!(benches, bench);
criterion_main!(benches);
