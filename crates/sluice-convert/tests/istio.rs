//! Istio → Gateway API: listeners from servers, HTTPRoute rules from http routes, subsets as
//! generated Services so weights survive, ReferenceGrants, and one warning per dropped feature.
mod common;
use common::*;
use serde_json::json;
use sluice_convert::From;

#[test]
fn servers_become_listeners() {
    let c = convert(&load("testdata/istio.yaml"), From::Istio);
    let gw = find(&c.objects, "Gateway", "default", "public");
    assert_eq!(
        gw.value["spec"],
        json!({"gatewayClassName": "istio", "listeners": [
            {"name": "http-all-hosts", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}
        ]})
    );
}

#[test]
fn http_routes_become_rules_with_subsets_as_services() {
    let c = convert(&load("testdata/istio.yaml"), From::Istio);
    let route = &find(&c.objects, "HTTPRoute", "shop", "shop").value["spec"];
    assert_eq!(
        route["parentRefs"],
        json!([{"name": "public", "namespace": "default"}])
    );
    assert_eq!(route["hostnames"], json!(["shop.example.com"]));
    assert_eq!(
        names(&route["rules"]),
        ["canary", "api", "old", "legacy", "slow", "web"]
    );
    let canary = &route["rules"][0];
    let header = json!([{"name": "x-canary", "type": "Exact", "value": "yes"}]);
    assert_eq!(
        canary["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/api"}, "headers": header},
               {"path": {"type": "RegularExpression", "value": "/api[^/].*"}, "headers": header}])
    );
    assert_eq!(
        canary["backendRefs"],
        json!([{"name": "api-v2", "port": 8080}])
    );
    let api = &route["rules"][1];
    assert_eq!(
        api["backendRefs"],
        json!([{"name": "api-v1", "port": 8080, "weight": 80}, {"name": "api-v2", "port": 8080, "weight": 20}])
    );
    assert_eq!(
        api["timeouts"],
        json!({"request": "3s", "backendRequest": "1s"})
    );
    assert_eq!(api["retry"], json!({"attempts": 3, "codes": [503]}));
    assert_eq!(
        api["filters"],
        json!([{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-from", "value": "gateway"}], "remove": ["x-debug"]}},
               {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "api-v2", "port": 8080}, "percent": 10}}])
    );
    assert_eq!(
        route["rules"][2],
        json!({"name": "old", "matches": [{"path": {"type": "Exact", "value": "/old"}}],
               "filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 301, "path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}}}]})
    );
    // A prefix rewrite keeps its PathPrefix match (the mid-element tail cannot be rewritten).
    assert_eq!(
        route["rules"][3]["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/legacy"}}])
    );
    assert_eq!(
        route["rules"][3]["filters"],
        json!([{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}}])
    );
    assert_eq!(
        route["rules"][3]["backendRefs"],
        json!([{"name": "web", "namespace": "frontend", "port": 80}])
    );
    // The catch-all, as a regex: a PathPrefix / would outrank the /api regex of the earlier
    // rules, which Istio gives /apix.
    assert_eq!(
        route["rules"][5]["matches"],
        json!([{"path": {"type": "RegularExpression", "value": "/.*"}}])
    );

    // Subsets of a ServiceEntry: Services without selector, EndpointSlices of the subset's endpoints.
    let v1 = find(&c.objects, "Service", "shop", "api-v1");
    assert_eq!(
        v1.value["metadata"]["annotations"],
        json!({"convert.sluice.dev/source": "api.shop.svc.cluster.local|v1"})
    );
    assert_eq!(
        v1.value["spec"],
        json!({"ports": [{"name": "http", "port": 8080, "appProtocol": "http"}]})
    );
    let slice = find(&c.objects, "EndpointSlice", "shop", "api-v1-1");
    assert_eq!(
        slice.value["metadata"]["labels"],
        json!({"kubernetes.io/service-name": "api-v1"})
    );
    assert_eq!(
        slice.value["ports"],
        json!([{"name": "http", "port": 9001}])
    );
    assert_eq!(slice.value["endpoints"].as_array().map(Vec::len), Some(2));
    let v2 = find(&c.objects, "Service", "shop", "api-v2");
    assert!(
        v2.comments[1].contains("this traffic policy applies to host api.shop.svc.cluster.local, not to the Service api-v2"),
        "{:?}",
        v2.comments
    );
    find(&c.objects, "EndpointSlice", "shop", "api-v2-1");

    // The backend in another namespace is granted there.
    let grant = find(
        &c.objects,
        "ReferenceGrant",
        "frontend",
        "from-shop-httproute-to-service",
    );
    assert_eq!(
        grant.value["spec"]["to"],
        json!([{"group": "", "kind": "Service", "name": "web"}])
    );
}

#[test]
fn subsets_of_a_kubernetes_service_extend_its_selector() {
    let loaded = load_text(concat!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: ns}\n",
        "spec:\n  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - route:\n",
        "    - destination: {host: app, subset: blue}\n      weight: 1\n",
        "    - destination: {host: app, subset: green}\n      weight: 3\n",
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: app, namespace: ns}\n",
        "spec:\n  host: app\n  subsets:\n  - {name: blue, labels: {color: blue}}\n  - {name: green, labels: {color: green}}\n",
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: ns}\n",
        "spec:\n  selector: {app: app}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n",
    ));
    let c = convert(&loaded, From::Istio);
    let blue = find(&c.objects, "Service", "ns", "app-blue");
    assert_eq!(
        blue.value["spec"]["selector"],
        json!({"app": "app", "color": "blue"})
    );
    assert_eq!(
        blue.value["spec"]["ports"],
        json!([{"name": "http", "port": 80, "targetPort": 8080}])
    );
    find(&c.objects, "Service", "ns", "app-green");
    assert!(
        !c.objects.iter().any(|o| o.kind == "EndpointSlice"),
        "Pods are found by the cluster"
    );
    let rule = &find(&c.objects, "HTTPRoute", "ns", "r").value["spec"]["rules"][0];
    assert_eq!(
        rule["backendRefs"],
        json!([{"name": "app-blue", "port": 80, "weight": 1}, {"name": "app-green", "port": 80, "weight": 3}])
    );
    // The gateway is not among the objects: warned.
    assert_eq!(warned_fields(&c), ["spec.gateways[0]"]);
}

