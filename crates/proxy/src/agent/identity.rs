//! The proxy's identity from the environment, as pilot-agent reads it, turned into the
//! xDS node (id, cluster, metadata) discovery keys its config on.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::pb::google::protobuf::{value::Kind, Struct, Value};

use crate::telemetry::PeerMetadata;

/// Where the pod's labels are mounted by the downward API.
pub const LABELS_FILE: &str = "/etc/istio/pod/labels";

#[derive(Debug, Clone)]
pub struct Identity {
    pub role: String,
    pub pod_name: String,
    pub namespace: String,
    pub ips: Vec<IpAddr>,
    pub service_account: String,
    pub domain: String,
    pub labels: BTreeMap<String, String>,
    /// `ISTIO_META_*` without the prefix.
    pub meta: BTreeMap<String, String>,
}

fn string(v: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(v.to_string())),
    }
}

/// Parses the downward-API labels file: `key="value"` per line.
pub fn parse_labels_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

impl Identity {
    /// Reads `POD_NAME`, `POD_NAMESPACE`, `INSTANCE_IP`, `SERVICE_ACCOUNT`, `ISTIO_META_*`,
    /// labels from `ISTIO_METAJSON_LABELS` or [`LABELS_FILE`], through `env`.
    pub fn from_env(
        role: &str,
        domain: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
        vars: impl Iterator<Item = (String, String)>,
    ) -> Result<Identity, String> {
        let namespace = env("POD_NAMESPACE")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                if role == "router" {
                    "istio-system".into()
                } else {
                    "default".into()
                }
            });
        let pod_name = env("POD_NAME")
            .filter(|s| !s.is_empty())
            .or_else(|| env("HOSTNAME"))
            .unwrap_or_else(|| format!("ironmesh-{role}"));
        let ip_text = env("INSTANCE_IP")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        let ips = ip_text
            .split(',')
            .map(|s| {
                s.trim().parse::<IpAddr>().map_err(|_| {
                    format!("INSTANCE_IP {s:?} is not an IP address; set it to the pod IP")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut meta = BTreeMap::new();
        for (k, v) in vars {
            if let Some(rest) = k.strip_prefix("ISTIO_META_") {
                meta.insert(rest.to_string(), v);
            }
        }
        let labels = match env("ISTIO_METAJSON_LABELS").filter(|s| !s.trim().is_empty()) {
            Some(json) => {
                let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json)
                    .map_err(|e| format!("ISTIO_METAJSON_LABELS is not a JSON object: {e}"))?;
                v.into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            }
            None => std::fs::read_to_string(LABELS_FILE)
                .map(|t| parse_labels_file(&t))
                .unwrap_or_default(),
        };
        Ok(Identity {
            role: role.to_string(),
            domain: domain
                .map(str::to_string)
                .unwrap_or_else(|| format!("{namespace}.svc.cluster.local")),
            pod_name,
            namespace,
            ips,
            service_account: env("SERVICE_ACCOUNT").unwrap_or_else(|| "default".into()),
            labels,
            meta,
        })
    }

    /// `sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local`
    pub fn node_id(&self) -> String {
        format!(
            "{}~{}~{}.{}~{}",
            self.role, self.ips[0], self.pod_name, self.namespace, self.domain
        )
    }

    fn canonical_name(&self) -> String {
        self.labels
            .get("service.istio.io/canonical-name")
            .or_else(|| self.labels.get("app.kubernetes.io/name"))
            .or_else(|| self.labels.get("app"))
            .cloned()
            .unwrap_or_else(|| self.workload_name())
    }

    fn canonical_revision(&self) -> String {
        self.labels
            .get("service.istio.io/canonical-revision")
            .or_else(|| self.labels.get("app.kubernetes.io/version"))
            .or_else(|| self.labels.get("version"))
            .cloned()
            .unwrap_or_else(|| "latest".into())
    }

    pub fn workload_name(&self) -> String {
        if let Some(w) = self.meta.get("WORKLOAD_NAME") {
            return w.clone();
        }
        // A Deployment's pod is `<deployment>-<rs hash>-<pod hash>`.
        let parts: Vec<&str> = self.pod_name.rsplitn(3, '-').collect();
        if parts.len() == 3 {
            parts[2].to_string()
        } else {
            self.pod_name.clone()
        }
    }

    pub fn cluster_id(&self) -> String {
        self.meta
            .get("CLUSTER_ID")
            .cloned()
            .unwrap_or_else(|| "Kubernetes".into())
    }

    /// The xDS node: the fields istiod (and ironmesh-discovery) read.
    pub fn node(&self) -> Node {
        let mut fields: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
        for (k, v) in &self.meta {
            fields.insert(k.clone(), string(v));
        }
        let ips: Vec<String> = self.ips.iter().map(|i| i.to_string()).collect();
        fields.insert("NAMESPACE".into(), string(&self.namespace));
        fields.insert("NAME".into(), string(&self.pod_name));
        fields.insert("INSTANCE_IPS".into(), string(&ips.join(",")));
        fields.insert("SERVICE_ACCOUNT".into(), string(&self.service_account));
        fields.insert("WORKLOAD_NAME".into(), string(&self.workload_name()));
        fields
            .entry("CLUSTER_ID".into())
            .or_insert_with(|| string("Kubernetes"));
        fields
            .entry("MESH_ID".into())
            .or_insert_with(|| string("cluster.local"));
        fields
            .entry("ISTIO_VERSION".into())
            .or_insert_with(|| string(env!("CARGO_PKG_VERSION")));
        if self.role == "sidecar" {
            fields
                .entry("INTERCEPTION_MODE".into())
                .or_insert_with(|| string("REDIRECT"));
        }
        fields.entry("OWNER".into()).or_insert_with(|| {
            string(&format!(
                "kubernetes://apis/apps/v1/namespaces/{}/deployments/{}",
                self.namespace,
                self.workload_name()
            ))
        });
        let labels = Struct {
            fields: self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), string(v)))
                .collect(),
        };
        fields.insert(
            "LABELS".into(),
            Value {
                kind: Some(Kind::StructValue(labels)),
            },
        );
        Node {
            id: self.node_id(),
            cluster: format!("{}.{}", self.canonical_name(), self.namespace),
            metadata: Some(Struct { fields }),
            user_agent_name: "ironmesh-proxy".into(),
            ..Default::default()
        }
    }

    /// This proxy's own workload labels for telemetry.
    pub fn peer_metadata(&self) -> PeerMetadata {
        PeerMetadata {
            workload: self.workload_name(),
            namespace: self.namespace.clone(),
            app: self
                .labels
                .get("app")
                .cloned()
                .unwrap_or_else(|| self.canonical_name()),
            version: self
                .labels
                .get("version")
                .cloned()
                .unwrap_or_else(|| self.canonical_revision()),
            canonical_service: self.canonical_name(),
            canonical_revision: self.canonical_revision(),
            cluster: self.cluster_id(),
            service_account: self.service_account.clone(),
            labels: self.labels.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_like_istio() {
        let env = |k: &str| match k {
            "POD_NAME" => Some("reviews-v1-5f7b9c-abcde".to_string()),
            "POD_NAMESPACE" => Some("bookinfo".to_string()),
            "INSTANCE_IP" => Some("10.213.0.7".to_string()),
            "SERVICE_ACCOUNT" => Some("bookinfo-reviews".to_string()),
            "ISTIO_METAJSON_LABELS" => Some(r#"{"app":"reviews","version":"v1"}"#.to_string()),
            _ => None,
        };
        let vars = vec![("ISTIO_META_CLUSTER_ID".to_string(), "c1".to_string())];
        let id = Identity::from_env("sidecar", None, env, vars.into_iter()).unwrap();
        assert_eq!(
            id.node_id(),
            "sidecar~10.213.0.7~reviews-v1-5f7b9c-abcde.bookinfo~bookinfo.svc.cluster.local"
        );
        let node = id.node();
        assert_eq!(node.cluster, "reviews.bookinfo");
        let f = &node.metadata.unwrap().fields;
        assert_eq!(f["CLUSTER_ID"].kind, Some(Kind::StringValue("c1".into())));
        assert_eq!(
            f["WORKLOAD_NAME"].kind,
            Some(Kind::StringValue("reviews-v1".into()))
        );
        assert!(
            matches!(&f["LABELS"].kind, Some(Kind::StructValue(s)) if s.fields.contains_key("version"))
        );
        assert_eq!(id.peer_metadata().canonical_revision, "v1");
    }

    #[test]
    fn labels_file() {
        let l = parse_labels_file("app=\"httpbin\"\nversion=\"v1\"\n");
        assert_eq!(l["app"], "httpbin");
        assert_eq!(l["version"], "v1");
    }
}
