//! DestinationRule: Istio's `ValidateDestinationRule`, `validateTrafficPolicy` and what it
//! calls (outlier detection, connection pool, load balancer, locality and zone-aware settings,
//! client TLS), and `validateExportTo`, `validateWorkloadSelector`.
use super::names::{is_dns1123_label, localities, wildcard_domain};
use super::{duration, export_to, labels, selector_labels, Report, P};
use sluice_api::istio::*;
use std::collections::HashSet;

pub(super) fn destination_rule(r: &mut Report, s: &P, dr: &DestinationRuleSpec) {
    match dr.host.as_deref() {
        None | Some("") => r.err_help(s, "host is required", "add `host: <service name>`"),
        Some(h) => r.check(&s.k("host"), wildcard_domain(h)),
    }
    if let Some(tp) = &dr.traffic_policy {
        traffic_policy(r, &s.k("trafficPolicy"), tp);
    }
    let mut names = HashSet::new();
    for (i, sub) in dr.subsets.iter().enumerate() {
        let p = s.k("subsets").i(i);
        let name = sub.name.as_deref().unwrap_or("");
        if name.is_empty() {
            r.err_help(&p, "subset name is required", "add `name: v1`");
        } else if !is_dns1123_label(name) {
            r.err(
                &p.k("name"),
                format!("subset \"{name}\" is not a valid name (letters, digits and '-')"),
            );
        }
        if !names.insert(name) {
            r.err(&p.k("name"), format!("subset \"{name}\" is defined twice"));
        }
        labels(r, &p.k("labels"), &sub.labels);
        if let Some(tp) = &sub.traffic_policy {
            traffic_policy(r, &p.k("trafficPolicy"), tp);
        }
    }
    export_to(r, &s.k("exportTo"), &dr.export_to, false);
    if let Some(sel) = &dr.workload_selector {
        let sp = s.k("workloadSelector");
        let ns = r.object.namespace.clone();
        let only_here = dr.export_to.iter().all(|e| e == "." || *e == ns);
        if !dr.export_to.is_empty() && (!only_here || dr.export_to.len() > 1) {
            r.err_help(
                &s.k("exportTo"),
                "a DestinationRule with a workloadSelector is exported to its own namespace only",
                "write `exportTo: [\".\"]` or remove exportTo",
            );
        }
        selector_labels(
            r,
            &sp.k("matchLabels"),
            &sel.match_labels,
            "the workload selector has no labels, so it selects every workload in the namespace",
        );
    }
}

/// Istio's `validateTrafficPolicy`.
fn traffic_policy(r: &mut Report, p: &P, tp: &TrafficPolicy) {
    if tp == &TrafficPolicy::default() {
        r.err_help(
            p,
            "trafficPolicy needs at least one field",
            "remove the empty trafficPolicy",
        );
        return;
    }
    if tp.tunnel.is_some() && tp.proxy_protocol.is_some() {
        r.err(p, "tunnel and proxyProtocol cannot be set together");
        return;
    }
    settings(
        r,
        p,
        &tp.load_balancer,
        &tp.connection_pool,
        &tp.outlier_detection,
        &tp.tls,
    );
    for (i, pl) in tp.port_level_settings.iter().enumerate() {
        let pp = p.k("portLevelSettings").i(i);
        if pl.port.is_none() {
            r.err_help(
                &pp,
                "port is required in a port-level setting",
                "add `port: {number: 80}`",
            );
        }
        let empty = pl.load_balancer.is_none()
            && pl.connection_pool.is_none()
            && pl.outlier_detection.is_none()
            && pl.tls.is_none();
        if empty {
            r.err_help(&pp, "a port-level setting needs at least one of loadBalancer, connectionPool, outlierDetection or tls", "remove it");
        } else {
            settings(
                r,
                &pp,
                &pl.load_balancer,
                &pl.connection_pool,
                &pl.outlier_detection,
                &pl.tls,
            );
        }
    }
    if let Some(t) = &tp.tunnel {
        let tp = p.k("tunnel");
        if let Some(proto) = t.protocol.as_deref().filter(|x| !x.is_empty()) {
            if proto != "CONNECT" && proto != "POST" {
                r.err(&tp.k("protocol"), "tunnel protocol must be CONNECT or POST");
            }
        }
        let host = t.target_host.as_deref().unwrap_or("");
        if super::names::fqdn(host).is_err() && !super::names::is_ip(host) {
            r.err(
                &tp.k("targetHost"),
                format!("tunnel target host \"{host}\" is not a host name or an IP address"),
            );
        }
        super::port_number(
            r,
            &tp.k("targetPort"),
            Some(t.target_port.unwrap_or(0)),
            true,
        );
    }
}

