//! Istio proxy identities: the node id, cluster and metadata pilot-agent puts in an
//! Envoy bootstrap, and the pod environment (`POD_NAME`, `ISTIO_META_*`, …) from which
//! pilot-agent — and `ironmesh-proxy` — derive them. One [`Node`] drives both proxies,
//! so discovery sees an Envoy and an ironmesh-proxy with the same identity alike.

use serde_json::{json, Value};

use crate::envoy::{AdsApi, EnvoyConfig};

/// A proxy identity.
#[derive(Debug, Clone)]
pub struct Node {
    /// `sidecar|router`.
    pub role: String,
    pub ip: String,
    pub pod: String,
    pub namespace: String,
    pub service_account: String,
    /// `<app>.<ns>`, Envoy's `--service-cluster`.
    pub cluster: String,
    /// `node.metadata` as pilot-agent builds it from the environment.
    pub metadata: Value,
}

impl Node {
    /// `role~ip~pod.ns~ns.svc.cluster.local`.
    pub fn id(&self) -> String {
        format!(
            "{}~{}~{}.{}~{}.svc.cluster.local",
            self.role, self.ip, self.pod, self.namespace, self.namespace
        )
    }

    /// `pod.namespace`, what proxy-status shows.
    pub fn pod_id(&self) -> String {
        format!("{}.{}", self.pod, self.namespace)
    }

    /// The bootstrap inputs for a real Envoy with this identity.
    pub fn envoy_config(&self, xds_port: u16, api: AdsApi) -> EnvoyConfig {
        EnvoyConfig {
            node_id: self.id(),
            cluster: self.cluster.clone(),
            metadata: self.metadata.clone(),
            xds_port,
            api,
        }
    }

    /// The pod environment pilot-agent reads: `POD_NAME`, `POD_NAMESPACE`,
    /// `INSTANCE_IP`, `SERVICE_ACCOUNT`, `ISTIO_META_<KEY>` for each string metadata
    /// key, and `ISTIO_METAJSON_LABELS`.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("POD_NAME".to_string(), self.pod.clone()),
            ("POD_NAMESPACE".to_string(), self.namespace.clone()),
            ("INSTANCE_IP".to_string(), self.ip.clone()),
            ("SERVICE_ACCOUNT".to_string(), self.service_account.clone()),
        ];
        if let Some(meta) = self.metadata.as_object() {
            for (k, v) in meta {
                match v {
                    Value::String(s) => env.push((format!("ISTIO_META_{k}"), s.clone())),
                    Value::Object(_) if k == "LABELS" => {
                        env.push(("ISTIO_METAJSON_LABELS".to_string(), v.to_string()))
                    }
                    _ => {}
                }
            }
        }
        env
    }
}

/// An injected pod's sidecar (seed 000's bootstrap metadata).
pub fn sidecar(ip: &str, pod: &str, ns: &str, app: &str, version: &str, sa: &str) -> Node {
    let workload = format!("{app}-{version}");
    Node {
        role: "sidecar".into(),
        ip: ip.into(),
        pod: pod.into(),
        namespace: ns.into(),
        service_account: sa.into(),
        cluster: format!("{app}.{ns}"),
        metadata: json!({
            "NAMESPACE": ns,
            "NAME": pod,
            "LABELS": {"app": app, "version": version,
                "service.istio.io/canonical-name": app,
                "service.istio.io/canonical-revision": version},
            "INSTANCE_IPS": ip,
            "SERVICE_ACCOUNT": sa,
            "WORKLOAD_NAME": workload,
            "OWNER": format!("kubernetes://apis/apps/v1/namespaces/{ns}/deployments/{workload}"),
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "INTERCEPTION_MODE": "REDIRECT",
            "ISTIO_VERSION": "1.17.2",
        }),
    }
}

/// The default ingress gateway (`istio=ingressgateway` in istio-system).
pub fn router(ip: &str, pod: &str) -> Node {
    Node {
        role: "router".into(),
        ip: ip.into(),
        pod: pod.into(),
        namespace: "istio-system".into(),
        service_account: "istio-ingressgateway-service-account".into(),
        cluster: "istio-ingressgateway.istio-system".into(),
        metadata: json!({
            "NAMESPACE": "istio-system",
            "NAME": pod,
            "LABELS": {"app": "istio-ingressgateway", "istio": "ingressgateway",
                "service.istio.io/canonical-name": "istio-ingressgateway",
                "service.istio.io/canonical-revision": "latest"},
            "INSTANCE_IPS": ip,
            "SERVICE_ACCOUNT": "istio-ingressgateway-service-account",
            "WORKLOAD_NAME": "istio-ingressgateway",
            "OWNER": "kubernetes://apis/apps/v1/namespaces/istio-system/deployments/istio-ingressgateway",
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "ISTIO_VERSION": "1.17.2",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_env_follow_pilot_agent() {
        let n = router("127.0.0.30", "gw-1");
        assert_eq!(
            n.id(),
            "router~127.0.0.30~gw-1.istio-system~istio-system.svc.cluster.local"
        );
        let env = n.env();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("POD_NAME"), Some("gw-1"));
        assert_eq!(get("ISTIO_META_CLUSTER_ID"), Some("Kubernetes"));
        let labels: Value = serde_json::from_str(get("ISTIO_METAJSON_LABELS").unwrap()).unwrap();
        assert_eq!(labels["istio"], "ingressgateway");
        assert_eq!(n.envoy_config(1, AdsApi::Delta).node_id, n.id());
    }
}
