//! A connected proxy as the control plane sees it: who it is (from the xDS `Node` it sent
//! on its first request) and what it needs (sidecar, gateway, or proxyless gRPC).

use std::collections::BTreeMap;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use ironmesh_registry::Locality;

/// What kind of proxy sent the node id (`sidecar~…` or `router~…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Sidecar,
    /// A gateway (`pilot-agent proxy router`).
    Router,
}

/// How traffic reaches the sidecar (`INTERCEPTION_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterceptionMode {
    Redirect,
    Tproxy,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("node id {0:?} is not TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN: the proxy must send an Istio-style node id, e.g. sidecar~10.1.0.5~reviews-v1-abc.default~default.svc.cluster.local")]
    BadId(String),
    #[error("node id {id:?}: unknown proxy type {kind:?}: use sidecar or router")]
    BadType { id: String, kind: String },
    #[error("node id {id:?}: {ip:?} is not an IP address: put the pod IP in the second part of the id or in INSTANCE_IPS")]
    BadIp { id: String, ip: String },
}

/// A proxy's identity and placement, parsed once per stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Proxy {
    /// The node id as sent.
    pub id: String,
    pub kind: ProxyKind,
    /// `INSTANCE_IPS`, else the IP in the node id.
    pub ip_addresses: Vec<IpAddr>,
    /// The third part of the id (`pod.namespace`).
    pub pod_id: String,
    /// The fourth part of the id (`namespace.svc.cluster.local`).
    pub dns_domain: String,
    /// The namespace the proxy's config comes from.
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: Option<String>,
    pub workload_name: Option<String>,
    pub cluster_id: Option<String>,
    pub mesh_id: Option<String>,
    pub interception_mode: InterceptionMode,
    /// `GENERATOR` metadata: `grpc` means a proxyless gRPC client.
    pub generator: Option<String>,
    pub istio_version: Option<String>,
    pub locality: Locality,
}

impl Proxy {
    /// Parses the node id and metadata the way istiod does.
    pub fn from_node(node: &Node) -> Result<Proxy, ProxyError> {
        let id = node.id.clone();
        let parts: Vec<&str> = id.split('~').collect();
        if parts.len() != 4 {
            return Err(ProxyError::BadId(id));
        }
        let kind = match parts[0] {
            "sidecar" => ProxyKind::Sidecar,
            "router" => ProxyKind::Router,
            other => {
                return Err(ProxyError::BadType {
                    id: id.clone(),
                    kind: other.to_string(),
                })
            }
        };
        let meta = node.metadata.as_ref();
        let text = |key: &str| meta.and_then(|m| string_field(m, key));

        let mut ip_addresses = Vec::new();
        if let Some(ips) = text("INSTANCE_IPS") {
            for ip in ips.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match ip.parse() {
                    Ok(ip) => ip_addresses.push(ip),
                    Err(_) => {
                        return Err(ProxyError::BadIp {
                            id: id.clone(),
                            ip: ip.to_string(),
                        })
                    }
                }
            }
        }
        if ip_addresses.is_empty() {
            let ip = parts[1].parse().map_err(|_| ProxyError::BadIp {
                id: id.clone(),
                ip: parts[1].to_string(),
            })?;
            ip_addresses.push(ip);
        }

        let dns_domain = parts[3].to_string();
        let namespace = text("NAMESPACE")
            .filter(|n| !n.is_empty())
            .or_else(|| {
                dns_domain
                    .split_once(".svc.")
                    .map(|(ns, _)| ns.to_string())
                    .filter(|ns| !ns.is_empty())
            })
            .or_else(|| parts[2].split_once('.').map(|(_, ns)| ns.to_string()))
            .unwrap_or_else(|| ironmesh_config::object::DEFAULT_NAMESPACE.to_string());

