//! Test fixtures: a hand-built service registry, config loaded from YAML strings, and
//! xDS nodes, assembled into a PushContext.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use ironmesh_config::{load_str, LoadOptions};
use ironmesh_registry::model::ServiceOrigin;
use ironmesh_registry::{
    Endpoint, Locality, Protocol, Resolution, Service, ServicePort, ServiceRegistry, Snapshot,
    TlsMode,
};

use crate::proxy::Proxy;
use crate::push_context::PushContext;

fn sval(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

/// An xDS node with string metadata and `LABELS`.
pub fn node(id: &str, meta: &[(&str, &str)], labels: &[(&str, &str)]) -> Node {
    let mut fields: HashMap<String, Value> =
        meta.iter().map(|(k, v)| (k.to_string(), sval(v))).collect();
    if !labels.is_empty() {
        let l = Struct {
            fields: labels
                .iter()
                .map(|(k, v)| (k.to_string(), sval(v)))
                .collect(),
        };
        fields.insert(
            "LABELS".into(),
            Value {
                kind: Some(Kind::StructValue(l)),
            },
        );
    }
    Node {
        id: id.to_string(),
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

pub fn sidecar(pod: &str, ns: &str, ip: &str, labels: &[(&str, &str)]) -> Proxy {
    let id = format!("sidecar~{ip}~{pod}.{ns}~{ns}.svc.cluster.local");
    Proxy::from_node(&node(&id, &[("NAMESPACE", ns)], labels)).unwrap()
}

pub fn router(pod: &str, ns: &str, ip: &str, labels: &[(&str, &str)]) -> Proxy {
    let id = format!("router~{ip}~{pod}.{ns}~{ns}.svc.cluster.local");
    Proxy::from_node(&node(&id, &[("NAMESPACE", ns)], labels)).unwrap()
}

pub fn grpc_client(ns: &str) -> Proxy {
    let id = format!("sidecar~127.0.0.1~client.{ns}~{ns}.svc.cluster.local");
    Proxy::from_node(&node(&id, &[("NAMESPACE", ns), ("GENERATOR", "grpc")], &[])).unwrap()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Pod {
    name: String,
    ns: String,
    ip: String,
    labels: BTreeMap<String, String>,
    locality: Locality,
}

/// A small mesh: services, pods (which become endpoints of the services selecting
/// them), config YAML and MeshConfig YAML.
#[derive(Default)]
pub struct World {
    services: Vec<Service>,
    pods: Vec<Pod>,
    extra_endpoints: Vec<(String, Endpoint)>,
    yaml: String,
    mesh: Option<String>,
}

impl World {
    pub fn new() -> World {
        World::default()
    }

    /// A Kubernetes service; each port is `(name, port, targetPort)`, protocol from name.
    pub fn service(
        mut self,
        ns: &str,
        name: &str,
        vip: Option<&str>,
        ports: &[(&str, u16, u16)],
        selector: &[(&str, &str)],
    ) -> World {
        self.services.push(Service {
            hostname: format!("{name}.{ns}.svc.cluster.local"),
            name: name.into(),
            namespace: ns.into(),
            vip: vip.map(|v| v.parse().unwrap()),
            addresses: Vec::new(),
            ports: ports
                .iter()
                .map(|(n, p, t)| ServicePort {
                    name: n.to_string(),
                    port: *p,
                    protocol: Protocol::from_port(Some(n), None, None),
                    target_port: Some(*t),
                })
                .collect(),
            resolution: Resolution::ClientSideLb,
            mesh_external: false,
            labels: BTreeMap::new(),
            export_to: vec!["*".into()],
            origin: ServiceOrigin::Kubernetes,
            selector: Some(map(selector)),
        });
        self
    }

    /// Any service (ServiceEntry-like ones included).
    pub fn raw_service(mut self, svc: Service) -> World {
        self.services.push(svc);
        self
    }

    pub fn endpoint(mut self, host: &str, ep: Endpoint) -> World {
        self.extra_endpoints.push((host.to_string(), ep));
        self
    }

    pub fn pod(mut self, ns: &str, name: &str, ip: &str, labels: &[(&str, &str)]) -> World {
        self.pods.push(Pod {
            name: name.into(),
            ns: ns.into(),
            ip: ip.into(),
            labels: map(labels),
            locality: Locality::default(),
        });
        self
    }

    pub fn pod_in_zone(
        mut self,
        ns: &str,
        name: &str,
        ip: &str,
        labels: &[(&str, &str)],
        zone: &str,
    ) -> World {
        self = self.pod(ns, name, ip, labels);
        if let Some(p) = self.pods.last_mut() {
            p.locality = Locality {
                region: "region1".into(),
                zone: zone.into(),
                subzone: String::new(),
            };
        }
        self
    }

    pub fn config(mut self, yaml: &str) -> World {
        if !self.yaml.is_empty() {
            self.yaml.push_str("\n---\n");
        }
        self.yaml.push_str(yaml);
        self
    }

    pub fn mesh(mut self, yaml: &str) -> World {
        self.mesh = Some(yaml.to_string());
        self
    }

    pub fn snapshot(self) -> Snapshot {
        let mut reg = ServiceRegistry::default();
        for svc in &self.services {
            let mut by_port: BTreeMap<u16, Vec<Endpoint>> = BTreeMap::new();
            for pod in &self.pods {
                let Some(sel) = &svc.selector else { continue };
                if pod.ns != svc.namespace
                    || sel.is_empty()
                    || !sel.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
                {
                    continue;
                }
                for p in &svc.ports {
                    by_port.entry(p.port).or_default().push(Endpoint {
                        address: pod.ip.clone(),
                        port: p.target_port.unwrap_or(p.port),
                        service_port: p.port,
                        labels: pod.labels.clone(),
                        service_account: format!("bookinfo-{}", svc.name),
                        locality: pod.locality.clone(),
                        weight: 1,
                        healthy: true,
                        workload_name: pod.name.clone(),
                        namespace: pod.ns.clone(),
                        tls_mode: TlsMode::Istio,
                    });
                }
            }
            if !by_port.is_empty() {
                reg.endpoints.insert(svc.hostname.clone(), by_port);
            }
        }
        for (host, ep) in self.extra_endpoints {
            reg.endpoints
                .entry(host)
                .or_default()
                .entry(ep.service_port)
                .or_default()
                .push(ep);
        }
        let mut services = self.services;
        services.sort_by(|a, b| (&a.hostname, &a.namespace).cmp(&(&b.hostname, &b.namespace)));
        reg.services = services.into_iter().map(Arc::new).collect();

        let loaded = load_str("test.yaml", &self.yaml, &LoadOptions::default());
        assert_eq!(loaded.error_count(), 0, "{:#?}", loaded.diagnostics);
        let mesh = match &self.mesh {
            Some(text) => ironmesh_config::mesh::parse_mesh_config(text)
                .into_result()
                .unwrap(),
            None => ironmesh_config::mesh::MeshConfig::default(),
        };
        Snapshot {
            version: 1,
            change: ironmesh_registry::Change::Full,
            objects: loaded.objects.into_iter().map(Arc::new).collect(),
            mesh: Arc::new(mesh),
            services: Arc::new(reg),
            rejected: Vec::new(),
        }
    }

    pub fn push(self) -> PushContext {
        PushContext::new(Arc::new(self.snapshot()), "cluster.local")
    }
}

/// The Istio Bookinfo sample with an ingress gateway, istiod and kube-dns.
pub fn bookinfo() -> World {
    let http = |p: u16| [("http", p, p)];
    World::new()
        .service(
            "default",
            "productpage",
            Some("10.96.1.10"),
            &http(9080),
            &[("app", "productpage")],
        )
        .service(
            "default",
            "reviews",
            Some("10.96.1.11"),
            &http(9080),
            &[("app", "reviews")],
        )
        .service(
            "default",
            "ratings",
            Some("10.96.1.12"),
            &http(9080),
            &[("app", "ratings")],
        )
        .service(
            "default",
            "details",
            Some("10.96.1.13"),
            &http(9080),
            &[("app", "details")],
        )
        .service(
            "istio-system",
            "istio-ingressgateway",
            Some("10.96.0.20"),
            &[
                ("status-port", 15021, 15021),
                ("http2", 80, 8080),
                ("https", 443, 8443),
                ("tcp", 31400, 31400),
            ],
            &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
        )
        .service(
            "istio-system",
            "istiod",
            Some("10.96.0.30"),
            &[
                ("grpc-xds", 15010, 15010),
                ("https-dns", 15012, 15012),
                ("http-monitoring", 15014, 15014),
            ],
            &[("app", "istiod")],
        )
        .service(
            "kube-system",
            "kube-dns",
            Some("10.96.0.10"),
            &[("tcp-dns", 53, 53), ("metrics", 9153, 9153)],
            &[("k8s-app", "kube-dns")],
        )
        .pod(
            "default",
            "productpage-v1-1",
            "10.244.0.10",
            &[("app", "productpage"), ("version", "v1")],
        )
        .pod(
            "default",
            "reviews-v1-1",
            "10.244.0.11",
            &[("app", "reviews"), ("version", "v1")],
        )
        .pod(
            "default",
            "reviews-v2-1",
            "10.244.0.12",
            &[("app", "reviews"), ("version", "v2")],
        )
        .pod(
            "default",
            "reviews-v3-1",
            "10.244.0.13",
            &[("app", "reviews"), ("version", "v3")],
        )
        .pod(
            "default",
            "ratings-v1-1",
            "10.244.0.14",
            &[("app", "ratings"), ("version", "v1")],
        )
        .pod(
            "default",
            "details-v1-1",
            "10.244.0.15",
            &[("app", "details"), ("version", "v1")],
        )
        .pod(
            "istio-system",
            "istio-ingressgateway-1",
            "10.244.0.2",
            &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
        )
        .pod(
            "istio-system",
            "istiod-1",
            "10.244.0.3",
            &[("app", "istiod")],
        )
        .pod(
            "kube-system",
            "coredns-1",
            "10.244.0.4",
            &[("k8s-app", "kube-dns")],
        )
}

/// Bookinfo's gateway, VirtualServices and DestinationRules, as in Istio's samples.
pub const BOOKINFO_CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {exact: /productpage}
    - uri: {prefix: /static}
    - uri: {exact: /login}
    - uri: {exact: /logout}
    - uri: {prefix: /api/v1/products}
    route:
    - destination: {host: productpage, port: {number: 9080}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: 50
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
  - name: v3
    labels: {version: v3}
"#;