#[test]
fn one_warning_per_dropped_feature() {
    let c = convert(&load("testdata/istio.yaml"), From::Istio);
    assert_eq!(
        warned_fields(&c),
        [
            "spec.http[1].retries.retryOn",
            "spec.http[3].rewrite.uri",
            "spec.http[4].fault",
            "spec.http[5].corsPolicy",
            "spec.http[6]",
            "spec.subsets[1].trafficPolicy"
        ]
    );
    let yaml = sluice_convert::yaml(&c.objects);
    for w in &c.warnings {
        assert!(
            yaml.contains(&w.message),
            "comment for {:?} missing",
            w.message
        );
        assert_eq!(w.code, "SLU0040");
    }
    assert!(
        yaml.contains(
            "was: spec.http[4].fault: {delay: {fixedDelay: 2s, percentage: {value: 50}}}"
        ),
        "{yaml}"
    );

    let loaded = load_text(concat!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: ns}\n",
        "spec:\n  selector: {istio: ingressgateway}\n  servers:\n",
        "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n",
        "    tls: {mode: MUTUAL, credentialName: a-cert, minProtocolVersion: TLSV1_3}\n",
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: ns}\n",
        "spec:\n  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n",
        "  - match:\n    - uri: {prefix: /a}\n      withoutHeaders: {x-a: {exact: b}}\n      method: {prefix: P}\n",
        "    rewrite: {uriRegexRewrite: {match: ^/a(.*), rewrite: /b\\1}}\n",
        "    route: [{destination: {host: s, port: {number: 80}}}]\n",
        "    retries: {attempts: 1, retryRemoteLocalities: true}\n",
        "  - match: [{uri: {exact: /d}}]\n    directResponse: {status: 418}\n",
        "  - match: [{uri: {exact: /e}}]\n    delegate: {name: other}\n",
    ));
    let c = convert(&loaded, From::Istio);
    assert_eq!(
        warned_fields(&c),
        [
            "spec.http[0].match[0].method",
            "spec.http[0].match[0].withoutHeaders",
            "spec.http[0].retries.retryRemoteLocalities",
            "spec.http[0].rewrite.uriRegexRewrite",
            "spec.http[1].directResponse",
            "spec.http[2].delegate",
            "spec.servers[0].tls.minProtocolVersion",
            "spec.servers[0].tls.mode",
        ]
    );
    let gw = find(&c.objects, "Gateway", "ns", "gw");
    assert_eq!(
        gw.value["spec"]["listeners"][0]["tls"],
        json!({"certificateRefs": [{"group": "", "kind": "Secret", "name": "a-cert", "namespace": "istio-system"}]})
    );
}

#[test]
fn https_redirect_servers_get_a_redirect_route_of_their_own() {
    let loaded = load_text(concat!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: ns}\n",
        "spec:\n  selector: {istio: ingressgateway}\n  servers:\n",
        "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [ns/a.example.com]\n    tls: {httpsRedirect: true}\n",
        "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [./a.example.com]\n    tls: {mode: SIMPLE, credentialName: a-cert}\n",
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: ns}\n",
        "spec:\n  hosts: [a.example.com]\n  gateways: [gw]\n  tls:\n  - match: [{sniHosts: [a.example.com]}]\n    route: [{destination: {host: s, port: {number: 443}}}]\n",
        "  tcp:\n  - route: [{destination: {host: t, port: {number: 9000}}}]\n",
    ));
    let c = convert(&loaded, From::Istio);
    let gw = find(&c.objects, "Gateway", "ns", "gw");
    let l = &gw.value["spec"]["listeners"];
    assert_eq!(
        l[0]["allowedRoutes"],
        json!({"namespaces": {"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "ns"}}}})
    );
    assert_eq!(
        l[1]["allowedRoutes"],
        json!({"namespaces": {"from": "Same"}})
    );
    let redirect = find(
        &c.objects,
        "HTTPRoute",
        "ns",
        "gw-http-a-example-com-https-redirect",
    );
    assert_eq!(
        redirect.value["spec"]["parentRefs"],
        json!([{"name": "gw", "sectionName": "http-a-example-com"}])
    );
    let tls = find(&c.objects, "TLSRoute", "ns", "vs-tls-0");
    assert_eq!(tls.value["spec"]["hostnames"], json!(["a.example.com"]));
    // Routes of the VirtualService attach to the other listener only.
    assert_eq!(
        tls.value["spec"]["parentRefs"],
        json!([{"name": "gw", "sectionName": "https-a-example-com"}])
    );
    assert_eq!(
        tls.value["spec"]["rules"],
        json!([{"backendRefs": [{"name": "s", "port": 443}]}])
    );
    let tcp = find(&c.objects, "TCPRoute", "ns", "vs-tcp-0");
    assert_eq!(
        tcp.value["spec"]["rules"],
        json!([{"backendRefs": [{"name": "t", "port": 9000}]}])
    );
}
