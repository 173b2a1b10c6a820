//! The PushContext: one immutable, indexed view of a [`Snapshot`] that every generator
//! reads while building a push. Built once per snapshot, shared by all proxies.
//!
//! It answers the questions Istio's PushContext answers: which services, VirtualServices
//! and DestinationRules a proxy may see (exportTo and the Sidecar resource), which
//! VirtualServices bind to the mesh or to a gateway, which DestinationRule applies to a
//! host (client namespace, then the service's namespace, then the root namespace), which
//! Gateways select a gateway proxy, and which ports a proxy's own workload serves.

pub mod host;
mod scope;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ironmesh_config::mesh::mesh_config::OutboundTrafficPolicyMode;
use ironmesh_config::mesh::MeshConfig;
use ironmesh_config::networking::{DestinationRule, Gateway, Sidecar, VirtualService};
use ironmesh_config::{Object, Resource};
use ironmesh_registry::{Protocol, Service, ServicePort, ServiceRegistry, Snapshot};

use crate::proxy::Proxy;
pub use scope::SidecarScope;

/// The gateway name that means "every sidecar".
pub const MESH_GATEWAY: &str = "mesh";

/// Namespaces a config object is exported to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportTo {
    All,
    /// Only these namespaces (empty: nobody, `~`).
    Namespaces(BTreeSet<String>),
}

impl ExportTo {
    /// Resolves `exportTo` (or the mesh default when it is empty) for an object in
    /// `own_namespace`.
    pub fn resolve(list: &[String], defaults: &[String], own_namespace: &str) -> ExportTo {
        let list = if list.is_empty() { defaults } else { list };
        let mut out = BTreeSet::new();
        for e in list {
            match e.as_str() {
                "*" => return ExportTo::All,
                "." => {
                    out.insert(own_namespace.to_string());
                }
                "~" => {}
                ns => {
                    out.insert(ns.to_string());
                }
            }
        }
        ExportTo::Namespaces(out)
    }

    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            ExportTo::All => true,
            ExportTo::Namespaces(set) => set.contains(namespace),
        }
    }
}

/// A VirtualService with its hosts and gateways qualified.
#[derive(Debug, Clone)]
pub struct VsConfig {
    pub name: String,
    pub namespace: String,
    pub spec: Arc<VirtualService>,
    /// Hosts with short names qualified in the VirtualService's namespace.
    pub hosts: Vec<String>,
    /// `mesh` or `namespace/name`; `[mesh]` when the spec lists none.
    pub gateways: Vec<String>,
    pub export_to: ExportTo,
}

impl VsConfig {
    /// The `istio.config` metadata path Istio puts on routes.
    pub fn config_path(&self) -> String {
        format!(
            "/apis/networking.istio.io/v1/namespaces/{}/virtual-service/{}",
            self.namespace, self.name
        )
    }

    /// The most specific of this VirtualService's hosts that covers `hostname`.
    pub fn matching_host(&self, hostname: &str) -> Option<&str> {
        self.hosts
            .iter()
            .filter(|h| host::covers(h, hostname))
            .max_by_key(|h| host::specificity(h))
            .map(String::as_str)
    }
}

/// A DestinationRule with its host qualified.
#[derive(Debug, Clone)]
pub struct DrConfig {
    pub name: String,
    pub namespace: String,
    pub host: String,
    pub spec: Arc<DestinationRule>,
    pub export_to: ExportTo,
}

