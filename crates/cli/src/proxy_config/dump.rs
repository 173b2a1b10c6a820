//! Reading an Envoy admin `ConfigDump` (`{"configs": [...]}`), whichever JSON spelling
//! produced it: the control plane writes proto3 JSON names (`dynamicListeners`), Envoy's
//! own admin port writes the proto field names (`dynamic_listeners`).
//!
//! Resources come back as the raw JSON they were served as (for `-o json`); the table
//! views parse a [`normalize`]d copy.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(
        "the config dump has no \"configs\" array; is this an Envoy admin /config_dump answer?"
    )]
    NotAConfigDump,
    #[error("cannot read {what} {name:?} in the config dump: {reason}")]
    Resource {
        what: &'static str,
        name: String,
        reason: String,
    },
}

pub struct ConfigDump {
    raw: Value,
}

impl ConfigDump {
    pub fn new(raw: Value) -> Result<Self, DumpError> {
        if !raw.get("configs").is_some_and(Value::is_array) {
            return Err(DumpError::NotAConfigDump);
        }
        Ok(ConfigDump { raw })
    }

    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The config section whose `@type` ends with `.{kind}` (`ListenersConfigDump`).
    fn section(&self, kind: &str) -> Option<&Value> {
        let suffix = format!(".{kind}");
        self.raw["configs"].as_array()?.iter().find(|c| {
            c.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(&suffix))
        })
    }

    /// `BootstrapConfigDump` without its `@type`, as `istioctl pc bootstrap` prints it.
    pub fn bootstrap(&self) -> Option<Value> {
        self.section("BootstrapConfigDump").map(without_type)
    }

    /// Active dynamic listeners, then static ones.
    pub fn listeners(&self) -> Vec<Value> {
        let Some(s) = self.section("ListenersConfigDump") else {
            return Vec::new();
        };
        let mut out: Vec<Value> = items(s, "dynamicListeners")
            .filter_map(|l| field(l, "activeState").and_then(|a| field(a, "listener")))
            .map(without_type)
            .collect();
        out.extend(
            items(s, "staticListeners")
                .filter_map(|l| field(l, "listener"))
                .map(without_type),
        );
        out
    }

    /// Active dynamic clusters, then static ones.
    pub fn clusters(&self) -> Vec<Value> {
        let Some(s) = self.section("ClustersConfigDump") else {
            return Vec::new();
        };
        items(s, "dynamicActiveClusters")
            .chain(items(s, "staticClusters"))
            .filter_map(|c| field(c, "cluster"))
            .map(without_type)
            .collect()
    }

    /// RDS route configurations, and the static ones. Envoy lists every route config
    /// inlined in a listener among the static ones; a dump that has none (a control
    /// plane's rendering) gets them from the listeners instead, so both sources show the
    /// same table.
    pub fn route_configs(&self) -> (Vec<Value>, Vec<Value>) {
        let section = self.section("RoutesConfigDump");
        let rds: Vec<Value> = section
            .into_iter()
            .flat_map(|s| items(s, "dynamicRouteConfigs"))
            .filter_map(|r| field(r, "routeConfig"))
            .map(without_type)
            .collect();
        let statics: Vec<Value> = section
            .into_iter()
            .flat_map(|s| items(s, "staticRouteConfigs"))
            .filter_map(|r| field(r, "routeConfig"))
            .map(without_type)
            .collect();
        if statics.is_empty() {
            let inline = self
                .listeners()
                .iter()
                .flat_map(inline_route_configs)
                .collect();
            (rds, inline)
        } else {
            (rds, statics)
        }
    }

    /// Dynamic (EDS) load assignments, then static ones.
    pub fn endpoint_configs(&self) -> Vec<Value> {
        let Some(s) = self.section("EndpointsConfigDump") else {
            return Vec::new();
        };
        items(s, "dynamicEndpointConfigs")
            .chain(items(s, "staticEndpointConfigs"))
            .filter_map(|e| field(e, "endpointConfig"))
            .map(without_type)
            .collect()
    }
}

/// The `routeConfig` of every HTTP connection manager of a listener, in chain order.
fn inline_route_configs(listener: &Value) -> Vec<Value> {
    let mut chains: Vec<&Value> = items(listener, "filterChains").collect();
    chains.extend(field(listener, "defaultFilterChain"));
    chains
        .into_iter()
        .flat_map(|fc| items(fc, "filters"))
        .filter_map(|f| field(f, "typedConfig"))
        .filter_map(|tc| field(tc, "routeConfig"))
        .cloned()
        .collect()
}

