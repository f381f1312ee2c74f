//! The `status` of Gateway API objects, as the API server would return them after a controller
//! wrote it (`sluice status`), decided by the same rules the compile follows; and the same
//! findings as diagnostics with file and line for `validate`. Pure: the time to stamp on
//! conditions is passed in.
use crate::compile::gateway_api::{
    attached_listener_sets, attaches, backend_problem, frontend_tls, http_grpc_conflict,
    listener_allows, listener_certificate, listener_kinds, listener_set_allowed, listeners_of,
    our_class, owner_listener_conflict, parent_gateway, route_domains, route_parts,
    served_gateways, ROUTE_KINDS,
};
use crate::registry::Registry;
use crate::GatewayIdentity;
use serde::Serialize;
use sluice_api::gateway_api::*;
use sluice_config::diag::codes;
use sluice_config::validate::P;
use sluice_config::{Diagnostic, Kind, Object, Severity, Store};
use std::sync::Arc;

/// The Gateway API conformance features sluice implements (v1.6 names, sorted), as the
/// GatewayClass's `supportedFeatures` says to conformance tooling. What is left out is reported
/// where it is used (field warnings, not-served kinds).
pub const SUPPORTED_FEATURES: [&str; 36] = [
    "BackendTLSPolicy",
    "BackendTLSPolicySANValidation",
    "GRPCRoute",
    "Gateway",
    "GatewayFrontendClientCertificateValidation",
    "GatewayFrontendClientCertificateValidationInsecureFallback",
    "GatewayHTTPListenerIsolation",
    "GatewayPort8080",
    "HTTPRoute",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteBackendTimeout",
    "HTTPRouteCORS",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteRetry",
    "HTTPRouteRetryBackoff",
    "HTTPRouteSchemeRedirect",
    "ListenerSet",
    "ReferenceGrant",
    "TCPRoute",
    "TLSRoute",
    "TLSRouteModeMixed",
    "TLSRouteModeTerminate",
];

/// The controller name sluice writes into route status.
pub const CONTROLLER: &str = "sluice.dev/gateway-controller";

/// One object with its status, as `kubectl get -o yaml` would show the parts that matter.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub status: Status,
}

#[derive(Serialize, Debug)]
pub struct Metadata {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

#[derive(Serialize, Debug)]
#[serde(untagged)]
pub enum Status {
    GatewayClass(GatewayClassStatus),
    Gateway(GatewayStatus),
    Route(RouteStatus),
    Policy(PolicyStatus),
    ListenerSet(ListenerSetStatus),
}

/// A status finding as `validate` reports it: a warning at the field that causes it.
fn finding(o: &Object, at: &P, message: String) -> Diagnostic {
    Diagnostic {
        resource: Some(o.resource()),
        ..Diagnostic::new(Severity::Warning, codes::ROUTE_NOT_ACCEPTED, message)
            .at(o.origin_at(&at.0))
    }
}

/// Conditions stamped with one time and generation.
struct Stamp<'a> {
    now: &'a str,
    generation: Option<i64>,
}

