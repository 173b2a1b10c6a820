//! ServiceEntry (networking.istio.io): services added to the mesh's registry.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::net_checks::{self, Protocol};
use super::workload_entry::{EntryRules, WorkloadEntry};
use crate::path::FieldPath;
use crate::types::WorkloadSelector;
use crate::validation::{checks, Context, Problems, Validate};

crate::string_enum! {
    /// `ServiceEntry.Location`.
    pub enum Location { MeshExternal = "MESH_EXTERNAL", MeshInternal = "MESH_INTERNAL" }
}

crate::string_enum! {
    /// `ServiceEntry.Resolution`.
    pub enum Resolution {
        None = "NONE",
        Static = "STATIC",
        Dns = "DNS",
        DnsRoundRobin = "DNS_ROUND_ROBIN",
        DynamicDns = "DYNAMIC_DNS",
    }
}

/// `ServiceEntry`: hosts, ports and endpoints of a service Istio does not discover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEntry {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// Defaults to `MESH_EXTERNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Defaults to `NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// `None` when the field is absent; `Some(vec![])` for an explicit empty list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<WorkloadEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
}

/// `ServicePort`: a port of the service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

impl ServiceEntry {
    /// The endpoints, absent or not.
    pub fn endpoint_list(&self) -> &[WorkloadEntry] {
        self.endpoints.as_deref().unwrap_or(&[])
    }

    fn resolution(&self) -> Resolution {
        self.resolution.unwrap_or(Resolution::None)
    }
}

impl Validate for ServiceEntry {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let resolution = self.resolution();
        if let Some(sel) = &self.workload_selector {
            net_checks::networking_workload_selector(
                &sel.labels,
                "service entry",
                &path.field("workloadSelector"),
                p,
            );
            if self.endpoints.is_some() {
                p.error(
                    path,
                    "only one of WorkloadSelector or Endpoints can be set: endpoints list the instances, workloadSelector picks them by labels",
                );
            }
        }

        self.validate_hosts(path, p);
        self.validate_addresses(resolution, path, p);
        let port_names = self.validate_ports(resolution, path, p);
        self.validate_resolution(resolution, &port_names, path, p);

        net_checks::export_to(cx, &self.export_to, true, &path.field("exportTo"), p);
    }
}

impl ServiceEntry {
    fn validate_hosts(&self, path: &FieldPath, p: &mut Problems) {
        let hp = path.field("hosts");
        if self.hosts.is_empty() {
            p.error(
                &hp,
                "Required value: service entry must have at least one host, e.g. api.example.com",
            );
        }
        if self.hosts.len() > 256 {
            p.error(&hp, "Too many: a service entry may have at most 256 hosts");
        }
        for (i, h) in self.hosts.iter().enumerate() {
            let at = hp.index(i);
            if h == "*" {
                p.error(
                    &at,
                    "invalid host *: hostname cannot be wildcard alone; use a domain such as *.example.com",
                );
                continue;
            }
            p.check(&at, net_checks::wildcard_host(h));
            if h.contains('*') && !h.starts_with("*.") {
                p.warn(
                    &at,
                    format!(
                        "partial wildcard {h:?} not allowed: only \"*.\" prefixes match subdomains"
                    ),
                );
            }
        }
    }

    fn validate_addresses(&self, resolution: Resolution, path: &FieldPath, p: &mut Problems) {
        let ap = path.field("addresses");
        let mut cidr = false;
        for (i, a) in self.addresses.iter().enumerate() {
            cidr |= a.contains('/');
            p.check(&ap.index(i), checks::ip_or_cidr(a));
        }
        if cidr && !matches!(resolution, Resolution::None | Resolution::Static) {
            p.error(
                &ap,
                format!("CIDR addresses are allowed only for NONE/STATIC resolution types (resolution is {resolution})"),
            );
        }
    }