        let labels = meta
            .and_then(|m| m.fields.get("LABELS"))
            .and_then(|v| match &v.kind {
                Some(Kind::StructValue(s)) => Some(
                    s.fields
                        .iter()
                        .filter_map(|(k, v)| value_text(v).map(|t| (k.clone(), t)))
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default();

        let interception_mode = match text("INTERCEPTION_MODE").as_deref() {
            Some("TPROXY") => InterceptionMode::Tproxy,
            Some("NONE") => InterceptionMode::None,
            _ => InterceptionMode::Redirect,
        };
        let locality = node
            .locality
            .as_ref()
            .map(|l| Locality {
                region: l.region.clone(),
                zone: l.zone.clone(),
                subzone: l.sub_zone.clone(),
            })
            .unwrap_or_default();

        Ok(Proxy {
            kind,
            ip_addresses,
            pod_id: parts[2].to_string(),
            dns_domain,
            namespace,
            labels,
            service_account: text("SERVICE_ACCOUNT"),
            workload_name: text("WORKLOAD_NAME"),
            cluster_id: text("CLUSTER_ID"),
            mesh_id: text("MESH_ID"),
            interception_mode,
            generator: text("GENERATOR"),
            istio_version: text("ISTIO_VERSION"),
            locality,
            id,
        })
    }

    /// A gRPC client or server that speaks xDS itself (no Envoy).
    pub fn is_proxyless_grpc(&self) -> bool {
        self.generator.as_deref() == Some("grpc")
    }

    pub fn is_router(&self) -> bool {
        self.kind == ProxyKind::Router
    }

    /// The pod name, from the id's `pod.namespace` part.
    pub fn pod_name(&self) -> &str {
        self.pod_id
            .split_once('.')
            .map(|(p, _)| p)
            .unwrap_or(&self.pod_id)
    }
}

fn string_field(s: &Struct, key: &str) -> Option<String> {
    s.fields.get(key).and_then(value_text)
}

fn value_text(v: &Value) -> Option<String> {
    match &v.kind {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        Some(Kind::NumberValue(n)) => Some(n.to_string()),
        Some(Kind::BoolValue(b)) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::node;

    #[test]
    fn parses_the_gateway_bootstrap_of_the_seeds() {
        let n = node(
            "router~10.10.241.86~istio-ingressgateway-cb9c6b49d-2bm49.istio-system~istio-system.svc.cluster.local",
            &[
                ("NAMESPACE", "istio-system"),
                ("INSTANCE_IPS", "10.10.241.86"),
                ("SERVICE_ACCOUNT", "istio-ingressgateway-service-account"),
                ("WORKLOAD_NAME", "istio-ingressgateway"),
                ("CLUSTER_ID", "Kubernetes"),
                ("MESH_ID", "cluster.local"),
                ("ISTIO_VERSION", "1.17.2"),
            ],
            &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
        );
        let p = Proxy::from_node(&n).unwrap();
        assert_eq!(p.kind, ProxyKind::Router);
        assert_eq!(p.namespace, "istio-system");
        assert_eq!(
            p.ip_addresses,
            vec!["10.10.241.86".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(p.labels["istio"], "ingressgateway");
        assert_eq!(p.pod_name(), "istio-ingressgateway-cb9c6b49d-2bm49");
        assert_eq!(p.cluster_id.as_deref(), Some("Kubernetes"));
        assert!(!p.is_proxyless_grpc());
    }

    #[test]
    fn namespace_falls_back_to_the_dns_domain_and_grpc_is_detected() {
        let n = node(
            "sidecar~127.0.0.1~client.default~prod.svc.cluster.local",
            &[("GENERATOR", "grpc"), ("INSTANCE_IPS", "127.0.0.1,::1")],
            &[],
        );
        let p = Proxy::from_node(&n).unwrap();
        assert_eq!(p.namespace, "prod");
        assert!(p.is_proxyless_grpc());
        assert_eq!(p.ip_addresses.len(), 2);
    }

    #[test]
    fn bad_ids_say_what_is_expected() {
        for (id, want) in [
            ("nonsense", "TYPE~IP"),
            (
                "waypointx~1.2.3.4~a.b~b.svc.cluster.local",
                "unknown proxy type",
            ),
            ("sidecar~notanip~a.b~b.svc.cluster.local", "not an IP"),
        ] {
            let err = Proxy::from_node(&node(id, &[], &[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{id}: {err}");
        }
    }
}