impl Stamp<'_> {
    fn condition(
        &self,
        type_: &str,
        ok: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> Condition {
        Condition {
            type_: type_.into(),
            status: if ok {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            observed_generation: self.generation,
            last_transition_time: self.now.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }
}

fn metadata(o: &Object, namespaced: bool) -> Metadata {
    Metadata {
        name: o.name.clone(),
        namespace: namespaced.then(|| o.namespace.clone()),
        generation: o.meta.generation,
    }
}

/// Status of every GatewayClass, Gateway and HTTPRoute this instance is responsible for, and
/// the problems found, as diagnostics pointing at the fields.
pub fn gateway_api_status(
    store: &Store,
    id: &GatewayIdentity,
    now: &str,
) -> (Vec<ObjectStatus>, Vec<Diagnostic>) {
    let registry = Registry::build(store, &id.domain_suffix, &id.namespace);
    status_with(store, &registry, id, now)
}

/// `gateway_api_status` over a registry the caller has built already (the analysis has one).
pub(crate) fn status_with(
    store: &Store,
    registry: &Registry,
    id: &GatewayIdentity,
    now: &str,
) -> (Vec<ObjectStatus>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for gc in store.of_kind(Kind::GatewayClass) {
        if !(our_class(store, &gc.name) || id.gateway_classes.contains(&gc.name)) {
            continue;
        }
        let stamp = Stamp {
            now,
            generation: gc.meta.generation,
        };
        out.push(ObjectStatus {
            api_version: "gateway.networking.k8s.io/v1",
            kind: "GatewayClass",
            metadata: metadata(gc, false),
            status: Status::GatewayClass(GatewayClassStatus {
                conditions: vec![stamp.condition("Accepted", true, "Accepted", "served by sluice")],
                supported_features: SUPPORTED_FEATURES
                    .iter()
                    .map(|f| SupportedFeature { name: (*f).into() })
                    .collect(),
            }),
        });
    }
    let gateways = served_gateways(store, id);
    let sets = attached_listener_sets(store, &gateways);
    // Objects with listeners routes attach to: Gateways, then their ListenerSets.
    let owners: Vec<&Arc<Object>> = gateways
        .iter()
        .copied()
        .chain(sets.iter().copied())
        .collect();
    let routes: Vec<&Arc<Object>> = ROUTE_KINDS.iter().flat_map(|k| store.of_kind(*k)).collect();
    // (owner, listener) → routes accepted there, for attachedRoutes.
    let mut attached: Vec<(usize, usize)> = Vec::new();
    // (owner, route) for every accepted parent, for policies' ancestors.
    let mut accepted_on: Vec<(usize, &Arc<Object>)> = Vec::new();
    for route in &routes {
        let parts = route_parts(route).expect("route kind");
        let backends = parts.backends();
        let kind = route.kind.as_str();
        let stamp = Stamp {
            now,
            generation: route.meta.generation,
        };
        let mut parents = Vec::new();
        for (pi, pr) in parts.parents.iter().enumerate() {
            let ns = pr.namespace.as_deref().unwrap_or(&route.namespace);
            let group_ok = pr.group.as_deref().unwrap_or(GROUP) == GROUP;
            let Some(gi) = owners.iter().position(|g| {
                group_ok
                    && pr.kind.as_deref().unwrap_or("Gateway") == g.kind.as_str()
                    && g.namespace == ns
                    && Some(g.name.as_str()) == pr.name.as_deref()
            }) else {
                continue; // not a parent of ours: no status entry, as the spec says
            };
            let gw = owners[gi];
            let listeners = listeners_of(gw);
            let selected: Vec<usize> = (0..listeners.len())
                .filter(|&li| attaches(pr, route, gw, &listeners[li]))
                .collect();
            let allowed: Vec<usize> = selected
                .iter()
                .copied()
                .filter(|&li| listener_allows(store, gw, &listeners[li], route))
                .collect();
            let hosted: Vec<usize> = allowed
                .iter()
                .copied()
                .filter(|&li| !route_domains(&listeners[li], parts.hostnames).is_empty())
                .collect();
            // An older route of the other kind (HTTPRoute/GRPCRoute) with the hostnames wins.
            let mut winner = None;
            let hosted: Vec<usize> = hosted
                .into_iter()
                .filter(
                    |&li| match http_grpc_conflict(store, gw, &listeners[li], route) {
                        Some(w) => {
                            winner.get_or_insert(w);
                            false
                        }
                        None => true,
                    },
                )
                .collect();
            let accepted = match (selected.is_empty(), allowed.is_empty(), hosted.is_empty()) {
                (true, _, _) => stamp.condition(
                    "Accepted",
                    false,
                    "NoMatchingParent",
                    format!(
                        "no listener of Gateway {} matches the parentRef's sectionName/port",
                        gw.key()
                    ),
                ),
                (false, true, _) => stamp.condition(
                    "Accepted",
                    false,
                    "NotAllowedByListeners",
                    format!(
                        "the listeners of Gateway {} do not allow {kind}s from namespace {}",
                        gw.key(),
                        route.namespace
                    ),
                ),
                (false, false, true) if winner.is_some() => {
                    let w = winner.expect("guarded");
                    stamp.condition(
                        "Accepted",
                        false,
                        "Conflicted",
                        format!(
                            "{} {} is older and has these hostnames on the listener: of an HTTPRoute and a GRPCRoute sharing hostnames only the older is accepted",
                            w.kind,
                            w.key()
                        ),
                    )
                }
                (false, false, true) => stamp.condition(
                    "Accepted",
                    false,
                    "NoMatchingListenerHostname",
                    "no hostname of the route intersects a listener's hostname",
                ),
                _ => stamp.condition("Accepted", true, "Accepted", "attached"),
            };
            if accepted.status == ConditionStatus::False {
                diags.push(finding(
                    route,
                    &P::spec().k("parentRefs").i(pi),
                    format!(
                        "{kind} {} is not accepted by Gateway {} ({}): {}",
                        route.key(),
                        gw.key(),
                        accepted.reason,
                        accepted.message
                    ),
                ));
            }
            attached.extend(hosted.iter().map(|&li| (gi, li)));
            if accepted.status == ConditionStatus::True {
                accepted_on.push((gi, *route));
            }
            let resolved = resolve_refs(
                store,
                registry,
                &id.domain_suffix,
                route,
                &backends,
                &mut diags,
            );
            parents.push(RouteParentStatus {
                parent_ref: ParentReference {
                    group: Some(pr.group.clone().unwrap_or_else(|| GROUP.into())),
                    kind: Some(pr.kind.clone().unwrap_or_else(|| "Gateway".into())),
                    ..pr.clone()
                },
                controller_name: CONTROLLER.into(),
                conditions: vec![
                    accepted,
                    match resolved {
                        None => stamp.condition(
                            "ResolvedRefs",
                            true,
                            "ResolvedRefs",
                            "all references resolved",
                        ),
                        Some((reason, message)) => {
                            stamp.condition("ResolvedRefs", false, reason, message)
                        }
                    },
                ],
            });
        }
        if !parents.is_empty() {
            out.push(ObjectStatus {
                api_version: "gateway.networking.k8s.io/v1",
                kind,
                metadata: metadata(route, true),
                status: Status::Route(RouteStatus { parents }),
            });
        }
    }
    for (gi, gw) in owners.iter().enumerate() {
        out.push(gateway_status(store, gw, gi, &attached, now, &mut diags));
    }
    // ListenerSets whose Gateway is ours but does not let them attach.
    for ls in store.of_kind(Kind::ListenerSet) {
        let Some(gw) =
            parent_gateway(store, ls).filter(|g| gateways.iter().any(|x| Arc::ptr_eq(x, g)))
        else {
            continue;
        };
        if !listener_set_allowed(store, gw, ls) {
            let stamp = Stamp {
                now,
                generation: ls.meta.generation,
            };
            let why = format!(
                "Gateway {} does not allow ListenerSets from namespace {} (spec.allowedListeners)",
                gw.key(),
                ls.namespace
            );
            diags.push(finding(
                ls,
                &P::spec().k("parentRef"),
                format!("ListenerSet {} is not attached: {why}", ls.key()),
            ));
            out.push(ObjectStatus {
                api_version: "gateway.networking.k8s.io/v1",
                kind: "ListenerSet",
                metadata: metadata(ls, true),
                status: Status::ListenerSet(ListenerSetStatus {
                    conditions: vec![
                        stamp.condition("Accepted", false, "NotAllowed", why.clone()),
                        stamp.condition("Programmed", false, "Invalid", why),
                    ],
                    listeners: Vec::new(),
                }),
            });
        }
    }
    for policy in store.of_kind(Kind::BackendTlsPolicy) {
        let routed: Vec<(&Arc<Object>, &Arc<Object>)> = accepted_on
            .iter()
            .filter_map(|(gi, r)| Some((parent_gateway(store, owners[*gi])?, *r)))
            .collect();
        if let Some(status) = backend_tls_policy_status(store, policy, &routed, now) {
            out.push(status);
        }
    }
    (out, diags)
}

/// A BackendTLSPolicy's status: one ancestor entry per served Gateway that has a route to a
/// Service the policy targets, with Accepted (or Conflicted, when an older or more specific
/// policy wins every port it targets) and ResolvedRefs (its CA ConfigMaps).
fn backend_tls_policy_status(
    store: &Store,
    policy: &Object,
    routed: &[(&Arc<Object>, &Arc<Object>)],
    now: &str,
) -> Option<ObjectStatus> {
    let spec = policy.backend_tls_policy()?;
    let stamp = Stamp {
        now,
        generation: policy.meta.generation,
    };
    // A backend the policy targets: a Service of its namespace, on a port it covers.
    let targeted = |route: &Object, b: &BackendObjectReference| {
        let ns = b.namespace.as_deref().unwrap_or(&route.namespace);
        let name = b.name.as_deref().unwrap_or("");
        let port_name = store
            .get(Kind::Service, ns, name)
            .and_then(|o| o.service())
            .and_then(|svc| svc.ports.iter().find(|p| p.port == b.port.map(i64::from)))
            .and_then(|p| p.name.clone())
            .unwrap_or_default();
        b.group.as_deref().is_none_or(str::is_empty)
            && b.kind.as_deref().is_none_or(|k| k == "Service")
            && ns == policy.namespace
            && crate::backend_tls::targets(spec, name, &port_name).is_some()
    };
    // Gateways with an accepted route to a targeted backend (TCP routes and TLS routes after
    // termination speak TLS to it too; passed-through TLS is the client's own).
    let mut ancestors: Vec<&Arc<Object>> = Vec::new();
    for (gw, route) in routed {
        let to_target = route_parts(route)
            .is_some_and(|parts| parts.backends().iter().any(|(_, b)| targeted(route, b)));
        if to_target && !ancestors.iter().any(|a| Arc::ptr_eq(a, gw)) {
            ancestors.push(gw);
        }
    }
    if ancestors.is_empty() {
        return None;
    }
    // The ports each target covers: its sectionName, else every port of the Service.
    let wins_somewhere = spec.target_refs.iter().any(|t| {
        let name = t.name.as_deref().unwrap_or("");
        let ports: Vec<String> = match &t.section_name {
            Some(s) => vec![s.clone()],
            None => store
                .get(Kind::Service, &policy.namespace, name)
                .and_then(|o| o.service())
                .map(|svc| {
                    svc.ports
                        .iter()
                        .map(|p| p.name.clone().unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default(),
        };
        ports.iter().any(|port| {
            crate::backend_tls::policies_for(store, &policy.namespace, name, port)
                .first()
                .is_some_and(|w| w.key() == policy.key())
        })
    });
    let (applied, bad_ref) = crate::backend_tls::upstream(store, policy);
    let accepted = match (&applied, wins_somewhere) {
        (_, false) => stamp.condition(
            "Accepted",
            false,
            "Conflicted",
            "an older or more specific BackendTLSPolicy targets the same Service ports",
        ),
        (Err((reason, message)), _) => stamp.condition("Accepted", false, reason, message.clone()),
        (Ok(_), true) => stamp.condition("Accepted", true, "Accepted", "applied"),
    };
    let refs = match &bad_ref {
        None => stamp.condition("ResolvedRefs", true, "ResolvedRefs", ""),
        Some((reason, message)) => stamp.condition("ResolvedRefs", false, reason, message.clone()),
    };
    let ancestors = ancestors
        .iter()
        .map(|gw| PolicyAncestorStatus {
            ancestor_ref: ParentReference {
                group: Some(GROUP.into()),
                kind: Some("Gateway".into()),
                namespace: Some(gw.namespace.clone()),
                name: Some(gw.name.clone()),
                ..Default::default()
            },
            controller_name: CONTROLLER.into(),
            conditions: vec![accepted.clone(), refs.clone()],
        })
        .collect();
    Some(ObjectStatus {
        api_version: "gateway.networking.k8s.io/v1",
        kind: "BackendTLSPolicy",
        metadata: metadata(policy, true),
        status: Status::Policy(PolicyStatus { ancestors }),
    })
}

/// The first backend of the route that cannot be used, as `(reason, message)`.
fn resolve_refs(
    store: &Store,
    registry: &Registry,
    suffix: &str,
    route: &Object,
    backends: &[(P, BackendObjectReference)],
    diags: &mut Vec<Diagnostic>,
) -> Option<(&'static str, String)> {
    let mut first = None;
    for (at, b) in backends {
        if let Some((reason, message)) = backend_problem(store, registry, suffix, route, b) {
            diags.push(finding(
                route,
                at,
                format!(
                    "{message} ({reason}): this backend's share of requests answers {}",
                    if route.kind == Kind::GrpcRoute {
                        "503 (gRPC UNAVAILABLE)"
                    } else {
                        "500"
                    }
                ),
            ));
            first.get_or_insert((reason, message));
        }
    }
    first
}

fn gateway_status(
    store: &Store,
    gw: &Object,
    gi: usize,
    attached: &[(usize, usize)],
    now: &str,
    diags: &mut Vec<Diagnostic>,
) -> ObjectStatus {
    let stamp = Stamp {
        now,
        generation: gw.meta.generation,
    };
    let mut listeners = Vec::new();
    let mut programmed_any = false;
    let mut all_valid = true;
    for (li, l) in listeners_of(gw).iter().enumerate() {
        let protocol = l.protocol.as_deref().unwrap_or("");
        let passthrough = l.tls.as_ref().and_then(|t| t.mode) == Some(TlsModeType::Passthrough);
        // The route kinds the protocol takes, and those `allowedRoutes.kinds` leaves of them.
        let by_protocol = listener_kinds(&Listener {
            allowed_routes: None,
            ..l.clone()
        });
        let kinds = listener_kinds(l);
        let served_protocol = !by_protocol.is_empty();
        let frontend = (protocol == "HTTPS").then(|| frontend_tls::validation(store, gw, l));
        let mut conditions = Vec::new();
        let accepted = if let Some(Err((reason, message))) = frontend.as_ref().map(|f| &f.ca) {
            stamp.condition("Accepted", false, reason, message.clone())
        } else if served_protocol {
            stamp.condition("Accepted", true, "Accepted", "")
        } else {
            diags.push(finding(gw, &P::spec().k("listeners").i(li).k("protocol"), format!(
                        "listener {} of Gateway {}: {protocol} listeners are not served by this version of sluice (UnsupportedProtocol)",
                        l.name.as_deref().unwrap_or(""),
                        gw.key()
                    )));
            stamp.condition(
                "Accepted",
                false,
                "UnsupportedProtocol",
                format!("{protocol} listeners are not served by this version of sluice yet"),
            )
        };
        let clash = owner_listener_conflict(store, gw, li);
        let conflicted = match clash {
            Some(reason) => stamp.condition(
                "Conflicted",
                true,
                reason,
                "another listener on this port is not distinct from this one",
            ),
            None => stamp.condition("Conflicted", false, "NoConflicts", ""),
        };
        let kinds_ok = l.allowed_routes.as_ref().is_none_or(|a| {
            a.kinds.iter().all(|k| {
                k.group.as_deref().unwrap_or(GROUP) == GROUP
                    && k.kind.as_deref().is_some_and(|k| by_protocol.contains(&k))
            })
        });
        // The listener's own certificate (and client CAs), read once for refs and Programmed.
        let certificate = match protocol == "HTTPS" || (protocol == "TLS" && !passthrough) {
            true => listener_certificate(store, gw, l).map(|_| ()),
            false => Ok(()),
        };
        let refs = if !kinds_ok {
            Err((
                "InvalidRouteKinds",
                format!(
                    "a {protocol} listener takes {}",
                    if by_protocol.is_empty() {
                        "no route kind sluice serves".to_string()
                    } else {
                        by_protocol.join(" and ")
                    }
                ),
            ))
        } else {
            // The certificate (a CA problem is the frontend's, said below), then the client CAs.
            match (
                certificate.clone(),
                frontend.as_ref().and_then(|f| f.bad_ref.clone()),
            ) {
                (Err(e), _) if e.0 != "NoValidCACertificate" => Err(e),
                (_, Some(bad)) => Err(bad),
                (r, None) => r,
            }
        };
        let resolved = match &refs {
            Ok(()) => stamp.condition("ResolvedRefs", true, "ResolvedRefs", ""),
            Err((reason, message)) => {
                diags.push(finding(
                    gw,
                    &P::spec().k("listeners").i(li),
                    format!(
                        "listener {} of Gateway {}: {message} ({reason})",
                        l.name.as_deref().unwrap_or(""),
                        gw.key()
                    ),
                ));
                stamp.condition("ResolvedRefs", false, reason, message.clone())
            }
        };
        // Served as the compile serves it: a known protocol, no clash, a usable certificate
        // and client CA (invalid route kinds or one bad CA reference leave the rest working).
        let programmed = served_protocol && clash.is_none() && certificate.is_ok();
        programmed_any |= programmed;
        all_valid &= programmed;
        conditions.extend([
            accepted,
            conflicted,
            resolved,
            stamp.condition(
                "Programmed",
                programmed,
                if programmed { "Programmed" } else { "Invalid" },
                "",
            ),
        ]);
        listeners.push(ListenerStatus {
            name: l.name.clone().unwrap_or_default(),
            supported_kinds: kinds
                .iter()
                .map(|k| RouteGroupKind {
                    group: Some(GROUP.into()),
                    kind: Some((*k).into()),
                })
                .collect(),
            attached_routes: attached
                .iter()
                .filter(|(g, i)| *g == gi && *i == li)
                .count() as i32,
            conditions,
        });
    }
    let accepted_reason = if all_valid {
        "Accepted"
    } else {
        "ListenersNotValid"
    };
    let programmed = stamp.condition(
        "Programmed",
        programmed_any,
        if programmed_any {
            "Programmed"
        } else {
            "Invalid"
        },
        "",
    );
    let Some(spec) = gw.kube_gateway() else {
        return ObjectStatus {
            api_version: "gateway.networking.k8s.io/v1",
            kind: "ListenerSet",
            metadata: metadata(gw, true),
            status: Status::ListenerSet(ListenerSetStatus {
                conditions: vec![
                    stamp.condition("Accepted", programmed_any, accepted_reason, ""),
                    programmed,
                ],
                listeners,
            }),
        };
    };
    let mut extra = Vec::new();
    if frontend_tls::insecure_fallback(gw) {
        // The spec's signal that some listener admits clients without a certificate.
        extra.push(stamp.condition(
            "InsecureFrontendValidationMode",
            true,
            "ConfigurationChanged",
            "frontend validation with mode AllowInsecureFallback admits clients without a certificate",
        ));
    }
    ObjectStatus {
        api_version: "gateway.networking.k8s.io/v1",
        kind: "Gateway",
        metadata: metadata(gw, true),
        status: Status::Gateway(GatewayStatus {
            conditions: vec![
                // Addresses are the instance's own (its bind addresses, the load balancer in
                // front): requested ones are reported as not supported, listeners still serve.
                if spec.addresses.is_empty() {
                    stamp.condition("Accepted", programmed_any, accepted_reason, "")
                } else {
                    diags.push(finding(gw, &P::spec().k("addresses"), format!("Gateway {}: spec.addresses are not supported (UnsupportedAddress); the instance listens on its own addresses", gw.key())));
                    stamp.condition(
                        "Accepted",
                        false,
                        "UnsupportedAddress",
                        "spec.addresses are not supported: the gateway listens on its instance's addresses",
                    )
                },
                programmed,
            ]
            .into_iter()
            .chain(extra)
            .collect(),
            listeners,
            attached_listener_sets: spec.allowed_listeners.as_ref().map(|_| {
                let parent = store.get(Kind::KubeGateway, &gw.namespace, &gw.name);
                // Accepted sets: attached, with a listener that is served.
                attached_listener_sets(store, &parent.into_iter().collect::<Vec<_>>())
                    .into_iter()
                    .filter(|ls| {
                        (0..listeners_of(ls).len())
                            .any(|li| owner_listener_conflict(store, ls, li).is_none())
                    })
                    .count() as i32
            }),
            ..Default::default()
        }),
    }
}
