//! `select_route` over a route table with every kind of match, for any request: a decision,
//! never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_compile::{select_route, HeaderLookup, RequestView, Snapshot};
use std::sync::{Arc, OnceLock};

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: default}
spec:
  hosts: [app.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: 9}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
    - match: [{uri: {exact: /exact}, method: {exact: POST}}]
      directResponse: {status: 201}
    - match: [{uri: {regex: "/re/[a-z]+/(\\d+)"}, ignoreUriCase: true}]
      rewrite: {uri: /rewritten}
      route: [{destination: {host: app}}]
    - match: [{headers: {x-a: {prefix: b}}, queryParams: {q: {regex: "v.*"}}}]
      redirect: {uri: /moved, authority: other.test}
    - match: [{authority: {regex: ".*\\.example\\.com"}, withoutHeaders: {x-no: {}}}]
      route: [{destination: {host: app}, weight: 50}, {destination: {host: app}, weight: 50}]
    - match: [{uri: {prefix: /p}}]
      rewrite: {uri: /q}
      route: [{destination: {host: app}}]
    - route: [{destination: {host: app}}]
"#;

fn snapshot() -> &'static Arc<Snapshot> {
    static SNAPSHOT: OnceLock<Arc<Snapshot>> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let mut l = sluice_config::Loader::new();
        l.add_text("fuzz.yaml".into(), CONFIG);
        let loaded = l.finish();
        let (store, diags) = sluice_compile::admit(&loaded, &Default::default());
        let store = store.unwrap_or_else(|| panic!("seed config refused: {diags:?}"));
        Arc::new(sluice_compile::compile(&store, &Default::default()).0)
    })
}

/// Headers as `name: value` lines of the input.
struct Lines<'a>(Vec<(&'a str, &'a str)>);

impl HeaderLookup for Lines<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

fuzz_target!(|text: &str| {
    // authority \n path \n method \n header lines…
    let mut parts = text.split('\n');
    let authority = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("/");
    let method = parts.next().unwrap_or("GET");
    let headers = Lines(parts.filter_map(|l| l.split_once(": ")).collect());
    let table = &snapshot().route_tables["http.80"];
    let view = RequestView {
        authority,
        path_and_query: path,
        method,
        scheme: "http",
        port: 80,
        headers: &headers,
    };
    let _ = select_route(table, &view);
});
