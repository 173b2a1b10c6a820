//! `proxy-config endpoint`: `ENDPOINT STATUS OUTLIER CHECK CLUSTER`, one row per
//! endpoint of every load assignment.

use serde::Deserialize;
use serde_json::Value;

use super::dump::{enum_name, view, DumpError};
use super::listener::Address;
use super::table::Table;

/// `core.HealthStatus` by number, for dumps that write enums as numbers.
const HEALTH: [&str; 6] = [
    "UNKNOWN",
    "HEALTHY",
    "UNHEALTHY",
    "DRAINING",
    "TIMEOUT",
    "DEGRADED",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClusterLoadAssignment {
    pub cluster_name: String,
    pub endpoints: Vec<LocalityLbEndpoints>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LocalityLbEndpoints {
    pub lb_endpoints: Vec<LbEndpoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LbEndpoint {
    pub endpoint: Option<Endpoint>,
    pub health_status: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    pub address: Address,
}

impl LbEndpoint {
    fn address(&self) -> Address {
        self.endpoint
            .as_ref()
            .map(|e| e.address.clone())
            .unwrap_or_default()
    }

    /// Envoy treats an endpoint whose health the control plane does not know as
    /// healthy, and reports it so.
    pub fn status(&self) -> String {
        match enum_name(&self.health_status, &HEALTH).as_deref() {
            None | Some("UNKNOWN") => "HEALTHY".into(),
            Some(s) => s.to_string(),
        }
    }
}

/// One table row.
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    pub endpoint: String,
    host: String,
    port: u32,
    pub status: String,
    pub cluster: String,
}

fn row(ep: &LbEndpoint, cluster: &str) -> Row {
    let a = ep.address();
    let endpoint = if let Some(s) = &a.socket_address {
        format!("{}:{}", s.address, s.port_value)
    } else if let Some(p) = &a.pipe {
        format!("unix://{}", p.path)
    } else if let Some(i) = &a.envoy_internal_address {
        format!("envoy://{}/{}", i.server_listener_name, i.endpoint_id)
    } else {
        "unknown".into()
    };
    Row {
        endpoint,
        host: a.host(),
        port: a.port(),
        status: ep.status(),
        cluster: cluster.to_string(),
    }
}

#[derive(Debug, Default)]
pub struct EndpointFilter {
    pub address: Option<String>,
    pub port: Option<u32>,
    pub cluster: Option<String>,
    pub status: Option<String>,
}

impl EndpointFilter {
    fn accepts(&self, r: &Row) -> bool {
        self.address
            .as_ref()
            .is_none_or(|a| r.host.eq_ignore_ascii_case(a))
            && self.port.is_none_or(|p| r.port == p)
            && self
                .cluster
                .as_ref()
                .is_none_or(|c| r.cluster.eq_ignore_ascii_case(c))
            && self
                .status
                .as_ref()
                .is_none_or(|s| r.status.eq_ignore_ascii_case(s))
    }
}

/// The rows that pass `filter`, sorted by address, port and cluster, and the raw load
/// assignments trimmed to the endpoints that passed (those left with none are dropped),
/// for `-o json`.
pub fn select(
    raw: Vec<Value>,
    filter: &EndpointFilter,
) -> Result<(Vec<Row>, Vec<Value>), DumpError> {
    let mut rows = Vec::new();
    let mut kept = Vec::new();
    for mut r in raw {
        let cla: ClusterLoadAssignment = view("load assignment", &r)?;
        let mut any = false;
        for (li, locality) in cla.endpoints.iter().enumerate() {
            let mut keep = Vec::new();
            for ep in &locality.lb_endpoints {
                let row = row(ep, &cla.cluster_name);
                let ok = filter.accepts(&row);
                keep.push(ok);
                if ok {
                    rows.push(row);
                    any = true;
                }
            }
            retain_lb_endpoints(&mut r, li, &keep);
        }
        if any {
            kept.push(r);
        }
    }
    rows.sort_by(|a, b| {
        a.host
            .cmp(&b.host)
            .then(a.port.cmp(&b.port))
            .then_with(|| a.cluster.cmp(&b.cluster))
    });
    Ok((rows, kept))
}

/// Drops the raw `lbEndpoints` of locality `li` whose `keep` flag is false.
fn retain_lb_endpoints(cla: &mut Value, li: usize, keep: &[bool]) {
    let Some(locality) = cla.get_mut("endpoints").and_then(|e| e.get_mut(li)) else {
        return;
    };
    let key = if locality.get("lbEndpoints").is_some() {
        "lbEndpoints"
    } else {
        "lb_endpoints"
    };
    if let Some(Value::Array(eps)) = locality.get_mut(key) {
        let mut flags = keep.iter();
        eps.retain(|_| *flags.next().unwrap_or(&true));
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut t = Table::new(5);
    t.row(["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"]);
    for r in rows {
        // The config dump carries no outlier-detection state; ejections show in the
        // proxy's /clusters, not here.
        t.row([
            r.endpoint.clone(),
            r.status.clone(),
            "OK".into(),
            r.cluster.clone(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Vec<Value> {
        vec![
            json!({"clusterName": "outbound|80||httpbin.default.svc.cluster.local", "endpoints": [
            {"lbEndpoints": [
                {"endpoint": {"address": {"socketAddress": {"address": "10.244.0.21", "portValue": 80}}}, "healthStatus": "UNHEALTHY"},
                {"endpoint": {"address": {"socketAddress": {"address": "10.244.0.20", "portValue": 80}}}, "healthStatus": "HEALTHY"}
            ]}]}),
            json!({"cluster_name": "sds", "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": "./etc/istio/proxy/XDS"}}}}]}]}),
        ]
    }

    #[test]
    fn rows_sort_by_address_and_show_status() {
        let (rows, kept) = select(sample(), &EndpointFilter::default()).unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(
            table(&rows),
            "ENDPOINT                         STATUS        OUTLIER CHECK     CLUSTER\n\
             unix://./etc/istio/proxy/XDS     HEALTHY       OK                sds\n\
             10.244.0.20:80                   HEALTHY       OK                outbound|80||httpbin.default.svc.cluster.local\n\
             10.244.0.21:80                   UNHEALTHY     OK                outbound|80||httpbin.default.svc.cluster.local\n"
        );
    }

    #[test]
    fn filters_trim_the_json_too() {
        let f = EndpointFilter {
            status: Some("unhealthy".into()),
            ..Default::default()
        };
        let (rows, kept) = select(sample(), &f).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].endpoint, "10.244.0.21:80");
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0]["endpoints"][0]["lbEndpoints"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let f = EndpointFilter {
            cluster: Some("sds".into()),
            ..Default::default()
        };
        let (rows, _) = select(sample(), &f).unwrap();
        assert_eq!(rows.len(), 1);
    }
}
