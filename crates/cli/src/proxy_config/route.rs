//! `proxy-config route`: `NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE`, one row per
//! route of every virtual host.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::dump::{view, DumpError};
use super::table::Table;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteConfiguration {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Route {
    pub name: String,
    pub r#match: RouteMatch,
    pub route: Option<RouteAction>,
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteMatch {
    pub prefix: Option<String>,
    pub path: Option<String>,
    pub safe_regex: Option<RegexMatcher>,
    pub path_separated_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegexMatcher {
    pub regex: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RouteAction {
    pub cluster: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metadata {
    pub filter_metadata: BTreeMap<String, Value>,
}

#[derive(Debug, Default)]
pub struct RouteFilter {
    pub name: Option<String>,
}

/// The raw route configurations that pass `filter`, with their parsed views: RDS ones
/// first, then inline ones; in each group numeric names (ports) in numeric order, then
/// the rest by name.
pub fn select(
    rds_raw: Vec<Value>,
    inline_raw: Vec<Value>,
    filter: &RouteFilter,
) -> Result<Vec<(Value, RouteConfiguration)>, DumpError> {
    let parse = |raw: Vec<Value>| -> Result<Vec<(Value, RouteConfiguration)>, DumpError> {
        let mut out = Vec::new();
        for r in raw {
            let rc: RouteConfiguration = view("route configuration", &r)?;
            if filter.name.as_ref().is_none_or(|n| *n == rc.name) {
                out.push((r, rc));
            }
        }
        Ok(out)
    };
    // Envoy lists static route configs in hash order; sort both groups so the table is
    // the same from run to run.
    let order = |a: &(Value, RouteConfiguration), b: &(Value, RouteConfiguration)| {
        let key = |n: &str| {
            let port = n.parse::<u64>().ok();
            (port.is_none(), port.unwrap_or(0))
        };
        key(&a.1.name)
            .cmp(&key(&b.1.name))
            .then_with(|| a.1.name.cmp(&b.1.name))
    };
    let mut rds = parse(rds_raw)?;
    let mut inline = parse(inline_raw)?;
    rds.sort_by(order);
    inline.sort_by(order);
    rds.extend(inline);
    Ok(rds)
}

pub fn table(routes: &[RouteConfiguration]) -> String {
    let mut t = Table::new(5);
    t.row(["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]);
    for rc in routes {
        for vh in &rc.virtual_hosts {
            for r in vh.routes.iter().filter(|r| !is_passthrough(r)) {
                t.row([
                    rc.name.clone(),
                    vh.name.clone(),
                    describe_domains(&vh.domains),
                    describe_match(&r.r#match),
                    describe_management(r.metadata.as_ref()),
                ]);
            }
            if vh.routes.is_empty() {
                // A virtual host without routes answers everything with 404.
                t.row([
                    rc.name.clone(),
                    vh.name.clone(),
                    describe_domains(&vh.domains),
                    "/*".into(),
                    "404".into(),
                ]);
            }
        }
    }
    t.render()
}

/// The catch-all route to `PassthroughCluster` (`allow_any`) is noise in the table.
fn is_passthrough(r: &Route) -> bool {
    r.route
        .as_ref()
        .and_then(|a| a.cluster.as_deref())
        .is_some_and(|c| c == "PassthroughCluster")
}

/// `MATCH`: `/prefix*`, `/exact`, `regex …`, `PathPrefix:/p` (headers are not shown).
pub fn describe_match(m: &RouteMatch) -> String {
    let mut conds = Vec::new();
    if let Some(p) = m.prefix.as_deref().filter(|p| !p.is_empty()) {
        conds.push(format!("{p}*"));
    }
    if let Some(p) = m.path_separated_prefix.as_deref().filter(|p| !p.is_empty()) {
        conds.push(format!("PathPrefix:{p}"));
    }
    if let Some(p) = m.path.as_deref().filter(|p| !p.is_empty()) {
        conds.push(p.to_string());
    }
    if let Some(r) = &m.safe_regex {
        conds.push(format!("regex {}", r.regex));
    }
    conds.join(" ")
}

/// `DOMAINS`: the short names of a virtual host, at most two, then `+ N more...`.
/// Domains with a port are left out, and so is a name whose shorter form is listed
/// (`reviews.default.svc.cluster.local` when `reviews.default` is there).
pub fn describe_domains(domains: &[String]) -> String {
    const SHOWN: usize = 2;
    match domains {
        [] => return String::new(),
        [one] => return one.clone(),
        _ => {}
    }
    let without_port: Vec<&str> = domains
        .iter()
        .map(String::as_str)
        .filter(|d| {
            let colons = d.matches(':').count();
            // Bracketed IPv6 literals carry colons of their own; keep them when portless.
            colons == 0 || (colons > 2 && d.ends_with(']'))
        })
        .collect();
    let shown: Vec<&str> = without_port
        .iter()
        .copied()
        .filter(|d| {
            let shorter = |suffix: &str| {
                d.strip_suffix(suffix)
                    .is_some_and(|s| without_port.contains(&s))
            };
            !shorter(".svc.cluster.local") && !shorter(".svc")
        })
        .collect();
    if shown.len() > SHOWN {
        format!(
            "{} + {} more...",
            shown[..SHOWN].join(", "),
            shown.len() - SHOWN
        )
    } else {
        shown.join(", ")
    }
}

/// The Istio config a route or cluster came from, `name.namespace`, read from the
/// `istio` filter metadata's `config` path
/// (`/apis/networking.istio.io/v1/namespaces/NS/virtual-service/NAME`).
pub fn describe_management(metadata: Option<&Metadata>) -> String {
    let Some(config) = metadata
        .and_then(|m| m.filter_metadata.get("istio"))
        .and_then(|i| i.get("config"))
        .and_then(Value::as_str)
    else {
        return String::new();
    };
    if !config.starts_with("/apis/") {
        return "<unknown>".into();
    }
    let pieces: Vec<&str> = config.split('/').collect();
    match pieces.as_slice() {
        ["", "apis", _group, _version, "namespaces", ns, _kind, name] => format!("{name}.{ns}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn domains_are_abbreviated_like_istioctl() {
        assert_eq!(
            describe_domains(&strings(&[
                "nginx.sidecar.svc.cluster.local",
                "nginx.sidecar.svc.cluster.local:80",
                "nginx",
                "nginx:80",
                "nginx.sidecar.svc",
                "nginx.sidecar",
                "10.100.93.113"
            ])),
            "nginx, nginx.sidecar + 1 more..."
        );
        assert_eq!(
            describe_domains(&strings(&[
                "istiod.istio-system.svc.cluster.local",
                "istiod.istio-system",
                "10.107.180.168"
            ])),
            "istiod.istio-system, 10.107.180.168"
        );
        assert_eq!(describe_domains(&strings(&["*"])), "*");
        assert_eq!(describe_domains(&[]), "");
        assert_eq!(
            describe_domains(&strings(&[
                "[fd00:10:96::7fc7]",
                "[fd00:10:96::7fc7]:8090",
                "a"
            ])),
            "[fd00:10:96::7fc7], a"
        );
    }

    #[test]
    fn matches_render_prefix_path_regex() {
        let m = |v: Value| describe_match(&serde_json::from_value(v).unwrap());
        assert_eq!(m(json!({"prefix": "/"})), "/*");
        assert_eq!(m(json!({"path": "/health"})), "/health");
        assert_eq!(
            m(json!({"safeRegex": {"regex": "/r/[0-9]+"}})),
            "regex /r/[0-9]+"
        );
        assert_eq!(m(json!({"pathSeparatedPrefix": "/get"})), "PathPrefix:/get");
    }

    #[test]
    fn management_names_the_source_config() {
        let md = |c: &str| -> Metadata {
            serde_json::from_value(json!({"filterMetadata": {"istio": {"config": c}}})).unwrap()
        };
        assert_eq!(
            describe_management(Some(&md(
                "/apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/reviews"
            ))),
            "reviews.default"
        );
        assert_eq!(
            describe_management(Some(&md(
                "/apis/networking.istio.io/v1/namespaces/bookinfo/destination-rule/reviews"
            ))),
            "reviews.bookinfo"
        );
        assert_eq!(describe_management(Some(&md("elsewhere"))), "<unknown>");
        assert_eq!(describe_management(None), "");
    }

    #[test]
    fn table_skips_passthrough_and_marks_empty_vhosts() {
        let rc: RouteConfiguration = view(
            "route configuration",
            &json!({"name": "80", "virtual_hosts": [
                {"name": "a.default.svc.cluster.local:80", "domains": ["a.default.svc.cluster.local", "a"],
                 "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "outbound|80||a.default.svc.cluster.local"},
                             "metadata": {"filter_metadata": {"istio": {"config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/a"}}}}]},
                {"name": "allow_any", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "PassthroughCluster"}}]},
                {"name": "block_all", "domains": ["*"]}
            ]}),
        )
        .unwrap();
        assert_eq!(
            table(&[rc]),
            "NAME     VHOST NAME                         DOMAINS                            MATCH     VIRTUAL SERVICE\n\
             80       a.default.svc.cluster.local:80     a.default.svc.cluster.local, a     /*        a.default\n\
             80       block_all                          *                                  /*        404\n"
        );
    }

    #[test]
    fn numeric_names_sort_first_and_inline_routes_last() {
        let rds = vec![
            json!({"name": "kube-dns.kube-system.svc.cluster.local:9153"}),
            json!({"name": "15010"}),
            json!({"name": "80"}),
        ];
        let inline = vec![json!({"name": "inbound|80||"})];
        let names: Vec<String> = select(rds, inline, &RouteFilter::default())
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.name)
            .collect();
        assert_eq!(
            names,
            [
                "80",
                "15010",
                "kube-dns.kube-system.svc.cluster.local:9153",
                "inbound|80||"
            ]
        );
    }
}
