//! Swapping snapshots under traffic: listeners added and removed, in-flight requests finishing
//! on the snapshot they started with.
mod common;
use common::*;
use sluice_echo::Identity;
use std::time::Duration;

fn config(pod_port: u16, gateway_ports: &[u32], path: &str) -> String {
    let servers: String = gateway_ports
        .iter()
        .map(|p| {
            format!(
                "    - {{port: {{number: {p}, name: http-{p}, protocol: HTTP}}, hosts: [\"*\"]}}\n"
            )
        })
        .collect();
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
{servers}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: app, namespace: default}}
spec:
  hosts: [app.default.svc.cluster.local]
  resolution: STATIC
  ports: [{{number: 8000, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {pod_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: app, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{{match: [{{uri: {{prefix: {path}}}}}], route: [{{destination: {{host: app}}}}]}}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_open_and_drain_and_requests_keep_their_snapshot() {
    let mut slow = Identity::new("app", "v1", "slow-pod");
    slow.latency = Duration::from_millis(600);
    let pod = backends(vec![slow]).await.remove(0);
    let port = pod.addr.port();

    let gw = gateway(snapshot(&config(port, &[80], "/old"), &[]), test_options());
    let addr80 = gw.local_addr(80).unwrap();
    let client = TestClient::http1(addr80);

    // A request in flight on port 80 when 80 goes away and the route changes.
    let in_flight = {
        let c = client.clone();
        tokio::spawn(async move { c.get("a", "/old").await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    gw.prebind(81, std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    gw.apply(snapshot(&config(port, &[81], "/new"), &[]))
        .unwrap();
    assert!(gw.local_addr(80).is_none());
    let addr81 = gw.local_addr(81).unwrap();

    // The old request finishes on the old snapshot and its draining listener.
    let r = in_flight.await.unwrap();
    assert_eq!(r.who(), "slow-pod");

    // New connections to 80 are refused; 81 serves the new routes.
    assert!(tokio::net::TcpStream::connect(addr80).await.is_err());
    let c81 = TestClient::http1(addr81);
    assert_eq!(c81.get("a", "/new").await.who(), "slow-pod");
    assert_eq!(c81.get("a", "/old").await.who(), "404");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_cannot_be_bound_changes_nothing() {
    let pod = backends(vec![Identity::new("app", "v1", "pod")])
        .await
        .remove(0);
    let port = pod.addr.port();
    let gw = gateway(snapshot(&config(port, &[80], "/a"), &[]), test_options());
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    // Port 82 is held by someone else.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let bad = config(port, &[80, u32::from(taken)], "/b");
    let err = gw.apply(snapshot(&bad, &[])).unwrap_err();
    assert!(err.to_string().contains(&taken.to_string()), "{err}");
    assert_eq!(
        client.get("a", "/a").await.who(),
        "pod",
        "old routes still serve"
    );
    assert_eq!(client.get("a", "/b").await.who(), "404");
    gw.shutdown().await;
}
