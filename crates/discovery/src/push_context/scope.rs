//! What one proxy may see: services exported to its namespace and, when a Sidecar
//! resource applies, only the hosts its egress listeners name.

use std::collections::BTreeSet;
use std::sync::Arc;

use ironmesh_registry::Service;

use super::host::NsHost;
use super::{PushContext, SidecarConfig, VsConfig, MESH_GATEWAY};
use crate::proxy::Proxy;

/// A proxy's scope: built per generation, cheap (it borrows the PushContext).
#[derive(Debug)]
pub struct SidecarScope<'a> {
    namespace: String,
    pub sidecar: Option<&'a SidecarConfig>,
    /// `None`: no Sidecar resource, everything exported is visible.
    egress: Option<Vec<NsHost>>,
    services: Vec<Arc<Service>>,
    push: &'a PushContext,
}

impl<'a> SidecarScope<'a> {
    pub(super) fn new(push: &'a PushContext, proxy: &Proxy) -> SidecarScope<'a> {
        // Sidecar resources configure sidecars only; gateways see every exported host.
        let sidecar = if proxy.is_router() {
            None
        } else {
            push.sidecar_for(proxy)
        };
        let egress = sidecar.and_then(|s| {
            if s.spec.egress.is_empty() {
                return None;
            }
            Some(
                s.spec
                    .egress
                    .iter()
                    .flat_map(|e| e.hosts.iter())
                    .map(|h| NsHost::parse(h, &s.namespace))
                    .collect(),
            )
        });
        let mut scope = SidecarScope {
            namespace: proxy.namespace.clone(),
            sidecar,
            egress,
            services: Vec::new(),
            push,
        };
        let mut seen = BTreeSet::new();
        let mut candidates: Vec<&Arc<Service>> = push
            .registry()
            .services
            .iter()
            .filter(|s| s.visible_from(&proxy.namespace))
            .filter(|s| scope.allows(&s.namespace, &s.hostname))
            .collect();
        // One service per host name; the proxy's own namespace wins a tie.
        candidates.sort_by_key(|s| (s.hostname.clone(), s.namespace != proxy.namespace));
        for s in candidates {
            if seen.insert(s.hostname.clone()) {
                scope.services.push(s.clone());
            }
        }
        scope
    }

    /// Visible services, sorted by host name.
    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    pub fn service(&self, hostname: &str) -> Option<&Arc<Service>> {
        self.services.iter().find(|s| s.hostname == hostname)
    }

    /// Whether the Sidecar's egress hosts (if any) let the proxy reach `host` from
    /// `namespace`.
    pub fn allows(&self, namespace: &str, host: &str) -> bool {
        match &self.egress {
            None => true,
            Some(list) => list.iter().any(|e| e.selects(namespace, host)),
        }
    }

    /// VirtualServices bound to `mesh` that this sidecar may use.
    pub fn mesh_virtual_services(&self) -> Vec<&'a VsConfig> {
        self.push
            .virtual_services_for(&self.namespace, MESH_GATEWAY)
            .into_iter()
            .filter(|v| v.hosts.iter().any(|h| self.allows(&v.namespace, h)))
            .collect()
    }

    /// The VirtualService that routes `hostname`: an exact host first, else the most
    /// specific wildcard; ties go to the earlier one in `candidates`.
    pub fn virtual_service_for<'v>(
        candidates: &[&'v VsConfig],
        hostname: &str,
    ) -> Option<&'v VsConfig> {
        let mut best: Option<(&'v VsConfig, (bool, usize))> = None;
        for v in candidates {
            if let Some(h) = v.matching_host(hostname) {
                let rank = super::host::specificity(h);
                if best.is_none_or(|(_, r)| rank > r) {
                    best = Some((v, rank));
                }
            }
        }
        best.map(|(v, _)| v)
    }
}
