//! The mesh's service model: what discovery turns into Envoy clusters and endpoints.
//!
//! Built from Kubernetes Services + Pods/Endpoints/EndpointSlices and from
//! ServiceEntry/WorkloadEntry objects; immutable once built (a snapshot owns them).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

/// Application protocol of a port, from its name prefix (`http-web`, `grpc`, `tcp-db`)
/// or `appProtocol`, as Istio selects it. `Unsupported` means "sniff it".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    GrpcWeb,
    Https,
    Tls,
    Tcp,
    Mongo,
    Mysql,
    Redis,
    Udp,
    /// Unknown: the proxy detects HTTP vs TCP.
    Unsupported,
}

impl Protocol {
    /// Istio's rule: `appProtocol` first, else the port name up to the first `-`
    /// (case-insensitive); `mysql`/`redis` filters are off by default, so those are TCP.
    pub fn from_port(name: Option<&str>, app_protocol: Option<&str>, l4: Option<&str>) -> Self {
        if l4.is_some_and(|p| p.eq_ignore_ascii_case("UDP")) {
            return Protocol::Udp;
        }
        if let Some(p) = app_protocol
            .map(Self::parse)
            .filter(|p| *p != Protocol::Unsupported)
        {
            return p;
        }
        let prefix = name.unwrap_or("").split('-').next().unwrap_or("");
        Self::parse(prefix)
    }

    /// Parses a protocol name (Gateway/ServiceEntry `protocol`, port-name prefix,
    /// `appProtocol`), case-insensitively.
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "http" | "http1" | "kubernetes.io/h1" => Protocol::Http,
            "http2" | "kubernetes.io/h2c" => Protocol::Http2,
            "grpc" => Protocol::Grpc,
            "grpc-web" => Protocol::GrpcWeb,
            "https" => Protocol::Https,
            "tls" => Protocol::Tls,
            "tcp" => Protocol::Tcp,
            "mongo" => Protocol::Mongo,
            "mysql" => Protocol::Mysql,
            "redis" => Protocol::Redis,
            "udp" => Protocol::Udp,
            _ => Protocol::Unsupported,
        }
    }

    /// HTTP-family protocols get HTTP listeners and routes.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http | Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb
        )
    }

    /// Protocols that are proxied as opaque TCP.
    pub fn is_tcp(self) -> bool {
        matches!(
            self,
            Protocol::Tcp
                | Protocol::Https
                | Protocol::Tls
                | Protocol::Mongo
                | Protocol::Mysql
                | Protocol::Redis
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Http2 => "HTTP2",
            Protocol::Grpc => "GRPC",
            Protocol::GrpcWeb => "GRPC-Web",
            Protocol::Https => "HTTPS",
            Protocol::Tls => "TLS",
            Protocol::Tcp => "TCP",
            Protocol::Mongo => "Mongo",
            Protocol::Mysql => "MySQL",
            Protocol::Redis => "Redis",
            Protocol::Udp => "UDP",
            Protocol::Unsupported => "UnsupportedProtocol",
        }
    }
}

/// How a service's endpoints are found (ServiceEntry `resolution`; Kubernetes Services
/// are `ClientSideLb`, headless ones `Passthrough`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Resolution {
    /// Endpoints pushed over EDS.
    ClientSideLb,
    /// The proxy resolves the host names (STRICT_DNS).
    Dns,
    /// The proxy resolves, one address at a time (LOGICAL_DNS).
    DnsRoundRobin,
    /// Forward to the original destination (ORIGINAL_DST).
    Passthrough,
}

/// Where the service came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ServiceOrigin {
    Kubernetes,
    /// `namespace/name` of the ServiceEntry.
    ServiceEntry(String),
}

/// One port of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePort {
    /// Port name (Kubernetes ports may be unnamed when there is only one).
    pub name: String,
    /// The service port (what clients dial on the VIP).
    pub port: u16,
    pub protocol: Protocol,
    /// Kubernetes `targetPort` as a number, when given as one (a named target port is
    /// resolved per pod, into `Endpoint::port`).
    pub target_port: Option<u16>,
}

/// A service: a host name with ports, maybe a VIP, and endpoints (kept separately).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// Fully qualified host: `reviews.default.svc.cluster.local`, or a ServiceEntry host.
    pub hostname: String,
    /// Kubernetes name (or the ServiceEntry's name).
    pub name: String,
    pub namespace: String,
    /// ClusterIP or a ServiceEntry address (VIP); `None` for headless/external hosts.
    pub vip: Option<IpAddr>,
    /// Extra addresses (ServiceEntry CIDRs), as written.
    pub addresses: Vec<String>,
    pub ports: Vec<ServicePort>,
    pub resolution: Resolution,
    /// ServiceEntry `location: MESH_EXTERNAL`.
    pub mesh_external: bool,
    pub labels: BTreeMap<String, String>,
    /// Namespaces the service is visible to: `*` (all), `.`-resolved names, or empty for
    /// none (`~`). Resolved with MeshConfig defaults by the builder.
    pub export_to: Vec<String>,
    pub origin: ServiceOrigin,
    /// Pod selector (Kubernetes) or workloadSelector labels (ServiceEntry).
    pub selector: Option<BTreeMap<String, String>>,
}