/// A field by its proto3 JSON name, or by the proto field name Envoy's admin uses.
pub fn field<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake(camel)))
}

fn items<'a>(v: &'a Value, camel: &str) -> impl Iterator<Item = &'a Value> {
    field(v, camel)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn without_type(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.shift_remove("@type");
    }
    v
}

fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A copy with every `snake_case` key renamed to `lowerCamelCase`, so one set of serde
/// views reads both spellings. (Map keys inside `Struct` metadata are renamed too; the
/// views only read `istio`/`config`, which have no underscore.)
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let k = if k.contains('_') && !k.starts_with('@') {
                        camel(k)
                    } else {
                        k.clone()
                    };
                    (k, normalize(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Parses a typed view of one resource; `what`/`name` say which one in the error.
pub fn view<T: serde::de::DeserializeOwned>(
    what: &'static str,
    raw: &Value,
) -> Result<T, DumpError> {
    serde_json::from_value(normalize(raw)).map_err(|e| DumpError::Resource {
        what,
        name: raw
            .get("name")
            .or_else(|| field(raw, "clusterName"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        reason: e.to_string(),
    })
}

/// proto3 JSON writes 32-bit integers as numbers but accepts strings; so do we.
pub fn de_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(de_opt_u32(d)?.unwrap_or(0))
}

pub fn de_opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    // A wrapper type (`UInt32Value`) may also appear as `{"value": n}` in hand-written
    // dumps.
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("{n} is not a 32-bit unsigned integer"))),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{s:?} is not a 32-bit unsigned integer"))),
        Some(Value::Object(m)) if m.contains_key("value") => {
            de_opt_u32(m["value"].clone()).map_err(D::Error::custom)
        }
        Some(other) => Err(D::Error::custom(format!(
            "{other} is not a 32-bit unsigned integer"
        ))),
    }
}

/// An enum field, proto3 JSON style: its name, or its number mapped through `names`.
pub fn enum_name(v: &Value, names: &[&str]) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| names.get(i as usize))
            .map(|s| s.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_convert_both_ways() {
        assert_eq!(snake("dynamicActiveClusters"), "dynamic_active_clusters");
        assert_eq!(camel("dynamic_active_clusters"), "dynamicActiveClusters");
        assert_eq!(camel("name"), "name");
    }

    #[test]
    fn normalize_keeps_type_urls_and_renames_fields() {
        let v = json!({"@type": "x", "filter_chains": [{"filter_chain_match": {"destination_port": 80}}]});
        assert_eq!(
            normalize(&v),
            json!({"@type": "x", "filterChains": [{"filterChainMatch": {"destinationPort": 80}}]})
        );
    }

    #[test]
    fn both_spellings_yield_the_same_resources() {
        let camel = json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
             "dynamicActiveClusters": [{"versionInfo": "1", "cluster": {"@type": "c", "name": "a"}}],
             "staticClusters": [{"cluster": {"name": "b"}}]}
        ]});
        let snake = json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
             "dynamic_active_clusters": [{"version_info": "1", "cluster": {"@type": "c", "name": "a"}}],
             "static_clusters": [{"cluster": {"name": "b"}}]}
        ]});
        let want = vec![json!({"name": "a"}), json!({"name": "b"})];
        assert_eq!(ConfigDump::new(camel).unwrap().clusters(), want);
        assert_eq!(ConfigDump::new(snake).unwrap().clusters(), want);
    }

    #[test]
    fn inline_routes_come_from_listeners_when_the_dump_lists_none() {
        let dump = json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
             "dynamicListeners": [{"name": "l", "activeState": {"listener": {"name": "l",
                "filterChains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                    "typedConfig": {"routeConfig": {"name": "inline"}}}]}]}}}]},
            {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
             "dynamicRouteConfigs": [{"routeConfig": {"name": "80"}}]}
        ]});
        let (rds, inline) = ConfigDump::new(dump).unwrap().route_configs();
        assert_eq!(rds, vec![json!({"name": "80"})]);
        assert_eq!(inline, vec![json!({"name": "inline"})]);
    }

    #[test]
    fn rejects_what_is_not_a_config_dump() {
        assert!(ConfigDump::new(json!({"listeners": []})).is_err());
    }
}
