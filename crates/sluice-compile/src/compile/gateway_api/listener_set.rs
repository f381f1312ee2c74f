//! ListenerSets: listeners a Gateway lets other objects add (`allowedListeners`), served and
//! given status as the Gateway's own, which win a clash.
use super::*;

/// The listeners of a Gateway or of a ListenerSet.
pub(crate) fn listeners_of(o: &Object) -> &[KubeListener] {
    match (o.kube_gateway(), o.listener_set()) {
        (Some(g), _) => &g.listeners,
        (_, Some(ls)) => &ls.listeners,
        _ => &[],
    }
}

/// The Gateway whose listeners these are: the Gateway itself, or a ListenerSet's parent.
pub(crate) fn parent_gateway<'s>(store: &'s Store, o: &'s Object) -> Option<&'s Arc<Object>> {
    if o.kind == Kind::KubeGateway {
        return store.get(Kind::KubeGateway, &o.namespace, &o.name);
    }
    let p = o.listener_set()?.parent_ref.as_ref()?;
    if p.group.as_deref().unwrap_or(GROUP_DEFAULT) != GROUP_DEFAULT
        || p.kind.as_deref().unwrap_or("Gateway") != "Gateway"
    {
        return None;
    }
    let ns = p.namespace.as_deref().unwrap_or(&o.namespace);
    store.get(Kind::KubeGateway, ns, p.name.as_deref()?)
}

/// Whether the Gateway's `allowedListeners` lets this ListenerSet attach (default: none may).
pub(crate) fn listener_set_allowed(store: &Store, gw: &Object, ls: &Object) -> bool {
    let Some(ns) = gw
        .kube_gateway()
        .and_then(|g| g.allowed_listeners.as_ref())
        .and_then(|a| a.namespaces.as_ref())
    else {
        return false;
    };
    match ns.from.unwrap_or(FromNamespaces::None) {
        FromNamespaces::All => true,
        FromNamespaces::Same => ls.namespace == gw.namespace,
        FromNamespaces::None => false,
        FromNamespaces::Selector => ns
            .selector
            .as_ref()
            .is_some_and(|s| selector_matches(s, &namespace_labels(store, &ls.namespace))),
    }
}

/// The ListenerSets that name one of these Gateways as parent and that it allows, in the
/// spec's order (oldest first, then `namespace/name`).
pub(crate) fn attached_listener_sets<'s>(
    store: &'s Store,
    gateways: &[&'s Arc<Object>],
) -> Vec<&'s Arc<Object>> {
    let mut sets: Vec<&Arc<Object>> = store
        .of_kind(Kind::ListenerSet)
        .filter(|ls| {
            parent_gateway(store, ls).is_some_and(|gw| {
                gateways.iter().any(|g| Arc::ptr_eq(g, gw)) && listener_set_allowed(store, gw, ls)
            })
        })
        .collect();
    sets.sort_by(|a, b| oldest_first(a, b));
    sets
}

/// Why a listener is not served: a conflict within its own object, or, for a ListenerSet's,
/// with a listener of its Gateway or of an older ListenerSet on the same port (those win).
pub(crate) fn owner_listener_conflict(
    store: &Store,
    o: &Object,
    li: usize,
) -> Option<&'static str> {
    let own = listeners_of(o);
    if let Some(reason) = listener_conflict(own, li) {
        return Some(reason);
    }
    if o.kind != Kind::ListenerSet {
        return None;
    }
    let gw = parent_gateway(store, o)?;
    let l = &own[li];
    let earlier: Vec<&Arc<Object>> = std::iter::once(gw)
        .chain(
            attached_listener_sets(store, &[gw])
                .into_iter()
                .take_while(|s| s.key() != o.key()),
        )
        .collect();
    earlier
        .iter()
        .flat_map(|e| listeners_of(e).iter())
        .find_map(|x| clash(x, l))
}