impl DrConfig {
    pub fn config_path(&self) -> String {
        format!(
            "/apis/networking.istio.io/v1/namespaces/{}/destination-rule/{}",
            self.namespace, self.name
        )
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub name: String,
    pub namespace: String,
    pub spec: Arc<Gateway>,
}

impl GatewayConfig {
    /// `namespace/name`, the way VirtualServices refer to it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone)]
pub struct SidecarConfig {
    pub name: String,
    pub namespace: String,
    pub spec: Arc<Sidecar>,
}

/// A port the proxy's own workload serves, through a service that selects it.
#[derive(Debug, Clone)]
pub struct ServiceTarget {
    pub service: Arc<Service>,
    pub port: ServicePort,
    /// The port the workload listens on (the resolved `targetPort`).
    pub target_port: u16,
}

/// Everything the generators read for one push.
#[derive(Debug)]
pub struct PushContext {
    snapshot: Arc<Snapshot>,
    domain: String,
    mesh: MeshConfig,
    virtual_services: Vec<VsConfig>,
    destination_rules: Vec<DrConfig>,
    gateways: Vec<GatewayConfig>,
    sidecars: Vec<SidecarConfig>,
    /// host name → index of its first service in the registry.
    services_by_host: HashMap<String, usize>,
}

impl PushContext {
    /// Indexes `snapshot`. `domain` is the cluster DNS suffix (`cluster.local`), used to
    /// qualify short host names.
    pub fn new(snapshot: Arc<Snapshot>, domain: &str) -> PushContext {
        let mesh = snapshot.mesh.effective();
        let vs_defaults = mesh.default_virtual_service_export_to();
        let dr_defaults = mesh.default_destination_rule_export_to();
        let mut virtual_services = Vec::new();
        let mut destination_rules = Vec::new();
        let mut gateways = Vec::new();
        let mut sidecars = Vec::new();
        for obj in &snapshot.objects {
            let (name, namespace) = (obj.name().to_string(), obj.namespace().to_string());
            match &obj.resource {
                Resource::VirtualService(vs) => {
                    virtual_services.push(vs_config(obj, vs, domain, &vs_defaults));
                }
                Resource::DestinationRule(dr) => {
                    let Some(h) = dr.host.as_deref() else {
                        continue;
                    };
                    destination_rules.push(DrConfig {
                        host: host::qualify(h, &namespace, domain),
                        export_to: ExportTo::resolve(&dr.export_to, &dr_defaults, &namespace),
                        spec: Arc::new((**dr).clone()),
                        name,
                        namespace,
                    });
                }
                Resource::Gateway(gw) => gateways.push(GatewayConfig {
                    name,
                    namespace,
                    spec: Arc::new((**gw).clone()),
                }),
                Resource::Sidecar(sc) => sidecars.push(SidecarConfig {
                    name,
                    namespace,
                    spec: Arc::new((**sc).clone()),
                }),
                _ => {}
            }
        }
        let mut services_by_host = HashMap::new();
        for (i, s) in snapshot.services.services.iter().enumerate() {
            services_by_host.entry(s.hostname.clone()).or_insert(i);
        }
        PushContext {
            services_by_host,
            snapshot,
            domain: domain.to_string(),
            mesh,
            virtual_services,
            destination_rules,
            gateways,
            sidecars,
        }
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The MeshConfig in force, merged over Istio's defaults.
    pub fn mesh(&self) -> &MeshConfig {
        &self.mesh
    }

    pub fn registry(&self) -> &ServiceRegistry {
        &self.snapshot.services
    }

    /// The registry's service for a host name (indexed).
    pub fn service(&self, hostname: &str) -> Option<&Arc<Service>> {
        self.services_by_host
            .get(hostname)
            .map(|i| &self.snapshot.services.services[*i])
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn qualify(&self, host: &str, namespace: &str) -> String {
        host::qualify(host, namespace, &self.domain)
    }

    /// The Sidecar resource that applies to `proxy`: one in its namespace whose
    /// workloadSelector matches it, else its namespace's default, else the root
    /// namespace's default.
    pub fn sidecar_for(&self, proxy: &Proxy) -> Option<&SidecarConfig> {
        let in_ns = |ns: &'_ str| {
            let ns = ns.to_string();
            self.sidecars.iter().filter(move |s| s.namespace == ns)
        };
        let selected = in_ns(&proxy.namespace).find(|s| {
            s.spec
                .workload_selector
                .as_ref()
                .is_some_and(|sel| labels_subset(&sel.labels, &proxy.labels))
        });
        selected
            .or_else(|| in_ns(&proxy.namespace).find(|s| s.spec.workload_selector.is_none()))
            .or_else(|| {
                in_ns(self.mesh.root_namespace()).find(|s| s.spec.workload_selector.is_none())
            })
    }

    /// The proxy's view: its Sidecar resource and the services it may reach.
    pub fn scope(&self, proxy: &Proxy) -> SidecarScope<'_> {
        SidecarScope::new(self, proxy)
    }

    /// Outbound traffic policy for unknown destinations.
    pub fn outbound_mode(&self, proxy: &Proxy) -> OutboundTrafficPolicyMode {
        use ironmesh_config::networking::sidecar::OutboundMode;
        match self
            .sidecar_for(proxy)
            .and_then(|s| s.spec.outbound_traffic_policy.as_ref())
            .and_then(|p| p.mode)
        {
            Some(OutboundMode::RegistryOnly) => OutboundTrafficPolicyMode::RegistryOnly,
            Some(OutboundMode::AllowAny) => OutboundTrafficPolicyMode::AllowAny,
            None => self.mesh.outbound_traffic_policy_mode(),
        }
    }