/// The four settings a policy and its port-level entries share.
fn settings(
    r: &mut Report,
    p: &P,
    lb: &Option<LoadBalancerSettings>,
    pool: &Option<ConnectionPoolSettings>,
    outlier: &Option<OutlierDetection>,
    tls: &Option<ClientTlsSettings>,
) {
    if let Some(o) = outlier {
        outlier_detection(r, &p.k("outlierDetection"), o);
    }
    if let Some(c) = pool {
        connection_pool(r, &p.k("connectionPool"), c);
    }
    if let Some(l) = lb {
        load_balancer(r, &p.k("loadBalancer"), l, outlier.is_some());
    }
    if let Some(t) = tls {
        client_tls(r, &p.k("tls"), t);
    }
}

/// Istio's `validateOutlierDetection`.
fn outlier_detection(r: &mut Report, p: &P, o: &OutlierDetection) {
    duration(r, &p.k("baseEjectionTime"), o.base_ejection_time);
    duration(r, &p.k("interval"), o.interval);
    if o.consecutive_errors.is_some_and(|n| n != 0) {
        r.warn(
            &p.k("consecutiveErrors"),
            "consecutiveErrors is deprecated",
            Some("use consecutive5xxErrors or consecutiveGatewayErrors".into()),
        );
    }
    if o.split_external_local_origin_errors != Some(true)
        && o.consecutive_local_origin_failures.unwrap_or(0) > 0
    {
        r.err_help(
            &p.k("consecutiveLocalOriginFailures"),
            "consecutiveLocalOriginFailures counts only when local-origin errors are split out",
            "add `splitExternalLocalOriginErrors: true`",
        );
    }
    for (f, v) in [
        ("maxEjectionPercent", o.max_ejection_percent),
        ("minHealthPercent", o.min_health_percent),
    ] {
        if matches!(v, Some(n) if !(0..=100).contains(&n)) {
            r.err(&p.k(f), format!("{f} must be between 0 and 100"));
        }
    }
}

/// Istio's `validateConnectionPool`.
fn connection_pool(r: &mut Report, p: &P, c: &ConnectionPoolSettings) {
    if c.http.is_none() && c.tcp.is_none() {
        r.err_help(
            p,
            "connectionPool needs tcp or http",
            "remove the empty connectionPool",
        );
    }
    if let Some(h) = &c.http {
        let hp = p.k("http");
        for (f, v) in [
            ("http1MaxPendingRequests", h.http1_max_pending_requests),
            ("http2MaxRequests", h.http2_max_requests),
            ("maxRequestsPerConnection", h.max_requests_per_connection),
            ("maxRetries", h.max_retries),
            ("maxConcurrentStreams", h.max_concurrent_streams),
        ] {
            if matches!(v, Some(n) if n < 0) {
                r.err(&hp.k(f), format!("{f} must not be negative"));
            }
        }
        duration(r, &hp.k("idleTimeout"), h.idle_timeout);
        if h.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade)
            && h.use_client_protocol == Some(true)
        {
            r.err(
                &hp,
                "useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE",
            );
        }
        if let Some(ka) = &h.http2_keep_alive {
            let kp = hp.k("http2KeepAlive");
            for (f, v) in [("interval", ka.interval), ("timeout", ka.timeout)] {
                match v {
                    None => r.err_help(
                        &kp,
                        format!("http2KeepAlive needs {f}"),
                        "add `interval: 30s` and `timeout: 10s`",
                    ),
                    Some(d) => duration(r, &kp.k(f), Some(d)),
                }
            }
        }
    }
    if let Some(t) = &c.tcp {
        let tp = p.k("tcp");
        if matches!(t.max_connections, Some(n) if n < 0) {
            r.err(
                &tp.k("maxConnections"),
                "maxConnections must not be negative",
            );
        }
        duration(r, &tp.k("connectTimeout"), t.connect_timeout);
        duration(r, &tp.k("maxConnectionDuration"), t.max_connection_duration);
        // 0s turns the idle timeout off.
        duration(
            r,
            &tp.k("idleTimeout"),
            t.idle_timeout.filter(|d| d.0.as_millis() != 0),
        );
        if let Some(ka) = &t.tcp_keepalive {
            duration(r, &tp.k("tcpKeepalive").k("time"), ka.time);
            duration(r, &tp.k("tcpKeepalive").k("interval"), ka.interval);
        }
    }
}

/// Envoy's primality test for Maglev table sizes.
fn is_prime(x: u64) -> bool {
    if x != 0 && x < 4 {
        return true;
    }
    if x & 1 == 0 {
        return false;
    }
    (3..)
        .step_by(2)
        .take_while(|f| f * f <= x)
        .all(|f| x.checked_rem(f) != Some(0))
}

