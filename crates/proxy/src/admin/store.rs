//! The last accepted xDS resources, as `/config_dump` and `/listeners` show them.
//!
//! Rendering follows Envoy's admin: proto field names (`dynamic_active_clusters`,
//! `connect_timeout`), `@type` inside `Any`, enums by name, defaults left out — the
//! same JSON `istioctl proxy-config` and `ironmesh proxy-config --proxy-admin` read from
//! a real Envoy.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use ironmesh_xds::pb::envoy::config::core::v3::{address, socket_address, Node};
use ironmesh_xds::pb::envoy::config::listener::v3::Listener;
use ironmesh_xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use ironmesh_xds::{Any, Update};
use prost::Message;
use prost_reflect::{DynamicMessage, SerializeOptions};
use serde_json::{json, Map, Value};

const ADMIN: &str = "type.googleapis.com/envoy.admin.v3.";

/// One accepted resource.
#[derive(Debug, Clone)]
struct Entry {
    version: String,
    resource: Any,
    /// When this resource last changed (not when its type was last pushed).
    last_updated: SystemTime,
}

#[derive(Debug, Clone)]
struct TypeEntry {
    version_info: String,
    resources: BTreeMap<String, Entry>,
}

/// Accepted resources per type URL.
#[derive(Debug, Default)]
pub(crate) struct ConfigStore {
    types: BTreeMap<String, TypeEntry>,
}

impl ConfigStore {
    /// Replaces the set of `update.type_url` with the update's complete set; a resource
    /// whose bytes did not change keeps its `last_updated`.
    pub(crate) fn record(&mut self, update: &Update, now: SystemTime) {
        let old = self.types.remove(&update.type_url);
        let resources = update
            .resources
            .iter()
            .map(|(name, r)| {
                let last_updated = old
                    .as_ref()
                    .and_then(|o| o.resources.get(name))
                    .filter(|e| e.resource == r.resource)
                    .map_or(now, |e| e.last_updated);
                let entry = Entry {
                    version: r.version.clone(),
                    resource: r.resource.clone(),
                    last_updated,
                };
                (name.clone(), entry)
            })
            .collect();
        self.types.insert(
            update.type_url.clone(),
            TypeEntry {
                version_info: update.version_info.clone(),
                resources,
            },
        );
    }

    /// The accepted version of a type, if any update of it was recorded.
    pub(crate) fn version(&self, type_url: &str) -> Option<&str> {
        self.types.get(type_url).map(|t| t.version_info.as_str())
    }

