//! `ironmesh proxy-config <listener|route|cluster|endpoint|bootstrap|all> <proxy>`:
//! istioctl's tables over a proxy's config dump, read from the control plane
//! (`/debug/config_dump?proxyID=`) or straight from the proxy's admin port
//! (`--proxy-admin`, `/config_dump?include_eds`).

pub mod cluster;
pub mod dump;
pub mod endpoint;
pub mod listener;
pub mod route;
pub mod table;

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde_json::Value;

use crate::discovery_client::{self, DiscoveryClient, SyncStatus, DEFAULT_DISCOVERY};
use dump::ConfigDump;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Subcommand)]
enum Kind {
    /// Listeners: ADDRESSES PORT MATCH DESTINATION, one row per filter chain.
    #[command(visible_alias = "listeners", visible_alias = "l")]
    Listener {
        #[command(flatten)]
        target: Target,
        /// Only listeners on this port.
        #[arg(long)]
        port: Option<u32>,
        /// Only listeners on this address.
        #[arg(long)]
        address: Option<String>,
        /// Only listeners of this type: HTTP, TCP, HTTP+TCP or UNKNOWN.
        #[arg(long = "type")]
        listener_type: Option<String>,
    },
    /// Routes: NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE, one row per route.
    #[command(visible_alias = "routes", visible_alias = "r")]
    Route {
        #[command(flatten)]
        target: Target,
        /// Only the route configuration with this name (e.g. `80`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Clusters: SERVICE FQDN PORT SUBSET DIRECTION TYPE DESTINATION RULE.
    #[command(visible_alias = "clusters", visible_alias = "c")]
    Cluster {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        filter: ClusterArgs,
    },
    /// Endpoints: ENDPOINT STATUS OUTLIER CHECK CLUSTER.
    #[command(visible_alias = "endpoints", visible_alias = "ep")]
    Endpoint {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        filter: EndpointArgs,
    },
    /// The bootstrap the proxy started with, as JSON (or YAML with -o yaml).
    #[command(visible_alias = "b")]
    Bootstrap {
        #[command(flatten)]
        target: Target,
    },
    /// Clusters, listeners, routes and endpoints; with -o json, the whole config dump.
    All {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(clap::Args)]
struct ClusterArgs {
    /// Only clusters whose name contains this FQDN.
    #[arg(long)]
    fqdn: Option<String>,
    /// Only clusters of this port.
    #[arg(long)]
    port: Option<u32>,
    /// Only clusters of this subset.
    #[arg(long)]
    subset: Option<String>,
    /// Only `inbound` or `outbound` clusters.
    #[arg(long)]
    direction: Option<String>,
}

#[derive(clap::Args)]
struct EndpointArgs {
    /// Only endpoints of this cluster (full name, e.g. `outbound|80||x.ns.svc.cluster.local`).
    #[arg(long)]
    cluster: Option<String>,
    /// Only endpoints in this state: HEALTHY, UNHEALTHY, DRAINING, TIMEOUT, DEGRADED.
    #[arg(long)]
    status: Option<String>,
    /// Only endpoints with this IP address.
    #[arg(long)]
    address: Option<String>,
    /// Only endpoints on this port.
    #[arg(long)]
    port: Option<u32>,
}

/// Which proxy, and where its config dump comes from.
#[derive(clap::Args)]
struct Target {
    /// The proxy: `pod.namespace`, `pod` with -n, or a full node id. Not needed with
    /// --proxy-admin.
    #[arg(required_unless_present = "proxy_admin")]
    proxy: Option<String>,
    /// The proxy's namespace, when <PROXY> is a bare pod name.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// The control plane's debug address (ironmesh-discovery's HTTP port).
    #[arg(long, env = "IRONMESH_DISCOVERY", default_value = DEFAULT_DISCOVERY)]
    discovery: String,
    /// Read the proxy's own admin port (ADDR like 127.0.0.1:15000) instead of the
    /// control plane: shows what the proxy runs, not what it was sent.
    #[arg(long, value_name = "ADDR")]
    proxy_admin: Option<String>,
    /// Output format: `table` for people; `json` or `yaml` for the matching resources.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    #[value(alias = "short")]
    Table,
    Json,
    Yaml,
}

pub fn run(args: Args) -> ExitCode {
    match execute(args.kind) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn execute(kind: Kind) -> anyhow::Result<String> {
    let target = match &kind {
        Kind::Listener { target, .. }
        | Kind::Route { target, .. }
        | Kind::Cluster { target, .. }
        | Kind::Endpoint { target, .. }
        | Kind::Bootstrap { target }
        | Kind::All { target } => target,
    };
    let dump = ConfigDump::new(fetch(target)?)?;
    let format = target.output;
    Ok(match &kind {
        Kind::Listener {
            port,
            address,
            listener_type,
            ..
        } => listeners(
            &dump,
            &listener::ListenerFilter {
                address: address.clone(),
                port: *port,
                kind: listener_type.clone(),
            },
            format,
        )?,
        Kind::Route { name, .. } => {
            routes(&dump, &route::RouteFilter { name: name.clone() }, format)?
        }
        Kind::Cluster { filter, .. } => clusters(
            &dump,
            &cluster::ClusterFilter {
                fqdn: filter.fqdn.clone(),
                port: filter.port,
                subset: filter.subset.clone(),
                direction: filter.direction.clone(),
            },
            format,
        )?,
        Kind::Endpoint { filter, .. } => endpoints(
            &dump,
            &endpoint::EndpointFilter {
                address: filter.address.clone(),
                port: filter.port,
                cluster: filter.cluster.clone(),
                status: filter.status.clone(),
            },
            format,
        )?,
        Kind::Bootstrap { .. } => {
            let b = dump.bootstrap().ok_or_else(|| {
                anyhow::anyhow!("the config dump has no BootstrapConfigDump section")
            })?;
            encode(
                &b,
                if format == Format::Yaml {
                    Format::Yaml
                } else {
                    Format::Json
                },
            )
        }
        Kind::All { .. } => match format {
            Format::Table => [
                clusters(&dump, &Default::default(), format)?,
                listeners(&dump, &Default::default(), format)?,
                routes(&dump, &Default::default(), format)?,
                endpoints(&dump, &Default::default(), format)?,
            ]
            .join("\n"),
            _ => encode(dump.raw(), format),
        },
    })
}

fn listeners(
    dump: &ConfigDump,
    f: &listener::ListenerFilter,
    format: Format,
) -> anyhow::Result<String> {
    let (raw, views): (Vec<Value>, Vec<_>) =
        listener::select(dump.listeners(), f)?.into_iter().unzip();
    Ok(match format {
        Format::Table => listener::table(&views),
        _ => encode(&Value::Array(raw), format),
    })
}

fn routes(dump: &ConfigDump, f: &route::RouteFilter, format: Format) -> anyhow::Result<String> {
    let (rds, inline) = dump.route_configs();
    let (raw, views): (Vec<Value>, Vec<_>) = route::select(rds, inline, f)?.into_iter().unzip();
    Ok(match format {
        Format::Table => route::table(&views),
        _ => encode(&Value::Array(raw), format),
    })
}

fn clusters(
    dump: &ConfigDump,
    f: &cluster::ClusterFilter,
    format: Format,
) -> anyhow::Result<String> {
    let (raw, views): (Vec<Value>, Vec<_>) =
        cluster::select(dump.clusters(), f)?.into_iter().unzip();
    Ok(match format {
        Format::Table => cluster::table(&views),
        _ => encode(&Value::Array(raw), format),
    })
}

fn endpoints(
    dump: &ConfigDump,
    f: &endpoint::EndpointFilter,
    format: Format,
) -> anyhow::Result<String> {
    let (rows, raw) = endpoint::select(dump.endpoint_configs(), f)?;
    Ok(match format {
        Format::Table => endpoint::table(&rows),
        _ => encode(&Value::Array(raw), format),
    })
}

/// The config dump `target` names: from the proxy's admin port, or from the control
/// plane after resolving the proxy name to a node id through `/debug/syncz`.
fn fetch(target: &Target) -> anyhow::Result<Value> {
    if let Some(addr) = &target.proxy_admin {
        return Ok(discovery_client::admin_config_dump(addr)?);
    }
    let client = DiscoveryClient::new(&target.discovery);
    let (proxies, _) = client.syncz()?;
    let wanted = target
        .proxy
        .as_deref()
        .expect("clap requires <PROXY> without --proxy-admin");
    let p = resolve(wanted, target.namespace.as_deref(), &proxies)
        .map_err(|e| anyhow::anyhow!(e.describe(client.base(), &proxies)))?;
    Ok(client.config_dump(&p.id)?)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Resolve {
    Unknown(String),
    Ambiguous(String, Vec<String>),
}

impl Resolve {
    fn describe(&self, base: &str, proxies: &[SyncStatus]) -> String {
        match self {
            Resolve::Ambiguous(name, matches) => format!(
                "{name:?} matches several proxies; name one as pod.namespace:\n  {}",
                matches.join("\n  ")
            ),
            Resolve::Unknown(name) if proxies.is_empty() => format!(
                "no proxy named {name:?}: no proxies are connected to the control plane at {base}"
            ),
            Resolve::Unknown(name) => {
                let mut known: Vec<String> = proxies
                    .iter()
                    .map(|p| format!("{}  ({})", p.display_name(), p.id))
                    .collect();
                known.sort();
                format!(
                    "no proxy named {name:?} is connected to the control plane at {base}; \
                     connected proxies:\n  {}",
                    known.join("\n  ")
                )
            }
        }
    }
}

/// Finds the proxy a user named: `pod.ns`, `pod` with `-n ns`, a node id, or a bare pod
/// name that only one connected proxy has.
pub fn resolve<'a>(
    name: &str,
    namespace: Option<&str>,
    proxies: &'a [SyncStatus],
) -> Result<&'a SyncStatus, Resolve> {
    let qualified = namespace.map(|ns| format!("{name}.{ns}"));
    let wanted = qualified.as_deref().unwrap_or(name);
    if let Some(p) = proxies
        .iter()
        .find(|p| p.proxy == wanted || p.id == name || p.proxy == name)
    {
        return Ok(p);
    }
    if namespace.is_none() && !name.contains('.') {
        let by_pod: Vec<&SyncStatus> = proxies
            .iter()
            .filter(|p| p.proxy.split_once('.').is_some_and(|(pod, _)| pod == name))
            .collect();
        match by_pod.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                return Err(Resolve::Ambiguous(
                    name.to_string(),
                    many.iter().map(|p| p.proxy.clone()).collect(),
                ))
            }
        }
    }
    Err(Resolve::Unknown(wanted.to_string()))
}