/// Istio's `validateLoadBalancer`.
fn load_balancer(r: &mut Report, p: &P, lb: &LoadBalancerSettings, has_outlier: bool) {
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        r.err(p, "set simple or consistentHash, not both");
    }
    if let Some(ch) = &lb.consistent_hash {
        consistent_hash(r, &p.k("consistentHash"), ch);
    }
    if lb.locality_lb_setting.is_some() && lb.zone_aware_lb_setting.is_some() {
        r.err(p, "set localityLbSetting or zoneAwareLbSetting, not both");
    }
    if let Some(l) = &lb.locality_lb_setting {
        locality_lb(r, &p.k("localityLbSetting"), l, has_outlier);
    }
    if let Some(z) = &lb.zone_aware_lb_setting {
        let zp = p.k("zoneAwareLbSetting");
        for (i, label) in z.failover_priority.iter().enumerate() {
            if TOPOLOGY_LABELS.contains(&label.as_str()) {
                r.err_help(&zp.k("failoverPriority").i(i), format!("zone-aware balancing orders regions and zones itself; \"{label}\" cannot be a failover priority"), "order regions with `failover`");
            }
        }
        failover(r, &zp, &z.failover, &z.failover_priority, has_outlier);
    }
    if let Some(w) = &lb.warmup {
        let wp = p.k("warmup");
        match w.duration {
            None => r.err_help(&wp, "warmup needs a duration", "add `duration: 60s`"),
            Some(d) => duration(r, &wp.k("duration"), Some(d)),
        }
        if w.minimum_percent.is_some_and(|m| m > 100.0) {
            r.err(
                &wp.k("minimumPercent"),
                "minimumPercent must be at most 100",
            );
        }
        if w.aggression.is_some_and(|a| a <= 0.0) {
            r.err(&wp.k("aggression"), "aggression must be above 0");
        }
    }
}

fn consistent_hash(r: &mut Report, cp: &P, ch: &ConsistentHashLb) {
    let keys = [
        ch.http_header_name.is_some(),
        ch.http_cookie.is_some(),
        ch.use_source_ip.is_some(),
        ch.http_query_parameter_name.is_some(),
    ];
    if keys.iter().filter(|k| **k).count() > 1 {
        r.err(cp, "consistentHash takes one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName");
    }
    if ch.ring_hash.is_some() && ch.maglev.is_some() {
        r.err(cp, "set ringHash or maglev, not both");
    }
    if let Some(c) = &ch.http_cookie {
        let hp = cp.k("httpCookie");
        if c.name.as_deref().unwrap_or("").is_empty() {
            r.err_help(&hp, "cookie name is required", "add `name: session`");
        }
        let mut names = HashSet::new();
        for (i, a) in c.attributes.iter().enumerate() {
            let name = a.name.as_deref().unwrap_or("");
            if name.is_empty() {
                r.err(&hp.k("attributes").i(i), "a cookie attribute needs a name");
            } else if !names.insert(name) {
                r.err(
                    &hp.k("attributes").i(i),
                    format!("cookie attribute \"{name}\" is listed twice"),
                );
            }
        }
    }
    if ch.minimum_ring_size.is_some_and(|n| n != 0) {
        r.warn(
            &cp.k("minimumRingSize"),
            "minimumRingSize is deprecated",
            Some("use `ringHash: {minimumRingSize: N}`".into()),
        );
        if ch.ring_hash.is_some() || ch.maglev.is_some() {
            r.err(
                &cp.k("minimumRingSize"),
                "minimumRingSize cannot be combined with ringHash or maglev",
            );
        }
    }
    if let Some(m) = &ch.maglev {
        let size = m.table_size.unwrap_or(0);
        let tp = cp.k("maglev").k("tableSize");
        if size == 0 {
            r.err_help(
                &cp.k("maglev"),
                "maglev needs tableSize",
                "add `tableSize: 65537` (a prime)",
            );
        } else if size >= 5_000_011 {
            r.err(&tp, "tableSize must be below 5000011");
        }
        if !is_prime(size) {
            r.err_help(
                &tp,
                format!("tableSize {size} is not a prime number"),
                "use a prime such as 65537",
            );
        }
    }
}