    /// VirtualServices bound to `gateway` (`mesh` or `namespace/name`) that a proxy in
    /// `namespace` may see; those of its own namespace first, then by namespace and name.
    pub fn virtual_services_for(&self, namespace: &str, gateway: &str) -> Vec<&VsConfig> {
        let mut out: Vec<&VsConfig> = self
            .virtual_services
            .iter()
            .filter(|v| v.export_to.allows(namespace) || v.namespace == namespace)
            .filter(|v| v.gateways.iter().any(|g| g == gateway))
            .collect();
        out.sort_by_key(|v| {
            (
                v.namespace != namespace,
                v.namespace.clone(),
                v.name.clone(),
            )
        });
        out
    }

    /// The DestinationRule for `hostname` as seen by `proxy`, with Istio's precedence:
    /// the proxy's namespace, then the service's namespace, then the root namespace;
    /// within a namespace the most specific host wins.
    pub fn destination_rule(&self, proxy: &Proxy, hostname: &str) -> Option<&DrConfig> {
        let mut order = vec![proxy.namespace.as_str()];
        if let Some(svc) = self.service(hostname) {
            order.push(svc.namespace.as_str());
        }
        order.push(self.mesh.root_namespace());
        for ns in order {
            let best = self
                .destination_rules
                .iter()
                .filter(|d| d.namespace == ns)
                .filter(|d| ns == proxy.namespace || d.export_to.allows(&proxy.namespace))
                .filter(|d| match &d.spec.workload_selector {
                    Some(sel) => {
                        ns == proxy.namespace && labels_subset(&sel.match_labels, &proxy.labels)
                    }
                    None => true,
                })
                .filter(|d| host::covers(&d.host, hostname))
                .max_by(|a, b| {
                    host::specificity(&a.host)
                        .cmp(&host::specificity(&b.host))
                        // Equal hosts: the first by name wins, as with creation order.
                        .then_with(|| b.name.cmp(&a.name))
                });
            if best.is_some() {
                return best;
            }
        }
        None
    }

    /// Gateways whose selector matches a gateway proxy's labels, in every namespace.
    pub fn gateways_for(&self, proxy: &Proxy) -> Vec<&GatewayConfig> {
        let mut out: Vec<&GatewayConfig> = self
            .gateways
            .iter()
            .filter(|g| labels_subset(&g.spec.selector, &proxy.labels))
            .collect();
        out.sort_by_key(|g| (g.namespace.clone(), g.name.clone()));
        out
    }

    /// Ports served by the proxy's own workload: ports of services in its namespace whose
    /// selector matches its labels, or which list its IP as an endpoint. One entry per
    /// target port; the first service (by host name) wins.
    pub fn service_targets(&self, proxy: &Proxy) -> Vec<ServiceTarget> {
        let reg = self.registry();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for svc in &reg.services {
            let by_selector = svc.namespace == proxy.namespace
                && svc
                    .selector
                    .as_ref()
                    .is_some_and(|s| !s.is_empty() && labels_subset(s, &proxy.labels));
            for port in &svc.ports {
                if port.protocol == Protocol::Udp {
                    continue;
                }
                let own = reg.endpoints(&svc.hostname, port.port).iter().find(|e| {
                    proxy
                        .ip_addresses
                        .iter()
                        .any(|ip| ip.to_string() == e.address)
                });
                if !by_selector && own.is_none() {
                    continue;
                }
                let target_port = own
                    .map(|e| e.port)
                    .or(port.target_port)
                    .unwrap_or(port.port);
                if seen.insert(target_port) {
                    out.push(ServiceTarget {
                        service: svc.clone(),
                        port: port.clone(),
                        target_port,
                    });
                }
            }
        }
        out.sort_by_key(|t| t.target_port);
        out
    }
}

/// Every `selector` label is on the workload.
pub fn labels_subset(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn vs_config(obj: &Object, vs: &VirtualService, domain: &str, defaults: &[String]) -> VsConfig {
    let namespace = obj.namespace().to_string();
    let gateways = if vs.gateways.is_empty() {
        vec![MESH_GATEWAY.to_string()]
    } else {
        vs.gateways
            .iter()
            .map(|g| qualify_gateway(g, &namespace))
            .collect()
    };
    VsConfig {
        name: obj.name().to_string(),
        hosts: vs
            .hosts
            .iter()
            .map(|h| host::qualify(h, &namespace, domain))
            .collect(),
        gateways,
        export_to: ExportTo::resolve(&vs.export_to, defaults, &namespace),
        spec: Arc::new(vs.clone()),
        namespace,
    }
}

/// `mesh` stays; `name` means the gateway in the VirtualService's namespace.
pub fn qualify_gateway(gateway: &str, namespace: &str) -> String {
    if gateway == MESH_GATEWAY || gateway.contains('/') {
        gateway.to_string()
    } else {
        format!("{namespace}/{gateway}")
    }
}

#[cfg(test)]
mod tests;
