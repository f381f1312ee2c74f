//! Gateway API status, case by case: what a controller writes for accepted, conflicted,
//! not-allowed, unresolved and not-granted objects (the spec's condition types and reasons).
use sluice_compile::gateway_status::{gateway_api_status, ObjectStatus, Status};
use sluice_compile::GatewayIdentity;
use sluice_config::Loader;

fn statuses(yaml: &str) -> Vec<ObjectStatus> {
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), yaml);
    let store = sluice_config::Store::new(l.finish().objects);
    gateway_api_status(&store, &GatewayIdentity::default(), "2026-01-01T00:00:00Z").0
}

/// `type=status:reason` of each condition of the named HTTPRoute's first parent.
fn route_conditions(all: &[ObjectStatus], name: &str) -> Vec<String> {
    kind_conditions(all, "HTTPRoute", name)
}

/// `type=status:reason` of each condition of the named route's first parent.
fn kind_conditions(all: &[ObjectStatus], kind: &str, name: &str) -> Vec<String> {
    let o = all
        .iter()
        .find(|o| o.kind == kind && o.metadata.name == name)
        .unwrap_or_else(|| panic!("no status for {kind} {name}"));
    let Status::Route(r) = &o.status else {
        panic!()
    };
    r.parents[0]
        .conditions
        .iter()
        .map(|c| format!("{}={}:{}", c.type_, c.status.as_str(), c.reason))
        .collect()
}

/// (listener name, attachedRoutes, `type=status:reason`…) of the named Gateway.
fn listeners(all: &[ObjectStatus], name: &str) -> Vec<(String, i32, Vec<String>)> {
    let o = all
        .iter()
        .find(|o| o.kind == "Gateway" && o.metadata.name == name)
        .unwrap();
    let Status::Gateway(g) = &o.status else {
        panic!()
    };
    g.listeners
        .iter()
        .map(|l| {
            let c = l
                .conditions
                .iter()
                .map(|c| format!("{}={}:{}", c.type_, c.status.as_str(), c.reason))
                .collect();
            (l.name.clone(), l.attached_routes, c)
        })
        .collect()
}