    /// Resources of a type, by name.
    pub(crate) fn resources(&self, type_url: &str) -> Vec<(&str, &Any)> {
        self.types
            .get(type_url)
            .map(|t| {
                t.resources
                    .iter()
                    .map(|(n, e)| (n.as_str(), &e.resource))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Envoy's `/config_dump`: bootstrap (the node), clusters, endpoints (only with
    /// `include_eds`, as Envoy), listeners, scoped routes, routes, secrets.
    pub(crate) fn config_dump(&self, node: &Node, started: SystemTime, include_eds: bool) -> Value {
        let mut configs = vec![json!({
            "@type": format!("{ADMIN}BootstrapConfigDump"),
            "bootstrap": {"node": render_node(node)},
            "last_updated": rfc3339(started),
        })];
        let mut clusters = section("ClustersConfigDump", self.types.get(CLUSTER));
        clusters.insert(
            "dynamic_active_clusters".into(),
            self.entries(CLUSTER, |name, e| {
                json!({
                    "version_info": e.version,
                    "cluster": render_resource(name, &e.resource),
                    "last_updated": rfc3339(e.last_updated),
                })
            }),
        );
        configs.push(Value::Object(clusters));
        if include_eds {
            let mut endpoints = Map::new();
            endpoints.insert("@type".into(), json!(format!("{ADMIN}EndpointsConfigDump")));
            endpoints.insert(
                "dynamic_endpoint_configs".into(),
                self.entries(ENDPOINT, |name, e| {
                    let mut v = Map::new();
                    if !e.version.is_empty() {
                        v.insert("version_info".into(), json!(e.version));
                    }
                    v.insert("endpoint_config".into(), render_resource(name, &e.resource));
                    v.insert("last_updated".into(), json!(rfc3339(e.last_updated)));
                    Value::Object(v)
                }),
            );
            configs.push(Value::Object(endpoints));
        }
        let mut listeners = section("ListenersConfigDump", self.types.get(LISTENER));
        listeners.insert(
            "dynamic_listeners".into(),
            self.entries(LISTENER, |name, e| {
                json!({
                    "name": name,
                    "active_state": {
                        "version_info": e.version,
                        "listener": render_resource(name, &e.resource),
                        "last_updated": rfc3339(e.last_updated),
                    },
                })
            }),
        );
        configs.push(Value::Object(listeners));
        configs.push(json!({"@type": format!("{ADMIN}ScopedRoutesConfigDump")}));
        let mut routes = Map::new();
        routes.insert("@type".into(), json!(format!("{ADMIN}RoutesConfigDump")));
        routes.insert(
            "dynamic_route_configs".into(),
            self.entries(ROUTE, |name, e| {
                json!({
                    "version_info": e.version,
                    "route_config": render_resource(name, &e.resource),
                    "last_updated": rfc3339(e.last_updated),
                })
            }),
        );
        configs.push(Value::Object(routes));
        configs.push(json!({"@type": format!("{ADMIN}SecretsConfigDump")}));
        json!({ "configs": configs })
    }

    fn entries(&self, type_url: &str, f: impl Fn(&str, &Entry) -> Value) -> Value {
        let list = self
            .types
            .get(type_url)
            .map(|t| t.resources.iter().map(|(n, e)| f(n, e)).collect())
            .unwrap_or_default();
        Value::Array(list)
    }

    /// Envoy's `/listeners`: `name::address:port` per line, or JSON with `format=json`.
    pub(crate) fn listeners(&self) -> Vec<(String, Option<(String, u32)>)> {
        self.resources(LISTENER)
            .into_iter()
            .map(|(name, any)| {
                let addr = Listener::decode(any.value.as_slice())
                    .ok()
                    .and_then(|l| l.address)
                    .and_then(|a| match a.address {
                        Some(address::Address::SocketAddress(s)) => {
                            let port = match s.port_specifier {
                                Some(socket_address::PortSpecifier::PortValue(p)) => p,
                                _ => 0,
                            };
                            Some((s.address, port))
                        }
                        _ => None,
                    });
                (name.to_owned(), addr)
            })
            .collect()
    }
}

/// `{"@type": …, "version_info": …, "last_updated": …}` for a section of `kind`.
fn section(kind: &str, entry: Option<&TypeEntry>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("@type".into(), json!(format!("{ADMIN}{kind}")));
    if let Some(t) = entry {
        if !t.version_info.is_empty() {
            m.insert("version_info".into(), json!(t.version_info));
        }
    }
    m
}

fn options() -> SerializeOptions {
    SerializeOptions::new().use_proto_field_name(true)
}

/// A packed resource as Envoy's admin prints it. A resource that cannot be rendered
/// (its type is not among Envoy's protos) becomes a placeholder naming it, so the rest
/// of the dump still renders.
pub(crate) fn render_resource(name: &str, any: &Any) -> Value {
    render_any(any).unwrap_or_else(|error| {
        json!({
            "@type": any.type_url,
            "name": name,
            "ironmesh_render_error": error,
        })
    })
}

/// `{"@type": …, fields…}` with proto field names.
pub fn render_any(any: &Any) -> Result<Value, String> {
    render_bytes("google.protobuf.Any", &any.encode_to_vec())
}

fn render_node(node: &Node) -> Value {
    render_bytes("envoy.config.core.v3.Node", &node.encode_to_vec())
        .unwrap_or_else(|error| json!({"id": node.id, "ironmesh_render_error": error}))
}

fn render_bytes(full_name: &str, bytes: &[u8]) -> Result<Value, String> {
    let pool = ironmesh_xds::json::descriptor_pool().map_err(|e| e.to_string())?;
    let descriptor = pool
        .get_message_by_name(full_name)
        .ok_or_else(|| format!("{full_name} is not among Envoy's protos"))?;
    let message = DynamicMessage::decode(descriptor, bytes).map_err(|e| e.to_string())?;
    message
        .serialize_with_options(serde_json::value::Serializer, &options())
        .map_err(|e| e.to_string())
}

/// RFC 3339 in UTC with milliseconds, as protobuf's `Timestamp` JSON.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironmesh_xds::pb::envoy::config::cluster::v3::Cluster;
    use ironmesh_xds::XdsResource;
    use std::sync::Arc;
    use std::time::Duration;

    fn update(version: &str, clusters: &[(&str, i64)]) -> Update {
        let resources = clusters
            .iter()
            .map(|(name, timeout)| {
                let c = Cluster {
                    name: (*name).into(),
                    connect_timeout: Some(ironmesh_xds::pb::google::protobuf::Duration {
                        seconds: *timeout,
                        nanos: 0,
                    }),
                    ..Default::default()
                };
                let r = XdsResource {
                    name: (*name).into(),
                    version: version.into(),
                    resource: ironmesh_xds::pack(&c),
                };
                ((*name).to_owned(), r)
            })
            .collect();
        Update {
            type_url: CLUSTER.into(),
            version_info: version.into(),
            resources: Arc::new(resources),
            removed: vec![],
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.123Z");
    }

    #[test]
    fn unchanged_resources_keep_their_time() {
        let mut store = ConfigStore::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(100);
        let t1 = UNIX_EPOCH + Duration::from_secs(200);
        store.record(&update("1", &[("a", 1), ("b", 1)]), t0);
        store.record(&update("2", &[("a", 1), ("b", 5)]), t1);
        let dump = store.config_dump(&Node::default(), t0, false);
        let clusters = &dump["configs"][1];
        assert_eq!(clusters["version_info"], "2");
        let list = clusters["dynamic_active_clusters"].as_array().unwrap();
        assert_eq!(list[0]["cluster"]["name"], "a");
        assert_eq!(list[0]["last_updated"], rfc3339(t0));
        assert_eq!(list[1]["last_updated"], rfc3339(t1));
        assert_eq!(list[1]["cluster"]["connect_timeout"], "5s");
        assert_eq!(
            list[1]["cluster"]["@type"],
            "type.googleapis.com/envoy.config.cluster.v3.Cluster"
        );
        assert_eq!(store.version(CLUSTER), Some("2"));
    }

    #[test]
    fn unknown_types_render_as_placeholders() {
        let any = Any {
            type_url: "type.googleapis.com/istio.example.Unknown".into(),
            value: vec![],
        };
        let v = render_resource("x", &any);
        assert_eq!(v["name"], "x");
        assert!(v["ironmesh_render_error"].is_string());
    }
}