    /// Checks ports; returns the declared port names.
    fn validate_ports(
        &self,
        resolution: Resolution,
        path: &FieldPath,
        p: &mut Problems,
    ) -> BTreeSet<String> {
        let pp = path.field("ports");
        let mut names = BTreeSet::new();
        let mut numbers = BTreeSet::new();
        let mut warned_tcp = false;
        for (i, port) in self.ports.iter().enumerate() {
            let at = pp.index(i);
            let name = port.name.clone().unwrap_or_default();
            if port.name.is_none() {
                p.error(
                    &at.field("name"),
                    "Required value: every service port needs a name, e.g. http",
                );
            } else if let Err(e) = net_checks::port_name(&name) {
                p.error(&at.field("name"), e);
            }
            if !name.is_empty() && !names.insert(name.clone()) {
                p.error(
                    &at.field("name"),
                    format!("Duplicate value: {name:?}: service entry port name {name:?} already defined"),
                );
            }
            match port.number {
                None => p.error(
                    &at.field("number"),
                    "Required value: port must be between 1-65535",
                ),
                Some(n) => {
                    p.check(&at.field("number"), checks::port(n));
                    if !numbers.insert(n) {
                        p.error(
                            &at.field("number"),
                            format!("port number cannot be duplicated: service entry port {n} already defined"),
                        );
                    }
                }
            }
            if let Some(t) = port.target_port {
                p.check(&at.field("targetPort"), checks::port(t));
                if resolution == Resolution::None {
                    p.warn(
                        &at.field("targetPort"),
                        "targetPort has no effect when resolution mode is NONE",
                    );
                }
            }
            let proto = port.protocol.as_deref().unwrap_or("");
            net_checks::optional_protocol(proto, &at.field("protocol"), p);
            let tcp_like = proto.is_empty() || proto.eq_ignore_ascii_case("TCP");
            if self.addresses.is_empty() && tcp_like && !warned_tcp {
                warned_tcp = true;
                p.warn(
                    &at,
                    "addresses are required for ports serving TCP (or unset) protocol when ISTIO_META_DNS_AUTO_ALLOCATE is not set on a proxy: traffic is matched on the port alone",
                );
            }
        }
        names
    }