const GW: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default, generation: 3}
spec:
  gatewayClassName: sluice
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}
  - {name: udp, port: 9000, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {ports: [{name: http, port: 8000}]}
---
"#;

fn route(name: &str, ns: &str, spec: &str) -> String {
    format!("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {ns}, generation: 7}}\nspec:\n{spec}---\n")
}

#[test]
fn accepted_route_and_gateway() {
    let all = statuses(&(GW.to_string()
        + &route("ok", "default", "  parentRefs: [{name: gw}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: app, port: 8000}]}]\n")));
    assert_eq!(
        route_conditions(&all, "ok"),
        ["Accepted=True:Accepted", "ResolvedRefs=True:ResolvedRefs"]
    );
    let l = listeners(&all, "gw");
    assert_eq!(l[0].1, 1, "one route attached to the HTTP listener");
    assert!(l[0].2.contains(&"Programmed=True:Programmed".to_string()));
    assert!(
        l[1].2
            .contains(&"Accepted=False:UnsupportedProtocol".to_string()),
        "{:?}",
        l[1]
    );
    // observedGeneration is the object's generation.
    let o = all.iter().find(|o| o.kind == "HTTPRoute").unwrap();
    let Status::Route(r) = &o.status else {
        panic!()
    };
    assert_eq!(r.parents[0].conditions[0].observed_generation, Some(7));
    assert_eq!(r.parents[0].parent_ref.kind.as_deref(), Some("Gateway"));
}

#[test]
fn routes_the_listeners_do_not_take() {
    let all = statuses(&(GW.to_string()
        + &route("other-ns", "team", "  parentRefs: [{name: gw, namespace: default}]\n  rules: [{backendRefs: [{name: app, port: 8000}]}]\n")
        + &route("wrong-host", "default", "  parentRefs: [{name: gw}]\n  hostnames: [other.org]\n  rules: [{backendRefs: [{name: app, port: 8000}]}]\n")
        + &route("wrong-section", "default", "  parentRefs: [{name: gw, sectionName: nope}]\n  rules: [{backendRefs: [{name: app, port: 8000}]}]\n")
        + &route("not-ours", "default", "  parentRefs: [{name: someone-elses}]\n  rules: [{backendRefs: [{name: app, port: 8000}]}]\n")));
    assert_eq!(
        route_conditions(&all, "other-ns")[0],
        "Accepted=False:NotAllowedByListeners"
    );
    assert_eq!(
        route_conditions(&all, "wrong-host")[0],
        "Accepted=False:NoMatchingListenerHostname"
    );
    assert_eq!(
        route_conditions(&all, "wrong-section")[0],
        "Accepted=False:NoMatchingParent"
    );
    assert!(
        !all.iter().any(|o| o.metadata.name == "not-ours"),
        "no status for another controller's parent"
    );
    assert_eq!(listeners(&all, "gw")[0].1, 0);
}

#[test]
fn unresolved_and_not_granted_references() {
    let all = statuses(&(GW.to_string()
        + &route("missing", "default", "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: nope, port: 8000}]}]\n")
        + &route("elsewhere", "default", "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: app, namespace: team, port: 8000}]}]\n")
        + &route("kind", "default", "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{group: example.com, kind: Bucket, name: b}]}]\n")));
    assert_eq!(
        route_conditions(&all, "missing")[1],
        "ResolvedRefs=False:BackendNotFound"
    );
    assert_eq!(
        route_conditions(&all, "elsewhere")[1],
        "ResolvedRefs=False:RefNotPermitted"
    );
    assert_eq!(
        route_conditions(&all, "kind")[1],
        "ResolvedRefs=False:InvalidKind"
    );
    // Still accepted: an invalid backend answers 500 for its share.
    assert_eq!(
        route_conditions(&all, "missing")[0],
        "Accepted=True:Accepted"
    );
}

#[test]
fn conflicting_listeners_and_certificates_without_a_grant() {
    let all = statuses(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
  - {name: a, port: 80, protocol: HTTP, hostname: same.example}
  - {name: b, port: 80, protocol: HTTP, hostname: same.example}
  - name: secure
    port: 443
    protocol: HTTPS
    tls: {certificateRefs: [{name: cert, namespace: certs}]}
"#,
    );
    let l = listeners(&all, "gw");
    assert!(
        l[0].2
            .contains(&"Conflicted=True:HostnameConflict".to_string()),
        "{l:?}"
    );
    assert!(l[1]
        .2
        .contains(&"Conflicted=True:HostnameConflict".to_string()));
    assert!(
        l[2].2
            .contains(&"ResolvedRefs=False:RefNotPermitted".to_string()),
        "{:?}",
        l[2]
    );
    assert!(l[2].2.contains(&"Programmed=False:Invalid".to_string()));
}

/// Every route kind gets status from the listeners that take it: GRPCRoutes attach to HTTP
/// listeners, TCPRoutes only to TCP ones; `supportedKinds` lists what a listener takes and a
/// kind it cannot take makes its refs invalid.
#[test]
fn route_kinds_attach_to_the_listeners_that_take_them() {
    let gw = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: mixed, namespace: default}
spec:
  gatewayClassName: sluice
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: tcp, port: 9000, protocol: TCP}
  - name: only-tcp-kinds
    port: 8080
    protocol: HTTP
    allowedRoutes: {kinds: [{kind: TCPRoute}]}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {ports: [{name: grpc, port: 8000}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter, namespace: default}
spec:
  parentRefs: [{name: mixed, sectionName: http}]
  rules: [{matches: [{method: {service: helloworld.Greeter}}], backendRefs: [{name: app, port: 8000}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: wrong-listener, namespace: default}
spec:
  parentRefs: [{name: mixed, sectionName: http}]
  rules: [{backendRefs: [{name: app, port: 8000}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: raw, namespace: default}
spec:
  parentRefs: [{name: mixed, sectionName: tcp}]
  rules: [{backendRefs: [{name: missing, port: 8000}]}]
---
"#;
    let all = statuses(gw);
    assert_eq!(
        kind_conditions(&all, "GRPCRoute", "greeter"),
        ["Accepted=True:Accepted", "ResolvedRefs=True:ResolvedRefs"]
    );
    assert_eq!(
        kind_conditions(&all, "TCPRoute", "wrong-listener")[0],
        "Accepted=False:NotAllowedByListeners"
    );
    assert_eq!(
        kind_conditions(&all, "TCPRoute", "raw"),
        [
            "Accepted=True:Accepted",
            "ResolvedRefs=False:BackendNotFound"
        ]
    );
    let o = all.iter().find(|o| o.kind == "Gateway").unwrap();
    let Status::Gateway(g) = &o.status else {
        panic!()
    };
    let kinds = |i: usize| -> Vec<String> {
        g.listeners[i]
            .supported_kinds
            .iter()
            .map(|k| k.kind.clone().unwrap())
            .collect()
    };
    assert_eq!(kinds(0), ["HTTPRoute", "GRPCRoute"]);
    assert_eq!(kinds(1), ["TCPRoute"]);
    assert!(kinds(2).is_empty());
    let l = listeners(&all, "mixed");
    assert_eq!((l[0].1, l[1].1), (1, 1), "attachedRoutes: {l:?}");
    assert!(
        l[2].2
            .contains(&"ResolvedRefs=False:InvalidRouteKinds".to_string()),
        "{l:?}"
    );
}

fn policy_conditions(all: &[ObjectStatus], name: &str) -> Vec<String> {
    let o = all
        .iter()
        .find(|o| o.kind == "BackendTLSPolicy" && o.metadata.name == name)
        .unwrap_or_else(|| panic!("no status for BackendTLSPolicy {name}"));
    let Status::Policy(p) = &o.status else {
        panic!()
    };
    assert_eq!(p.ancestors[0].ancestor_ref.name.as_deref(), Some("gw"));
    p.ancestors[0]
        .conditions
        .iter()
        .map(|c| format!("{}={}:{}", c.type_, c.status.as_str(), c.reason))
        .collect()
}

/// BackendTLSPolicy: accepted on the Gateways that route to its Service; of two on the same
/// port the older wins and the other is Conflicted; a CA ConfigMap that is not there leaves
/// the refs unresolved.
#[test]
fn backend_tls_policies_accepted_conflicted_unresolved() {
    let policy = |name: &str, stamp: &str, service: &str, cas: &str| {
        format!("apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {{name: {name}, namespace: default, creationTimestamp: \"{stamp}\"}}\nspec:\n  targetRefs: [{{group: \"\", kind: Service, name: {service}}}]\n  validation:\n    caCertificateRefs: [{cas}]\n    hostname: app.internal\n---\n")
    };
    let cm = |name: &str| format!("{{group: \"\", kind: ConfigMap, name: {name}}}");
    let services = "apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: default}\nspec: {ports: [{name: https, port: 8443}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: partly, namespace: default}\nspec: {ports: [{name: https, port: 8443}]}\n---\n";
    let ca = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-ca, namespace: default}\ndata:\n  ca.crt: |\n    -----BEGIN CERTIFICATE-----\n    MIIB\n    -----END CERTIFICATE-----\n---\n";
    let yaml = GW.to_string()
        + ca
        + services
        + &route(
            "ok",
            "default",
            "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: app, port: 8000}, {name: broken, port: 8443}, {name: partly, port: 8443}]}]\n",
        )
        + &policy("older", "2026-01-01T00:00:00Z", "app", &cm("app-ca"))
        + &policy("newer", "2026-02-01T00:00:00Z", "app", &cm("app-ca"))
        + &policy("broken", "2026-03-01T00:00:00Z", "broken", &cm("missing"))
        + &policy(
            "partly",
            "2026-03-01T00:00:00Z",
            "partly",
            &format!("{}, {}", cm("missing"), cm("app-ca")),
        );
    let all = statuses(&yaml);
    assert_eq!(
        policy_conditions(&all, "older"),
        ["Accepted=True:Accepted", "ResolvedRefs=True:ResolvedRefs"]
    );
    assert_eq!(
        policy_conditions(&all, "newer")[0],
        "Accepted=False:Conflicted"
    );
    // No CA reference usable: not accepted (and the Service gets no plaintext either).
    assert_eq!(
        policy_conditions(&all, "broken"),
        [
            "Accepted=False:NoValidCACertificate",
            "ResolvedRefs=False:InvalidCACertificateRef"
        ]
    );
    // One of two usable: accepted with the good one, the bad one reported.
    assert_eq!(
        policy_conditions(&all, "partly"),
        [
            "Accepted=True:Accepted",
            "ResolvedRefs=False:InvalidCACertificateRef"
        ]
    );
}

/// Frontend validation: a listener whose client CAs cannot be used is not accepted
/// (NoValidCACertificate); AllowInsecureFallback shows on the Gateway; HTTPS and TLS
/// listeners share a port when their hostnames differ.
#[test]
fn frontend_validation_and_https_beside_tls() {
    let yaml = r#"
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: default}
type: kubernetes.io/tls
stringData: {tls.crt: x, tls.key: y}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: sluice
  tls:
    frontend:
      default:
        validation: {caCertificateRefs: [{group: "", kind: ConfigMap, name: missing}]}
      perPort:
      - port: 8443
        tls: {validation: {mode: AllowInsecureFallback, caCertificateRefs: [{group: "", kind: ConfigMap, name: missing}]}}
  listeners:
  - {name: https, port: 443, protocol: HTTPS, hostname: a.example, tls: {certificateRefs: [{name: cert}]}}
  - {name: tls, port: 443, protocol: TLS, hostname: b.example, tls: {mode: Passthrough}}
---
"#;
    let all = statuses(yaml);
    let l = listeners(&all, "gw");
    assert!(
        l[0].2
            .contains(&"Accepted=False:NoValidCACertificate".to_string()),
        "{l:?}"
    );
    assert!(
        l[1].2.contains(&"Conflicted=False:NoConflicts".to_string()),
        "HTTPS and TLS share a port by SNI: {l:?}"
    );
    let gw = all.iter().find(|o| o.kind == "Gateway").unwrap();
    let Status::Gateway(g) = &gw.status else {
        panic!()
    };
    assert!(g
        .conditions
        .iter()
        .any(|c| c.type_ == "InsecureFrontendValidationMode" && c.status.as_str() == "True"));
}

/// Of an HTTPRoute and a GRPCRoute sharing hostnames on a listener, the newer is not accepted.
#[test]
fn http_and_grpc_routes_on_one_hostname() {
    let yaml = GW.to_string()
        + &route(
            "web",
            "default",
            "  parentRefs: [{name: gw}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: app, port: 8000}]}]\n",
        )
        .replace("generation: 7}", "generation: 7, creationTimestamp: \"2026-01-01T00:00:00Z\"}")
        + "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: rpc, namespace: default, creationTimestamp: \"2026-02-01T00:00:00Z\"}\nspec:\n  parentRefs: [{name: gw}]\n  hostnames: [\"*.example.com\"]\n  rules: [{backendRefs: [{name: app, port: 8000}]}]\n---\n";
    let all = statuses(&yaml);
    assert_eq!(route_conditions(&all, "web")[0], "Accepted=True:Accepted");
    assert_eq!(
        kind_conditions(&all, "GRPCRoute", "rpc")[0],
        "Accepted=False:Conflicted"
    );
}

/// Requested addresses are reported as not supported; the listeners still serve.
#[test]
fn requested_addresses_are_unsupported() {
    let yaml = GW.replace(
        "  gatewayClassName: sluice\n",
        "  gatewayClassName: sluice\n  addresses: [{type: IPAddress, value: 10.0.0.1}]\n",
    );
    let all = statuses(&yaml);
    let o = all.iter().find(|o| o.kind == "Gateway").unwrap();
    let Status::Gateway(g) = &o.status else {
        panic!()
    };
    let c = &g.conditions[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("Accepted", "False", "UnsupportedAddress")
    );
    assert!(listeners(&all, "gw")[0]
        .2
        .contains(&"Programmed=True:Programmed".to_string()));
}

/// ListenerSets: an attached one gets listener status (a clash with its Gateway's listener is
/// Conflicted) and counts in the Gateway's `attachedListenerSets`; one from a namespace the
/// Gateway does not allow is NotAllowed; routes name them as parents.
#[test]
fn listener_sets_attached_conflicted_not_allowed() {
    let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: sluice
  allowedListeners: {namespaces: {from: Same}}
  listeners: [{name: http, port: 80, protocol: HTTP, hostname: own.example}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: extra, namespace: default}
spec:
  parentRef: {name: gw}
  listeners:
  - {name: alt, port: 8080, protocol: HTTP}
  - {name: clash, port: 80, protocol: HTTP, hostname: own.example}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: elsewhere, namespace: team}
spec:
  parentRef: {name: gw, namespace: default}
  listeners: [{name: team, port: 9090, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {ports: [{name: http, port: 8000}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-set, namespace: default}
spec:
  parentRefs: [{kind: ListenerSet, name: extra, sectionName: alt}]
  rules: [{backendRefs: [{name: app, port: 8000}]}]
---
"#;
    let all = statuses(yaml);
    assert_eq!(
        route_conditions(&all, "to-set"),
        ["Accepted=True:Accepted", "ResolvedRefs=True:ResolvedRefs"]
    );
    let set = |name: &str| {
        all.iter()
            .find(|o| o.kind == "ListenerSet" && o.metadata.name == name)
            .unwrap_or_else(|| panic!("no status for ListenerSet {name}"))
    };
    let Status::ListenerSet(extra) = &set("extra").status else {
        panic!()
    };
    assert_eq!(extra.conditions[0].reason, "ListenersNotValid");
    assert_eq!(extra.listeners[0].attached_routes, 1);
    assert!(extra.listeners[1]
        .conditions
        .iter()
        .any(|c| c.type_ == "Conflicted" && c.reason == "HostnameConflict"));
    let Status::ListenerSet(elsewhere) = &set("elsewhere").status else {
        panic!()
    };
    assert_eq!(elsewhere.conditions[0].reason, "NotAllowed");
    let gw = all.iter().find(|o| o.kind == "Gateway").unwrap();
    let Status::Gateway(g) = &gw.status else {
        panic!()
    };
    assert_eq!(g.attached_listener_sets, Some(1));
}

/// The GatewayClass says which conformance features sluice implements, sorted and unique, and
/// leaves out what it does not serve.
#[test]
fn the_gateway_class_lists_its_supported_features() {
    let all = statuses(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: sluice}\nspec: {controllerName: sluice.dev/gateway-controller}\n",
    );
    let Status::GatewayClass(gc) = &all[0].status else {
        panic!()
    };
    let names: Vec<&str> = gc
        .supported_features
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "sorted and unique");
    for f in [
        "GRPCRoute",
        "HTTPRouteCORS",
        "BackendTLSPolicy",
        "ListenerSet",
    ] {
        assert!(names.contains(&f), "{f}");
    }
    for f in [
        "UDPRoute",
        "HTTPRouteSessionPersistence",
        "GatewayStaticAddresses",
    ] {
        assert!(!names.contains(&f), "{f}");
    }
}
