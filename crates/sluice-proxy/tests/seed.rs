//! The seed configuration through real sockets: the 90/10 canary, /tasks, 404s, and `explain`
//! agreeing with what the proxy did.
mod common;
use common::*;
use sluice_compile::explain::{explain, Request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_routes_split_and_404() {
    let pods = demo_pods().await;
    let snap = snapshot(&seed_yaml(&pods), &[]);
    let gw = gateway(snap.clone(), test_options());
    let client = TestClient::http1(gw.local_addr(80).unwrap());

    // /tasks: the whole service (both versions), never anything else.
    let tasks = tally(&client, "anything.example", "/tasks/7", 300).await;
    assert_eq!(
        tasks.keys().cloned().collect::<Vec<_>>(),
        ["demo-v1-a", "demo-v1-b", "demo-v3-a"],
        "{tasks:?}"
    );

    // /users: 90/10 between the stable (v1) and testversion (v3) subsets.
    let users = tally(&client, "shop.example", "/users", 2000).await;
    let v3 = users.get("demo-v3-a").copied().unwrap_or(0);
    let v1 =
        users.get("demo-v1-a").copied().unwrap_or(0) + users.get("demo-v1-b").copied().unwrap_or(0);
    assert_eq!(v1 + v3, 2000, "{users:?}");
    let share = v3 as f64 / 2000.0 * 100.0;
    assert!((7.0..=13.0).contains(&share), "v3 share {share}% {users:?}");

    for path in ["/", "/user", "/other/users"] {
        assert_eq!(client.get("a.example", path).await.status, 404, "{path}");
    }

    // What the backend saw.
    let r = client
        .send(
            "GET",
            "Shop.Example:80",
            "/users/../tasks/1?x=1",
            &[("x-forwarded-for", "10.9.9.9")],
            Default::default(),
        )
        .await;
    assert_eq!(r.status, 200);
    let seen = r.json();
    assert_eq!(seen["path"], "/tasks/1?x=1", "normalised path is forwarded");
    assert_eq!(seen["host"], "Shop.Example:80", "Host is kept as received");
    assert_eq!(seen["headers"]["x-forwarded-for"], "10.9.9.9, 127.0.0.1");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert_eq!(seen["headers"]["x-request-id"].as_str().unwrap().len(), 36);

    // explain names the clusters whose endpoints answered.
    for path in ["/users", "/tasks/1", "/nope"] {
        let e = explain(
            &snap,
            &Request {
                port: 80,
                host: Some("x"),
                sni: None,
                path,
                method: "GET",
                headers: &[],
            },
        );
        let r = client.get("x", path).await;
        agree(&e, &r, &pods);
    }
    gw.shutdown().await;
}