    fn validate_resolution(
        &self,
        resolution: Resolution,
        port_names: &BTreeSet<String>,
        path: &FieldPath,
        p: &mut Problems,
    ) {
        let ep = path.field("endpoints");
        let endpoints = self.endpoint_list();
        match resolution {
            Resolution::None => {
                if self.endpoints.is_some() {
                    p.error(
                        &ep,
                        "NONE mode cannot set endpoints: no endpoints should be provided for resolution type none (use STATIC or DNS)",
                    );
                }
                if self.workload_selector.is_some() {
                    p.warn(
                        &path.field("workloadSelector"),
                        "workloadSelector should not be set when resolution mode is NONE",
                    );
                }
            }
            Resolution::Static => {
                if self.endpoints.is_none() && self.workload_selector.is_none() {
                    p.warn(
                        path,
                        "STATIC resolution without endpoints or workloadSelector: the service has no instances to send traffic to",
                    );
                }
                for (i, e) in endpoints.iter().enumerate() {
                    e.check(
                        EntryRules {
                            address_required: true,
                            allow_fqdn: false,
                            service_ports: Some(port_names),
                        },
                        &ep.index(i),
                        p,
                    );
                }
            }
            Resolution::Dns | Resolution::DnsRoundRobin => {
                if endpoints.is_empty() {
                    for (i, h) in self.hosts.iter().enumerate() {
                        if h != "*"
                            && net_checks::fqdn(h).is_err()
                            && net_checks::wildcard_host(h).is_ok()
                        {
                            p.error(
                                &path.field("hosts").index(i),
                                format!("hosts must be FQDN if no endpoints are provided for resolution mode {resolution}: {h:?} cannot be resolved"),
                            );
                        }
                    }
                }
                if resolution == Resolution::DnsRoundRobin && endpoints.len() > 1 {
                    p.error(
                        &ep,
                        format!("DNS_ROUND_ROBIN mode cannot have multiple endpoints: there must only be 0 or 1 endpoint (got {})", endpoints.len()),
                    );
                }
                for (i, e) in endpoints.iter().enumerate() {
                    let at = ep.index(i);
                    if e.is_unix() {
                        p.error(
                            &at.field("address"),
                            format!("DNS resolution cannot be used with Unix domain socket endpoints: use resolution STATIC for {}", e.address.as_deref().unwrap_or("")),
                        );
                        continue;
                    }
                    e.check(
                        EntryRules {
                            address_required: true,
                            allow_fqdn: true,
                            service_ports: Some(port_names),
                        },
                        &at,
                        p,
                    );
                }
                if self.workload_selector.is_some() {
                    p.warn(
                        &path.field("workloadSelector"),
                        format!("workloadSelector should not be set when resolution mode is {resolution}"),
                    );
                }
                if !self.addresses.is_empty()
                    && self.hosts.len() > 1
                    && self.any_port(Protocol::is_tcp)
                {
                    p.warn(
                        &path.field("hosts"),
                        "service entry can not have more than one host specified simultaneously with address and tcp port",
                    );
                }
            }
            Resolution::DynamicDns => {
                for (i, h) in self.hosts.iter().enumerate() {
                    if !h.starts_with("*.") {
                        p.error(
                            &path.field("hosts").index(i),
                            format!("DYNAMIC_DNS resolution must be used with wildcard hosts such as *.example.com (got {h:?})"),
                        );
                    }
                }
                if self.location == Some(Location::MeshInternal) {
                    p.error(
                        &path.field("location"),
                        "DYNAMIC_DNS resolution is only supported for MESH_EXTERNAL service entries",
                    );
                }
                if self.endpoints.is_some() {
                    p.warn(&ep, "endpoints are ignored with DYNAMIC_DNS resolution");
                }
            }
        }

        // Plain TCP cannot tell several hosts apart (no Host header, no SNI).
        if resolution != Resolution::None && self.hosts.len() > 1 {
            let opaque = self.ports.iter().any(|port| {
                let proto = port.protocol.as_deref().unwrap_or("");
                match Protocol::parse(proto) {
                    Some(pr) => !pr.is_http() && !pr.is_tls(),
                    None => true,
                }
            });
            if opaque {
                p.error(
                    &path.field("ports"),
                    "multiple hosts provided with non-HTTP, non-TLS ports: plain TCP cannot tell the hosts apart; use one host per ServiceEntry or resolution NONE",
                );
            }
        }
    }

