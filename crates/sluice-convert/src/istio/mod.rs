//! Istio → Gateway API: Gateways (servers become listeners), VirtualServices (http routes become
//! HTTPRoute rules, tls and tcp routes TLSRoutes and TCPRoutes), the Services subsets need, and
//! ReferenceGrants for references across namespaces.
mod backends;
mod gateway;
mod http;
mod l4;
mod matches;
mod precedence;

use crate::notes::Notes;
use crate::{Conversion, Options};
use backends::Backends;
use sluice_config::{Kind, Store};

pub fn convert(store: &Store, opts: &Options) -> Conversion {
    let mut notes = Notes::default();
    let mut backends = Backends::new(store, opts);
    let gateways = gateway::convert_all(store, opts, &mut notes, &mut backends.grants);
    let mut objects = Vec::new();
    let mut redirects = Vec::new();
    for g in &gateways {
        objects.push(g.output.clone());
        redirects.extend(g.redirect_routes.iter().cloned());
    }
    objects.extend(redirects);
    for vs in store.of_kind(Kind::VirtualService) {
        let parents = gateway::parent_refs(vs, &gateways, &mut notes);
        objects.extend(http::convert(vs, &parents, &mut backends, &mut notes));
        objects.extend(l4::convert(vs, &parents, &mut backends, &mut notes));
    }
    let (generated, grants) = backends.into_outputs();
    objects.extend(generated);
    objects.extend(grants.into_outputs());
    Conversion {
        objects,
        warnings: notes.warnings,
    }
}
