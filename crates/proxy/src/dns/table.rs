//! The runtime name index built from discovery's NDS `NameTable`.

use std::collections::HashMap;
use std::net::IpAddr;

use ironmesh_xds::nds::{self, REGISTRY_KUBERNETES};
use prost::Message;

/// Names → addresses, with the forms a Kubernetes client uses: `name` (same namespace
/// only), `name.ns`, `name.ns.svc`, the fqdn; any of them with a trailing dot. Names
/// are matched case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameTable {
    /// fqdn and `name.ns` / `name.ns.svc` aliases (valid from every namespace).
    names: HashMap<String, Vec<IpAddr>>,
    /// `(namespace, shortname)` → addresses, answered only to proxies in `namespace`.
    short: HashMap<(String, String), Vec<IpAddr>>,
    /// Cluster domains seen in Kubernetes fqdns (`cluster.local`), longest first, to
    /// undo a client's search-list expansion of a non-Kubernetes host.
    domains: Vec<String>,
    hosts: usize,
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl NameTable {
    /// Decodes the `Any` discovery sends for `type.googleapis.com/istio.networking.nds.v1.NameTable`.
    pub fn from_nds(any: &ironmesh_xds::Any) -> Result<NameTable, String> {
        if any.type_url != nds::TYPE_URL {
            return Err(format!(
                "expected a {} resource, got {:?}",
                nds::TYPE_URL,
                any.type_url
            ));
        }
        let table = nds::NameTable::decode(any.value.as_slice())
            .map_err(|e| format!("cannot decode the NameTable: {e}"))?;
        NameTable::from_table(&table)
    }

    /// Merges every NDS resource of one xDS response, `(name, Any)`. ironmesh sends one
    /// table named `""`; Istio may also send one resource per host, named after the host
    /// with its `name_info` set — both forms are accepted.
    pub fn from_resources<'a>(
        resources: impl IntoIterator<Item = (&'a str, &'a ironmesh_xds::Any)>,
    ) -> Result<NameTable, String> {
        let mut merged = nds::NameTable::default();
        for (name, any) in resources {
            if any.type_url != nds::TYPE_URL {
                return Err(format!(
                    "resource {name:?}: expected {}, got {:?}",
                    nds::TYPE_URL,
                    any.type_url
                ));
            }
            let t = nds::NameTable::decode(any.value.as_slice())
                .map_err(|e| format!("resource {name:?}: cannot decode the NameTable: {e}"))?;
            merged.table.extend(t.table);
            if let Some(info) = t.name_info {
                if !name.is_empty() {
                    merged.table.insert(name.to_string(), info);
                }
            }
        }
        NameTable::from_table(&merged)
    }

    /// Builds the index; an address that is not an IP rejects the whole table (so the
    /// agent NACKs it and keeps the last good one).
    pub fn from_table(table: &nds::NameTable) -> Result<NameTable, String> {
        let mut out = NameTable::default();
        for (host, info) in &table.table {
            let ips = info
                .ips
                .iter()
                .map(|ip| {
                    ip.parse::<IpAddr>()
                        .map_err(|_| format!("host {host}: {ip:?} is not an IP address"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let fqdn = normalize(host);
            out.names.entry(fqdn.clone()).or_default().extend(&ips);
            if info.registry == REGISTRY_KUBERNETES
                && !info.shortname.is_empty()
                && !info.namespace.is_empty()
            {
                let short = info.shortname.to_ascii_lowercase();
                let ns = info.namespace.to_ascii_lowercase();
                for alias in [format!("{short}.{ns}"), format!("{short}.{ns}.svc")] {
                    // The fqdn of a real host wins over an alias that happens to equal it.
                    out.names.entry(alias).or_insert_with(|| ips.clone());
                }
                out.short.insert((ns.clone(), short.clone()), ips.clone());
                if let Some(domain) = fqdn.strip_prefix(&format!("{short}.{ns}.svc.")) {
                    if !out.domains.iter().any(|d| d == domain) {
                        out.domains.push(domain.to_string());
                    }
                }
            }
        }
        out.hosts = table.table.len();
        out.domains.sort_by_key(|d| std::cmp::Reverse(d.len()));
        Ok(out)
    }

    /// How many host names discovery sent (aliases not counted).
    pub fn len(&self) -> usize {
        self.hosts
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The addresses of `name` as asked by a client in `namespace`; `None` when the
    /// name is not a mesh name (forward it).
    pub fn lookup(&self, name: &str, namespace: &str) -> Option<&[IpAddr]> {
        let name = normalize(name);
        if let Some(ips) = self.direct(&name, namespace) {
            return Some(ips);
        }
        // A resolver walking its search list asks for `host.<ns>.svc.<domain>`,
        // `host.svc.<domain>`, `host.<domain>`: answer for `host` right away instead
        // of making the client wait for NXDOMAINs from upstream.
        for domain in &self.domains {
            for suffix in [
                format!(".{namespace}.svc.{domain}"),
                format!(".svc.{domain}"),
                format!(".{domain}"),
            ] {
                if let Some(prefix) = name.strip_suffix(&suffix) {
                    if let Some(ips) = self.direct(prefix, namespace) {
                        return Some(ips);
                    }
                }
            }
        }
        None
    }

    fn direct(&self, name: &str, namespace: &str) -> Option<&[IpAddr]> {
        if let Some(ips) = self.names.get(name) {
            return Some(ips);
        }
        if !name.contains('.') {
            return self
                .short
                .get(&(namespace.to_ascii_lowercase(), name.to_string()))
                .map(Vec::as_slice);
        }
        None
    }
}