    fn any_port(&self, f: fn(Protocol) -> bool) -> bool {
        self.ports
            .iter()
            .any(|port| Protocol::parse(port.protocol.as_deref().unwrap_or("")).is_some_and(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::problems_of;
    use serde_json::json;

    fn problems(v: serde_json::Value) -> Vec<String> {
        let se: ServiceEntry = serde_json::from_value(v).expect("decodes");
        problems_of(&se, &Context::for_test("ServiceEntry"))
    }

    fn has(v: &[String], frag: &str) -> bool {
        v.iter().any(|s| s.contains(frag))
    }

    #[test]
    fn valid_entries() {
        for v in [
            json!({"hosts": ["example.com"], "workloadSelector": {"labels": {"foo": "bar"}}, "addresses": ["1.2.3.4", "2001:db8::"],
                   "exportTo": ["foo", "."], "location": "MESH_EXTERNAL", "ports": [{"name": "foo", "protocol": "HTTP", "number": 1234, "targetPort": 2345}],
                   "subjectAltNames": ["sa"], "resolution": "DNS"}),
            json!({"hosts": ["example.com"], "endpoints": [{"address": "sub.example.com"}], "resolution": "DNS",
                   "ports": [{"name": "foo", "protocol": "HTTP", "number": 1234}]}),
            json!({"hosts": ["*x"]}),
            json!({"hosts": ["example.com"], "addresses": ["1.1.1.1/32"]}),
            json!({"hosts": ["a.example.com"], "resolution": "STATIC", "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}],
                   "endpoints": [{"address": "10.0.0.1", "ports": {"http": 8080}}, {"address": "unix:///var/run/a.sock"}]}),
            json!({"hosts": ["*.example.com"], "resolution": "DYNAMIC_DNS", "ports": [{"name": "https", "number": 443, "protocol": "TLS"}]}),
        ] {
            let errs: Vec<String> = problems(v.clone());
            let se: ServiceEntry = serde_json::from_value(v.clone()).unwrap();
            let mut p = Problems::new();
            se.validate(
                &Context::for_test("ServiceEntry"),
                &FieldPath::spec(),
                &mut p,
            );
            assert!(!p.has_errors(), "{v}: {errs:?}");
        }
    }

    #[test]
    fn corpus_rules() {
        assert!(has(&problems(json!({})), "spec.hosts: Required value"));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "workloadSelector": {"labels": {"val": "*"}}})
            ),
            "wildcard is not supported in selector"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "workloadSelector": {}, "endpoints": [{"address": "1.2.3.4"}]})
            ),
            "only one of WorkloadSelector or Endpoints can be set"
        ));
        assert!(has(
            &problems(json!({"hosts": ["*"]})),
            "hostname cannot be wildcard"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "addresses": ["1.2.3.4/16"], "resolution": "DNS"})
            ),
            "CIDR addresses are allowed only for NONE/STATIC resolution types"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "ports": [{"name": "a", "number": 1}, {"name": "a", "number": 12}]})
            ),
            "Duplicate value"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "ports": [{"name": "a", "number": 1}, {"name": "b", "number": 1}]})
            ),
            "port number cannot be duplicated"
        ));
        assert!(has(
            &problems(json!({"hosts": ["example.com"], "ports": [{"name": "a", "number": 99999}]})),
            "port must be between 1-65535"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "ports": [{"name": "a", "number": 1, "targetPort": 99999}]})
            ),
            "port must be between 1-65535"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "endpoints": [{"address": "1.2.3.4"}], "resolution": "NONE"})
            ),
            "NONE mode cannot set endpoints"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "resolution": "DNS_ROUND_ROBIN", "endpoints": [{"address": "a.example.com"}, {"address": "b.example.com"}]})
            ),
            "DNS_ROUND_ROBIN mode cannot have multiple endpoints"
        ));
    }

    #[test]
    fn more_rules() {
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "resolution": "STATIC", "endpoints": [{"address": "host.example.com"}]})
            ),
            "is not a valid IP address"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "resolution": "STATIC", "ports": [{"name": "http", "number": 80}],
                             "endpoints": [{"address": "1.1.1.1", "ports": {"grpc": 90}}]})
            ),
            "is not defined by the service entry"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["a.com", "b.com"], "resolution": "DNS", "ports": [{"name": "tcp", "number": 80, "protocol": "TCP"}]})
            ),
            "multiple hosts provided with non-HTTP, non-TLS ports"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "ports": [{"name": "a", "number": 1, "protocol": "FTP"}]})
            ),
            "unsupported protocol"
        ));
        assert!(has(
            &problems(json!({"hosts": ["*.example.com"], "resolution": "DNS"})),
            "hosts must be FQDN"
        ));
        assert!(has(
            &problems(json!({"hosts": ["example.com"], "exportTo": ["*", "foo"]})),
            "cannot be combined"
        ));
        assert!(has(
            &problems(json!({"hosts": ["example.com"], "resolution": "DYNAMIC_DNS"})),
            "wildcard hosts"
        ));
        assert!(has(
            &problems(json!({"hosts": ["example.com"], "addresses": ["1.2.3.4/99"]})),
            "not a valid CIDR"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "ports": [{"name": "Bad_Name", "number": 1}]})
            ),
            "invalid port name"
        ));
        assert!(has(
            &problems(
                json!({"hosts": ["example.com"], "resolution": "DNS", "endpoints": [{"address": "unix:///a.sock"}]})
            ),
            "DNS resolution cannot be used with Unix"
        ));
        let se: ServiceEntry =
            serde_json::from_value(json!({"hosts": ["example.com"], "location": "MESH_INTERNAL"}))
                .unwrap();
        assert_eq!(se.location, Some(Location::MeshInternal));
        assert!(serde_json::from_value::<ServiceEntry>(
            json!({"hosts": ["a"], "location": "INSIDE"})
        )
        .is_err());
    }
}