impl Service {
    pub fn port(&self, number: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.port == number)
    }

    /// Whether a proxy in `namespace` may see this service (exportTo).
    pub fn visible_from(&self, namespace: &str) -> bool {
        self.export_to.iter().any(|e| e == "*" || e == namespace)
    }
}

/// `region/zone/subzone` (from `topology.kubernetes.io/region|zone` or a WorkloadEntry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub subzone: String,
}

impl Locality {
    /// Parses `region/zone/subzone` (WorkloadEntry `locality`); missing parts are empty.
    pub fn parse(s: &str) -> Locality {
        let mut parts = s.splitn(3, '/').map(str::to_string);
        Locality {
            region: parts.next().unwrap_or_default(),
            zone: parts.next().unwrap_or_default(),
            subzone: parts.next().unwrap_or_default(),
        }
    }

    /// No region, zone or subzone known.
    pub fn is_empty(&self) -> bool {
        self.region.is_empty() && self.zone.is_empty() && self.subzone.is_empty()
    }
}

impl std::fmt::Display for Locality {
    /// `region/zone/subzone`, trailing empty parts left out (`us-east1/us-east1-b`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = [&self.region, &self.zone, &self.subzone];
        let n = parts
            .iter()
            .rposition(|p| !p.is_empty())
            .map_or(0, |i| i + 1);
        for (i, p) in parts[..n].iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(p)?;
        }
        Ok(())
    }
}

/// Whether the workload's proxy accepts Istio mTLS (it has a sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TlsMode {
    Istio,
    Disabled,
}

/// One instance of a service port: an address and port with the workload's metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    /// IP address, or a host name for DNS-resolved ServiceEntries.
    pub address: String,
    /// The port to dial on the workload (the resolved target port).
    pub port: u16,
    /// The service port this endpoint serves.
    pub service_port: u16,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    pub locality: Locality,
    /// Load-balancing weight (WorkloadEntry `weight`, default 1).
    pub weight: u32,
    /// Pod ready (Kubernetes) or always true (WorkloadEntry).
    pub healthy: bool,
    /// `pod-name` or `WorkloadEntry` name.
    pub workload_name: String,
    pub namespace: String,
    pub tls_mode: TlsMode,
}

/// A workload (a Pod or a WorkloadEntry): what a proxy's own identity maps to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub ip: Option<IpAddr>,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    pub locality: Locality,
    pub ready: bool,
    /// Container ports by name → number (resolves named target ports).
    pub ports: BTreeMap<String, u16>,
}

/// Services with their endpoints, indexed for the generators.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceRegistry {
    /// Sorted by hostname, then namespace.
    pub services: Vec<Arc<Service>>,
    /// hostname → service port → endpoints (sorted by address).
    pub endpoints: BTreeMap<String, BTreeMap<u16, Vec<Endpoint>>>,
    pub workloads: Vec<Arc<Workload>>,
}

impl ServiceRegistry {
    pub fn service(&self, hostname: &str) -> Option<&Arc<Service>> {
        self.services.iter().find(|s| s.hostname == hostname)
    }

    pub fn endpoints(&self, hostname: &str, port: u16) -> &[Endpoint] {
        self.endpoints
            .get(hostname)
            .and_then(|m| m.get(&port))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The service with this host name defined in `namespace` (a host may be defined in
    /// several namespaces by ServiceEntries).
    pub fn service_in(&self, hostname: &str, namespace: &str) -> Option<&Arc<Service>> {
        self.services
            .iter()
            .find(|s| s.hostname == hostname && s.namespace == namespace)
    }

    /// Every endpoint of a service, all ports, in port order.
    pub fn all_endpoints(&self, hostname: &str) -> impl Iterator<Item = &Endpoint> + '_ {
        self.endpoints
            .get(hostname)
            .into_iter()
            .flat_map(|m| m.values().flatten())
    }

    /// The workload (Pod or WorkloadEntry) with this name in this namespace.
    pub fn workload(&self, namespace: &str, name: &str) -> Option<&Arc<Workload>> {
        self.workloads
            .iter()
            .find(|w| w.namespace == namespace && w.name == name)
    }

    /// The workload with this IP in this namespace (how a proxy finds its own pod).
    pub fn workload_by_ip(&self, ip: IpAddr) -> Option<&Arc<Workload>> {
        self.workloads.iter().find(|w| w.ip == Some(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_selection_follows_istio() {
        assert_eq!(
            Protocol::from_port(Some("http-web"), None, None),
            Protocol::Http
        );
        assert_eq!(
            Protocol::from_port(Some("grpc"), None, None),
            Protocol::Grpc
        );
        assert_eq!(
            Protocol::from_port(Some("tcp-db"), None, None),
            Protocol::Tcp
        );
        assert_eq!(
            Protocol::from_port(Some("web"), None, None),
            Protocol::Unsupported
        );
        assert_eq!(
            Protocol::from_port(Some("web"), Some("http"), None),
            Protocol::Http
        );
        assert_eq!(
            Protocol::from_port(Some("HTTP2-x"), None, None),
            Protocol::Http2
        );
        assert_eq!(
            Protocol::from_port(Some("http"), None, Some("UDP")),
            Protocol::Udp
        );
    }
}
