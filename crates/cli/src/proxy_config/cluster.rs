//! `proxy-config cluster`: `SERVICE FQDN PORT SUBSET DIRECTION TYPE DESTINATION RULE`,
//! read from Istio's cluster names (`outbound|80|v1|reviews.default.svc.cluster.local`).

use serde::Deserialize;
use serde_json::Value;

use super::dump::{enum_name, view, DumpError};
use super::route::{describe_management, Metadata};
use super::table::Table;

/// `Cluster.DiscoveryType` by number, for dumps that write enums as numbers.
const DISCOVERY_TYPES: [&str; 5] = ["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST"];

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Cluster {
    pub name: String,
    pub r#type: Value,
    pub cluster_type: Option<CustomClusterType>,
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CustomClusterType {
    pub name: String,
}

impl Cluster {
    /// `TYPE`: the discovery type; proto3 JSON omits the default, `STATIC`. A custom
    /// cluster type (aggregate, …) is shown by its extension name.
    pub fn kind(&self) -> String {
        if let Some(ct) = self.cluster_type.as_ref().filter(|c| !c.name.is_empty()) {
            return ct.name.clone();
        }
        enum_name(&self.r#type, &DISCOVERY_TYPES).unwrap_or_else(|| "STATIC".into())
    }
}

/// The parts of an Istio cluster name. Names with fewer than four `|`-separated parts
/// (`PassthroughCluster`, `xds-grpc`) are `fqdn` only.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct SubsetKey {
    pub fqdn: String,
    pub subset: String,
    pub port: u32,
    pub direction: String,
    /// Whether the name had the `direction|port|subset|fqdn` shape at all.
    pub istio: bool,
}

pub fn parse_subset_key(name: &str) -> SubsetKey {
    let parts: Vec<&str> = name.split('|').collect();
    if parts.len() < 4 {
        return SubsetKey {
            fqdn: name.to_string(),
            ..SubsetKey::default()
        };
    }
    SubsetKey {
        direction: parts[0].to_string(),
        port: parts[1].parse().unwrap_or(0),
        subset: parts[2].to_string(),
        fqdn: parts[3].to_string(),
        istio: true,
    }
}

/// Filters match anywhere in the cluster name, as istioctl's do.
#[derive(Debug, Default)]
pub struct ClusterFilter {
    pub fqdn: Option<String>,
    pub port: Option<u32>,
    pub subset: Option<String>,
    pub direction: Option<String>,
}

impl ClusterFilter {
    pub fn accepts(&self, c: &Cluster) -> bool {
        let n = &c.name;
        self.fqdn.as_ref().is_none_or(|f| n.contains(f.as_str()))
            && self
                .direction
                .as_ref()
                .is_none_or(|d| n.contains(d.as_str()))
            && self.subset.as_ref().is_none_or(|s| n.contains(s.as_str()))
            && self.port.is_none_or(|p| n.contains(&format!("|{p}|")))
    }
}

/// The raw clusters that pass `filter`, with their parsed views, sorted by FQDN, subset,
/// port and direction.
pub fn select(raw: Vec<Value>, filter: &ClusterFilter) -> Result<Vec<(Value, Cluster)>, DumpError> {
    let mut out = Vec::new();
    for r in raw {
        let c: Cluster = view("cluster", &r)?;
        if filter.accepts(&c) {
            out.push((r, c));
        }
    }
    out.sort_by_cached_key(|(_, c)| {
        let k = parse_subset_key(&c.name);
        (k.fqdn, k.subset, k.port, k.direction)
    });
    Ok(out)
}

pub fn table(clusters: &[Cluster]) -> String {
    let mut t = Table::new(5);
    t.row([
        "SERVICE FQDN",
        "PORT",
        "SUBSET",
        "DIRECTION",
        "TYPE",
        "DESTINATION RULE",
    ]);
    for c in clusters {
        let k = parse_subset_key(&c.name);
        let dr = describe_management(c.metadata.as_ref());
        if k.istio {
            let subset = if k.subset.is_empty() {
                "-".into()
            } else {
                k.subset
            };
            t.row([
                k.fqdn,
                k.port.to_string(),
                subset,
                k.direction,
                c.kind(),
                dr,
            ]);
        } else {
            t.row([k.fqdn, "-".into(), "-".into(), "-".into(), c.kind(), dr]);
        }
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_keys_parse_istio_names() {
        let k = parse_subset_key("outbound|9080|v1|reviews.default.svc.cluster.local");
        assert_eq!(
            k,
            SubsetKey {
                fqdn: "reviews.default.svc.cluster.local".into(),
                subset: "v1".into(),
                port: 9080,
                direction: "outbound".into(),
                istio: true
            }
        );
        let k = parse_subset_key("inbound|80||");
        assert_eq!(
            (k.fqdn.as_str(), k.port, k.direction.as_str()),
            ("", 80, "inbound")
        );
        assert!(!parse_subset_key("PassthroughCluster").istio);
    }

    #[test]
    fn table_matches_istioctl() {
        let raw = vec![
            json!({"name": "outbound|9080|v1|reviews.default.svc.cluster.local", "type": "EDS",
                   "metadata": {"filterMetadata": {"istio": {"config": "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews"}}}}),
            json!({"name": "PassthroughCluster", "type": "ORIGINAL_DST"}),
            json!({"name": "BlackHoleCluster"}),
            json!({"name": "inbound|9080||", "type": 4}),
            json!({"name": "outbound|9080||reviews.default.svc.cluster.local", "type": "EDS"}),
            json!({"name": "agg", "clusterType": {"name": "envoy.clusters.aggregate"}}),
        ];
        let views: Vec<Cluster> = select(raw, &ClusterFilter::default())
            .unwrap()
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            table(&views),
            "SERVICE FQDN                          PORT     SUBSET     DIRECTION     TYPE                         DESTINATION RULE\n\
             \x20                                     9080     -          inbound       ORIGINAL_DST                 \n\
             BlackHoleCluster                      -        -          -             STATIC                       \n\
             PassthroughCluster                    -        -          -             ORIGINAL_DST                 \n\
             agg                                   -        -          -             envoy.clusters.aggregate     \n\
             reviews.default.svc.cluster.local     9080     -          outbound      EDS                          \n\
             reviews.default.svc.cluster.local     9080     v1         outbound      EDS                          reviews.default\n"
        );
    }

    #[test]
    fn filters_match_parts_of_the_name() {
        let c: Cluster = view(
            "cluster",
            &json!({"name": "outbound|9080|v1|reviews.default.svc.cluster.local"}),
        )
        .unwrap();
        let f = |f: ClusterFilter| f.accepts(&c);
        assert!(f(ClusterFilter {
            fqdn: Some("reviews".into()),
            ..Default::default()
        }));
        assert!(f(ClusterFilter {
            port: Some(9080),
            subset: Some("v1".into()),
            ..Default::default()
        }));
        assert!(!f(ClusterFilter {
            port: Some(908),
            ..Default::default()
        }));
        assert!(!f(ClusterFilter {
            direction: Some("inbound".into()),
            ..Default::default()
        }));
    }
}
