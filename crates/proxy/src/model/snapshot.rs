//! The whole runtime config, swapped atomically as one value.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ironmesh_xds::pb::envoy::config::cluster::v3::Cluster as ClusterPb;
use ironmesh_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use ironmesh_xds::pb::envoy::config::listener::v3::Listener as ListenerPb;
use ironmesh_xds::pb::envoy::config::route::v3::RouteConfiguration;
use ironmesh_xds::type_url;
use ironmesh_xds::Any;

use super::{decode, Cluster, ClusterKind, CompileError, Endpoints, Listener, RouteConfig};

/// The accepted resources of one type as received (for `/config_dump`) and their version.
#[derive(Debug, Clone, Default)]
pub struct RawResources {
    pub version: String,
    pub resources: Arc<BTreeMap<String, Any>>,
}

/// The compiled config; every field is replaced whole on update.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub listeners: Arc<BTreeMap<String, Arc<Listener>>>,
    pub routes: Arc<NameMap<Arc<RouteConfig>>>,
    pub clusters: Arc<NameMap<Arc<Cluster>>>,
    pub endpoints: Arc<NameMap<Arc<Endpoints>>>,
    /// SDS secrets (gateway certificates) by resource name.
    pub secrets: Arc<HashMap<String, super::tls::Secret>>,
    /// Raw accepted resources by type URL.
    pub raw: Arc<BTreeMap<String, RawResources>>,
}

/// Resources by name, as every request looks routes, clusters and endpoints up: a
/// fast hash rather than SipHash (names come from the control plane, not clients).
pub type NameMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

fn decode_err(kind: &'static str, name: &str, e: String) -> CompileError {
    CompileError::new(kind, name, e)
}

impl Snapshot {
    /// The endpoints of `cluster` (EDS or inline); `None` for ORIGINAL_DST.
    /// Borrowed: a request reads them without touching the shared reference count.
    pub fn endpoints_of<'a>(&'a self, cluster: &'a Cluster) -> Option<&'a Endpoints> {
        static NONE_YET: std::sync::LazyLock<Endpoints> =
            std::sync::LazyLock::new(Endpoints::default);
        match &cluster.kind {
            ClusterKind::Eds(name) => Some(self.endpoints.get(name).map_or(&*NONE_YET, |e| &**e)),
            ClusterKind::Static(e) => Some(e),
            ClusterKind::OriginalDst => None,
        }
    }

    /// A new snapshot with the resources of `type_url` replaced by `resources` (the
    /// complete set, as SotW and the ADS client deliver it). Fails without changing
    /// anything when one resource does not compile.
    pub fn apply(
        &self,
        type_url: &str,
        version: &str,
        resources: Arc<BTreeMap<String, Any>>,
    ) -> Result<Snapshot, CompileError> {
        let mut next = self.clone();
        match type_url {
            type_url::LISTENER => {
                let mut out = BTreeMap::new();
                for (name, any) in resources.iter() {
                    let pb: ListenerPb =
                        decode(any).map_err(|e| decode_err("Listener", name, e))?;
                    out.insert(name.clone(), Arc::new(Listener::compile(&pb)?));
                }
                next.listeners = Arc::new(out);
            }
            type_url::ROUTE => {
                let mut out = NameMap::default();
                for (name, any) in resources.iter() {
                    let pb: RouteConfiguration =
                        decode(any).map_err(|e| decode_err("RouteConfiguration", name, e))?;
                    out.insert(name.clone(), Arc::new(RouteConfig::compile(&pb)?));
                }
                next.routes = Arc::new(out);
            }
            type_url::CLUSTER => {
                let mut out = NameMap::default();
                for (name, any) in resources.iter() {
                    let pb: ClusterPb = decode(any).map_err(|e| decode_err("Cluster", name, e))?;
                    out.insert(name.clone(), Arc::new(Cluster::compile(&pb)?));
                }
                next.clusters = Arc::new(out);
            }
            type_url::ENDPOINT => {
                let mut out = NameMap::default();
                for (name, any) in resources.iter() {
                    let pb: ClusterLoadAssignment =
                        decode(any).map_err(|e| decode_err("ClusterLoadAssignment", name, e))?;
                    out.insert(name.clone(), Arc::new(Endpoints::compile(&pb)?));
                }
                next.endpoints = Arc::new(out);
            }
            type_url::SECRET => {
                let mut out = HashMap::new();
                for (name, any) in resources.iter() {
                    out.insert(name.clone(), super::tls::compile_secret(name, any)?);
                }
                next.secrets = Arc::new(out);
            }
            other => {
                return Err(CompileError::new(
                    "resource",
                    other,
                    "this resource type is not subscribed by the proxy",
                ));
            }
        }
        let mut raw = (*self.raw).clone();
        raw.insert(
            type_url.to_string(),
            RawResources {
                version: version.to_string(),
                resources,
            },
        );
        next.raw = Arc::new(raw);
        Ok(next)
    }

    /// Loads a file in the shape of discovery's golden files
    /// (`{"listeners":[…],"routes":[…],"clusters":[…],"endpoints":[…]}`, proto3 JSON with
    /// `@type`), for `--config-file` and tests.
    pub fn from_json(text: &str) -> Result<Snapshot, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let mut snap = Snapshot::default();
        for (key, url, name_field) in [
            ("clusters", type_url::CLUSTER, "name"),
            ("endpoints", type_url::ENDPOINT, "clusterName"),
            ("routes", type_url::ROUTE, "name"),
            ("listeners", type_url::LISTENER, "name"),
        ] {
            let mut map = BTreeMap::new();
            for r in v.get(key).and_then(|l| l.as_array()).into_iter().flatten() {
                let name = r
                    .get(name_field)
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string();
                let any = ironmesh_xds::json_to_any(url, r)
                    .map_err(|e| format!("{key} {name:?}: {e}"))?;
                map.insert(name, any);
            }
            snap = snap
                .apply(url, "file", Arc::new(map))
                .map_err(|e| e.to_string())?;
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Mutated encodings of real resources either fail to decode or compile to `Ok`/`Err`
    /// — never a panic (the NACK path must survive any bytes discovery could send).
    #[test]
    fn mutated_resources_never_panic() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../discovery/testdata/golden/bookinfo/sidecar.json"
        ))
        .unwrap();
        let snap = Snapshot::from_json(&text).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut compiled = 0;
        for (url, raw) in snap.raw.iter() {
            for any in raw.resources.values().take(20) {
                for _ in 0..100 {
                    let mut bytes = any.value.clone();
                    for _ in 0..rng.random_range(1..4) {
                        if bytes.is_empty() {
                            break;
                        }
                        let i = rng.random_range(0..bytes.len());
                        bytes[i] = rng.random();
                    }
                    let mutated = Any {
                        type_url: any.type_url.clone(),
                        value: bytes,
                    };
                    let one = Arc::new(BTreeMap::from([("x".to_string(), mutated)]));
                    if Snapshot::default().apply(url, "v", one).is_ok() {
                        compiled += 1;
                    }
                }
            }
        }
        assert!(compiled > 0, "some mutations still compile");
    }
}