/// The node labels Istio's locality settings cannot put in `failoverPriority`.
const TOPOLOGY_LABELS: [&str; 3] = [
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// Istio's `ValidateLocalityLbSetting`.
fn locality_lb(r: &mut Report, p: &P, l: &LocalityLbSetting, has_outlier: bool) {
    if !l.distribute.is_empty() && !l.failover.is_empty() {
        r.err(p, "set distribute or failover, not both");
        return;
    }
    if !l.failover.is_empty() {
        if let Some((i, label)) = l
            .failover_priority
            .iter()
            .enumerate()
            .find(|(_, x)| TOPOLOGY_LABELS.contains(&x.as_str()))
        {
            r.err_help(&p.k("failoverPriority").i(i), format!("failover cannot be combined with the topology label \"{label}\" in failoverPriority"), "order regions with failover, or use failoverPriority alone");
            return;
        }
    }
    for (i, d) in l.distribute.iter().enumerate() {
        let dp = p.k("distribute").i(i);
        if d.to.values().any(|w| !(1..=100).contains(w)) {
            r.err(
                &dp.k("to"),
                "each locality weight must be between 1 and 100",
            );
            return;
        }
        let total: u32 = d.to.values().sum();
        if total != 100 {
            r.err_help(
                &dp.k("to"),
                format!("the weights add up to {total}, not 100"),
                "make the weights of `to` add up to 100",
            );
            return;
        }
        r.check(&dp.k("to"), localities(d.to.keys().map(String::as_str)));
    }
    let from = l.distribute.iter().map(|d| d.from.as_deref().unwrap_or(""));
    r.check(&p.k("distribute"), localities(from));
    failover(r, p, &l.failover, &l.failover_priority, has_outlier);
}

/// The failover rules locality and zone-aware settings share.
fn failover(
    r: &mut Report,
    p: &P,
    list: &[LocalityFailover],
    priority: &[String],
    has_outlier: bool,
) {
    if (!list.is_empty() || !priority.is_empty()) && !has_outlier {
        r.warn(p, "failover needs outlierDetection to notice unhealthy endpoints; without it traffic never fails over", Some("add `outlierDetection` to this traffic policy".into()));
    }
    for (i, f) in list.iter().enumerate() {
        let fp = p.k("failover").i(i);
        let (from, to) = (
            f.from.as_deref().unwrap_or(""),
            f.to.as_deref().unwrap_or(""),
        );
        if from == to {
            r.err(&fp, "failover from and to must be different regions");
        }
        if from.contains('/') || to.contains('/') {
            r.err(&fp, "failover names regions only (no zone or subzone)");
        }
        if from.contains('*') || to.contains('*') {
            r.err(&fp, "failover regions cannot contain '*'");
        }
    }
}

/// Istio's `ValidateTLS` for DestinationRules.
fn client_tls(r: &mut Report, p: &P, tls: &ClientTlsSettings) {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    let mode = tls.mode.unwrap_or(ClientTlsMode::Disable);
    if let Some(cm) = tls
        .credential_name
        .as_deref()
        .and_then(|c| c.strip_prefix("configmap://"))
    {
        let ns = r.object.namespace.clone();
        let same = match cm.split_once('/') {
            Some((n, name)) => n == ns && !name.is_empty(),
            None => !cm.is_empty(),
        };
        if !same {
            r.err(
                &p.k("credentialName"),
                format!(
                    "a configmap:// credentialName must name a ConfigMap in this namespace ({ns})"
                ),
            );
        }
    }
    if tls.insecure_skip_verify == Some(true) {
        let sans = !tls.subject_alt_names.is_empty();
        let clash = match mode {
            ClientTlsMode::Simple => set(&tls.ca_certificates) || set(&tls.credential_name) || sans,
            ClientTlsMode::Mutual => set(&tls.ca_certificates) || sans,
            _ => false,
        };
        if clash {
            r.err_help(p, "insecureSkipVerify turns verification off; caCertificates, credentialName (SIMPLE) and subjectAltNames would be ignored", "remove insecureSkipVerify, or the verification settings");
        }
    }
    let terminating = matches!(mode, ClientTlsMode::Simple | ClientTlsMode::Mutual);
    if terminating && set(&tls.credential_name) {
        if set(&tls.client_certificate)
            || set(&tls.ca_certificates)
            || set(&tls.private_key)
            || set(&tls.ca_crl)
        {
            r.err_help(
                p,
                "set credentialName or clientCertificate/privateKey/caCertificates/caCrl, not both",
                "keep credentialName and put the certificates in its Secret",
            );
        }
        return;
    }
    if mode == ClientTlsMode::Mutual {
        for (field, present) in [
            ("clientCertificate", set(&tls.client_certificate)),
            ("privateKey", set(&tls.private_key)),
        ] {
            if !present {
                r.err_help(
                    p,
                    format!("MUTUAL needs {field} (or credentialName)"),
                    "add `credentialName: <secret with tls.crt and tls.key>`",
                );
            }
        }
    }
}