/// JSON (4-space indent, as istioctl prints) or YAML.
fn encode(v: &Value, format: Format) -> String {
    match format {
        Format::Yaml => to_yaml(v),
        _ => {
            let mut buf = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(
                &mut buf,
                serde_json::ser::PrettyFormatter::with_indent(b"    "),
            );
            serde::Serialize::serialize(v, &mut ser).expect("a JSON value serializes");
            let mut s = String::from_utf8(buf).expect("serde_json writes UTF-8");
            s.push('\n');
            s
        }
    }
}

fn to_yaml(v: &Value) -> String {
    fn convert(v: &Value) -> yaml_rust2::Yaml {
        use yaml_rust2::Yaml;
        match v {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Boolean(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Integer(i),
                None => Yaml::Real(n.to_string()),
            },
            Value::String(s) => Yaml::String(s.clone()),
            Value::Array(a) => Yaml::Array(a.iter().map(convert).collect()),
            Value::Object(m) => Yaml::Hash(
                m.iter()
                    .map(|(k, v)| (Yaml::String(k.clone()), convert(v)))
                    .collect(),
            ),
        }
    }
    let mut out = String::new();
    yaml_rust2::YamlEmitter::new(&mut out)
        .dump(&convert(v))
        .expect("writing YAML to a String cannot fail");
    let mut out = out
        .strip_prefix("---\n")
        .or_else(|| out.strip_prefix("---"))
        .unwrap_or(&out)
        .to_string();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(name: &str) -> SyncStatus {
        serde_json::from_value(serde_json::json!({
            "id": format!("sidecar~10.0.0.1~{name}~x.svc.cluster.local"),
            "proxy": name,
        }))
        .unwrap()
    }

    #[test]
    fn resolves_every_way_a_proxy_can_be_named() {
        let ps = vec![
            proxy("reviews-v1-abc.default"),
            proxy("reviews-v1-abc.staging"),
            proxy("ratings-v1-xyz.default"),
        ];
        let id = |r: Result<&SyncStatus, Resolve>| r.map(|p| p.proxy.clone());
        assert_eq!(
            id(resolve("ratings-v1-xyz.default", None, &ps)),
            Ok("ratings-v1-xyz.default".into())
        );
        assert_eq!(
            id(resolve("reviews-v1-abc", Some("staging"), &ps)),
            Ok("reviews-v1-abc.staging".into())
        );
        assert_eq!(
            id(resolve(
                "sidecar~10.0.0.1~ratings-v1-xyz.default~x.svc.cluster.local",
                None,
                &ps
            )),
            Ok("ratings-v1-xyz.default".into())
        );
        assert_eq!(
            id(resolve("ratings-v1-xyz", None, &ps)),
            Ok("ratings-v1-xyz.default".into())
        );
        assert!(
            matches!(resolve("reviews-v1-abc", None, &ps), Err(Resolve::Ambiguous(_, m)) if m.len() == 2)
        );
        assert_eq!(
            resolve("nope", Some("default"), &ps).unwrap_err(),
            Resolve::Unknown("nope.default".into())
        );
    }

    #[test]
    fn unknown_proxy_lists_the_connected_ones() {
        let ps = vec![proxy("b.default"), proxy("a.default")];
        let msg = Resolve::Unknown("c.default".into()).describe("http://127.0.0.1:8080", &ps);
        assert!(
            msg.contains("connected proxies:\n  a.default  (sidecar~"),
            "{msg}"
        );
        assert!(msg.find("a.default").unwrap() < msg.find("b.default").unwrap());
        let none = Resolve::Unknown("c.default".into()).describe("http://x", &[]);
        assert!(none.contains("no proxies are connected"), "{none}");
    }

    #[test]
    fn yaml_output_has_no_document_marker() {
        let v = serde_json::json!([{"name": "80", "port": 80, "on": true}]);
        assert_eq!(to_yaml(&v), "- name: \"80\"\n  port: 80\n  \"on\": true\n");
    }

    #[test]
    fn json_output_uses_four_space_indent() {
        assert_eq!(
            encode(&serde_json::json!({"a": [1]}), Format::Json),
            "{\n    \"a\": [\n        1\n    ]\n}\n"
        );
    }
}
