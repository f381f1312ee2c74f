//! Routing semantics through real sockets: gateway selection, every match type, VirtualService
//! merge order, wildcard hosts, subsets, endpoint weights and load-balancing policies, with
//! `explain` checked against the proxy on every request.
mod common;
use common::*;
use sluice_compile::explain::{explain, Request};
use sluice_echo::{Echo, Identity};

const ROUTES: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: ["*.shop.example", "api.example"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: private, namespace: default}
spec:
  selector: {istio: internal-gateway}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: ["internal.example"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  hosts: ["*.shop.example"]
  gateways: [public]
  http:
    - match: [{uri: {exact: /exact}}]
      route: [{destination: {host: a}}]
    - match: [{uri: {regex: "/re/[0-9]+"}}]
      route: [{destination: {host: b}}]
    - match: [{headers: {x-canary: {exact: "yes"}}}]
      route: [{destination: {host: c, subset: v3}}]
    - match: [{queryParams: {debug: {exact: "1"}}}]
      route: [{destination: {host: b}}]
    - match: [{method: {exact: POST}, uri: {prefix: /form}}]
      route: [{destination: {host: b}}]
    - match: [{uri: {prefix: /case}, ignoreUriCase: true}]
      route: [{destination: {host: a}}]
    - match: [{uri: {prefix: /wo}, withoutHeaders: {x-skip: {exact: "1"}}}]
      route: [{destination: {host: a}}]
    - match: [{uri: {prefix: /wo}}]
      route: [{destination: {host: b}}]
    - match: [{authority: {prefix: "pre."}}]
      route: [{destination: {host: b}}]
    - match: [{port: 80, uri: {prefix: /port80}}, {uri: {prefix: /either}}]
      route: [{destination: {host: a}}]
    - match: [{uri: {prefix: /ghost}}]
      route: [{destination: {host: c, subset: ghost}}]
    - match: [{uri: {prefix: /unknown}}]
      route: [{destination: {host: nowhere}}]
    - route: [{destination: {host: c, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop-late, namespace: default, creationTimestamp: "2024-01-03T00:00:00Z"}
spec:
  hosts: ["*.shop.example"]
  gateways: [public]
  http:
    - match: [{uri: {prefix: /merged}}]
      route: [{destination: {host: a}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: www, namespace: default, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  hosts: ["www.shop.example", "api.example"]
  gateways: [public]
  http:
    - route: [{destination: {host: b}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: internal, namespace: default}
spec:
  hosts: ["internal.example"]
  gateways: [private]
  http:
    - route: [{destination: {host: a}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: c, namespace: default}
spec:
  host: c.default.svc.cluster.local
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v3, labels: {version: v3}}
"#;

struct Case {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// Pod name, or the status the gateway answers itself.
    expect: &'static str,
}

const fn get(host: &'static str, path: &'static str, expect: &'static str) -> Case {
    Case {
        method: "GET",
        host,
        path,
        headers: &[],
        expect,
    }
}

const PUBLIC_CASES: &[Case] = &[
    get("x.shop.example", "/exact", "pod-a"),
    get("x.shop.example", "/exact/", "pod-c1"),
    get("x.shop.example", "/re/42", "pod-b"),
    get("x.shop.example", "/re/4x", "pod-c1"),
    Case {
        headers: &[("x-canary", "yes")],
        ..get("x.shop.example", "/", "pod-c3")
    },
    Case {
        headers: &[("x-canary", "no")],
        ..get("x.shop.example", "/", "pod-c1")
    },
    get("x.shop.example", "/q?a=2&debug=1", "pod-b"),
    get("x.shop.example", "/q?debug=10", "pod-c1"),
    Case {
        method: "POST",
        ..get("x.shop.example", "/form", "pod-b")
    },
    get("x.shop.example", "/form", "pod-c1"),
    get("x.shop.example", "/CASE/x", "pod-a"),
    get("x.shop.example", "/wo", "pod-a"),
    Case {
        headers: &[("x-skip", "1")],
        ..get("x.shop.example", "/wo", "pod-b")
    },
    get("pre.shop.example", "/", "pod-b"),
    get("x.shop.example", "/port80", "pod-a"),
    get("x.shop.example", "/either", "pod-a"),
    // Later VirtualService's route comes before the earlier one's catch-all.
    get("x.shop.example", "/merged", "pod-a"),
    // The more specific host wins the virtual host: only `www`'s routes apply.
    get("www.shop.example", "/exact", "pod-b"),
    get("WWW.Shop.Example:80", "/", "pod-b"),
    get("api.example", "/anything", "pod-b"),
    // Subset no DestinationRule defines, host no registry knows: 503 (NC).
    get("x.shop.example", "/ghost", "503"),
    get("x.shop.example", "/unknown", "503"),
    // Hosts of a Gateway this instance is not: no virtual host.
    get("internal.example", "/", "404"),
    get("shop.example", "/", "404"),
];

const PRIVATE_CASES: &[Case] = &[
    get("internal.example", "/", "pod-a"),
    get("x.shop.example", "/exact", "404"),
    get("api.example", "/", "404"),
];

async fn run_cases(labels: &[(&str, &str)], cases: &[Case]) {
    let pods = backends(vec![
        Identity::new("a", "v1", "pod-a"),
        Identity::new("b", "v1", "pod-b"),
        Identity::new("c", "v1", "pod-c1"),
        Identity::new("c", "v3", "pod-c3"),
    ])
    .await;
    let yaml = format!(
        "{}{}{}{}",
        service_entry("a", &[(&pods[0], 1)]),
        service_entry("b", &[(&pods[1], 1)]),
        service_entry("c", &[(&pods[2], 1), (&pods[3], 1)]),
        ROUTES
    );
    let snap = snapshot(&yaml, labels);
    let gw = gateway(snap.clone(), test_options());
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    for c in cases {
        let r = client
            .send(c.method, c.host, c.path, c.headers, Default::default())
            .await;
        assert_eq!(r.who(), c.expect, "{} {} {}", c.method, c.host, c.path);
        let headers: Vec<(String, String)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = explain(
            &snap,
            &Request {
                port: 80,
                host: Some(c.host),
                sni: None,
                path: c.path,
                method: c.method,
                headers: &headers,
            },
        );
        agree(&e, &r, &pods);
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_instance_routes_every_match_type() {
    run_cases(&[("istio", "ingressgateway")], PUBLIC_CASES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_instance_serves_only_private_hosts() {
    run_cases(&[("istio", "internal-gateway")], PRIVATE_CASES).await;
}

fn lb_yaml(pods: &[(&Echo, u32)], policy: &str) -> String {
    service_entry("lb", pods)
        + &app_routes("    - route: [{destination: {host: lb}}]")
        + &format!(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: lb, namespace: default}}\n\
             spec:\n  host: lb\n  trafficPolicy: {{loadBalancer: {{simple: {policy}}}}}\n"
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_honours_endpoint_weights_exactly() {
    let pods = backends(vec![
        Identity::new("lb", "v1", "heavy"),
        Identity::new("lb", "v1", "light"),
    ])
    .await;
    let gw = gateway(
        snapshot(
            &lb_yaml(&[(&pods[0], 3), (&pods[1], 1)], "ROUND_ROBIN"),
            &[],
        ),
        test_options(),
    );
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    let t = tally(&client, "h", "/", 400).await;
    assert_eq!((t["heavy"], t["light"]), (300, 100), "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_spreads_by_weight() {
    let pods = backends(vec![
        Identity::new("lb", "v1", "one"),
        Identity::new("lb", "v1", "two"),
    ])
    .await;
    let gw = gateway(
        snapshot(&lb_yaml(&[(&pods[0], 1), (&pods[1], 1)], "RANDOM"), &[]),
        test_options(),
    );
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    let t = tally(&client, "h", "/", 1000).await;
    // Binomial(1000, 0.5): 6 standard deviations is ±95.
    assert!((405..=595).contains(&t["one"]), "{t:?}");
}

/// With one slow pod, LEAST_REQUEST sends it far fewer requests than ROUND_ROBIN does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_avoids_a_slow_pod() {
    let mut slow = Identity::new("lb", "v1", "slow");
    slow.latency = std::time::Duration::from_millis(100);
    let pods = backends(vec![slow, Identity::new("lb", "v1", "fast")]).await;
    let share_of_slow = |policy: &'static str| {
        let yaml = lb_yaml(&[(&pods[0], 1), (&pods[1], 1)], policy);
        async move {
            let gw = gateway(snapshot(&yaml, &[]), test_options());
            let client = TestClient::http1(gw.local_addr(80).unwrap());
            let workers: Vec<_> = (0..6)
                .map(|_| {
                    let c = client.clone();
                    tokio::spawn(async move { tally(&c, "h", "/", 30).await })
                })
                .collect();
            let mut slow = 0;
            for w in workers {
                slow += w.await.unwrap().get("slow").copied().unwrap_or(0);
            }
            gw.shutdown().await;
            slow as f64 / 180.0
        }
    };
    let rr = share_of_slow("ROUND_ROBIN").await;
    let lr = share_of_slow("LEAST_REQUEST").await;
    assert!(
        (0.45..=0.55).contains(&rr),
        "round robin gave the slow pod {rr}"
    );
    assert!(lr < 0.2, "least request gave the slow pod {lr}");
}

/// `resolution: DNS` without endpoints: the host name itself is resolved and connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_service_entry_reaches_the_resolved_host() {
    let pod = backends(vec![Identity::new("dns", "v1", "dns-pod")]).await;
    let port = pod[0].addr.port();
    let yaml = format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: local, namespace: default}}
spec:
  hosts: [localhost]
  resolution: DNS
  ports: [{{number: {port}, name: http, protocol: HTTP}}]
---
{}"#,
        app_routes("    - route: [{destination: {host: localhost}}]")
    );
    let snap = snapshot(&yaml, &[]);
    let gw = gateway(snap.clone(), test_options());
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    assert_eq!(client.get("h", "/").await.who(), "dns-pod");
    let e = explain(
        &snap,
        &Request {
            port: 80,
            host: Some("h"),
            sni: None,
            path: "/",
            method: "GET",
            headers: &[],
        },
    );
    assert_eq!(e.endpoints, [format!("localhost:{port}")]);
}
