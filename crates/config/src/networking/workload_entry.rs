//! WorkloadEntry (networking.istio.io): a non-Kubernetes workload. The same type is a
//! ServiceEntry endpoint and a WorkloadGroup template, with slightly different rules;
//! [`WorkloadEntry::check`] takes the differences as [`EntryRules`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::net_checks;
use crate::path::FieldPath;
use crate::validation::{checks, Context, Problems, Validate};

/// `WorkloadEntry`: the address, ports and identity of one workload instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEntry {
    /// An IP, a fully qualified DNS name, or `unix:///path` / `unix://@abstract`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Service port name → this endpoint's port.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

pub(crate) const UNIX_PREFIX: &str = "unix://";

/// Where a `WorkloadEntry` appears, which decides what its address may be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryRules<'a> {
    /// An address (or a network) is required; false for WorkloadGroup templates.
    pub address_required: bool,
    /// A host name is allowed as address (DNS resolution); false for STATIC endpoints.
    pub allow_fqdn: bool,
    /// The ServiceEntry's port names, which endpoint port names must refer to.
    pub service_ports: Option<&'a BTreeSet<String>>,
}

impl Validate for WorkloadEntry {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        self.check(
            EntryRules {
                address_required: true,
                allow_fqdn: true,
                service_ports: None,
            },
            path,
            p,
        );
    }
}

fn max_len(v: &Option<String>, max: usize, path: &FieldPath, p: &mut Problems) {
    if let Some(s) = v.as_deref().filter(|s| s.len() > max) {
        p.error(
            path,
            format!(
                "Too long: may not be more than {max} bytes (got {})",
                s.len()
            ),
        );
    }
}

impl WorkloadEntry {
    /// True when the address is a Unix domain socket.
    pub fn is_unix(&self) -> bool {
        self.address
            .as_deref()
            .is_some_and(|a| a.starts_with(UNIX_PREFIX))
    }

    pub(crate) fn check(&self, rules: EntryRules<'_>, path: &FieldPath, p: &mut Problems) {
        let addr_path = path.field("address");
        let addr = self.address.as_deref().unwrap_or("");
        let network = self.network.as_deref().unwrap_or("");
        if addr.is_empty() && rules.address_required {
            if network.is_empty() {
                p.error(
                    &addr_path,
                    "Address is required: set address (an IP, a DNS name or unix:///path), or network for a workload reached through a network gateway",
                );
            } else {
                p.warn(
                    &addr_path,
                    format!("address is unset with network {network:?}: the workload is reached through that network's gateway"),
                );
            }
        }
        max_len(&self.address, 256, &addr_path, p);
        if let Some(sock) = addr.strip_prefix(UNIX_PREFIX) {
            p.check(&addr_path, net_checks::unix_address(sock));
            if !self.ports.is_empty() {
                p.error(
                    &path.field("ports"),
                    format!("UDS may not include ports: unix endpoint {addr} must not set ports"),
                );
            }
            if let Some(sp) = rules.service_ports {
                if sp.len() != 1 {
                    p.error(
                        &addr_path,
                        format!("exactly 1 service port required for unix endpoints (the service entry declares {})", sp.len()),
                    );
                }
            }
        } else if !addr.is_empty() && checks::ip(addr).is_err() {
            if !rules.allow_fqdn {
                p.error(
                    &addr_path,
                    format!("endpoint address {addr:?} is not a valid IP address: STATIC resolution needs IP addresses or unix:// sockets (use resolution DNS for host names)"),
                );
            } else if net_checks::fqdn(addr).is_err() {
                p.error(
                    &addr_path,
                    format!("endpoint address {addr:?} is not a valid FQDN or an IP address"),
                );
            }
        }

        let ports_path = path.field("ports");
        if self.ports.len() > 128 {
            p.error(
                &ports_path,
                format!(
                    "Too many: {}: must have at most 128 ports",
                    self.ports.len()
                ),
            );
        }
        for (name, port) in &self.ports {
            if let Err(e) = port_map_name(name) {
                p.error(
                    &ports_path,
                    format!("Invalid value: {name:?}: port name must be valid: {e}"),
                );
            }
            if let Some(sp) = rules.service_ports {
                if !sp.contains(name) {
                    p.error(
                        &ports_path.key(name),
                        format!("endpoint port {port} is not defined by the service entry: {name:?} must name one of its ports"),
                    );
                }
            }
            p.check(&ports_path.key(name), checks::port(*port));
        }
        net_checks::labels(&self.labels, &path.field("labels"), p);
        max_len(&self.network, 2048, &path.field("network"), p);
        max_len(&self.locality, 2048, &path.field("locality"), p);
        if let Some(l) = self.locality.as_deref() {
            if !l.is_empty() && l.split('/').any(str::is_empty) {
                p.warn(
                    &path.field("locality"),
                    format!("locality {l:?} has an empty segment: write region/zone/subzone, e.g. us-east1/us-east1-b"),
                );
            }
        }
        max_len(&self.service_account, 253, &path.field("serviceAccount"), p);
    }
}

/// Port map keys: a DNS-1123 label shorter than 63 characters (the CRD's rule).
fn port_map_name(name: &str) -> Result<(), String> {
    if name.len() < 63 && checks::is_dns1123_label(name) {
        Ok(())
    } else {
        Err("use letters, digits and '-', starting and ending with a letter or digit (at most 62 characters)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::problems_of;
    use serde_json::json;

    fn problems(v: serde_json::Value) -> Vec<String> {
        let we: WorkloadEntry = serde_json::from_value(v).expect("decodes");
        problems_of(&we, &Context::for_test("WorkloadEntry"))
    }

    fn has(v: &[String], frag: &str) -> bool {
        v.iter().any(|s| s.contains(frag))
    }

    #[test]
    fn valid_entries() {
        for v in [
            json!({"address": "1.2.3.4", "ports": {"http": 80}, "labels": {"app": "a"}, "weight": 2, "locality": "a/b/c", "serviceAccount": "sa", "network": "n"}),
            json!({"address": "unix://@foo"}),
            json!({"address": "unix:///foo/bar"}),
            json!({"address": "example.com"}),
            json!({"address": "2001:db8::1"}),
        ] {
            assert!(
                problems(v.clone()).is_empty(),
                "{v}: {:?}",
                problems(v.clone())
            );
        }
    }

    #[test]
    fn address_required_unless_network() {
        assert!(has(&problems(json!({})), "Address is required"));
        let w = problems(json!({"network": "n"}));
        assert!(has(&w, "address is unset with network"), "{w:?}");
    }

    #[test]
    fn unix_rules() {
        assert!(has(
            &problems(json!({"address": "unix:///dir/"})),
            "UDS may not be a dir"
        ));
        assert!(has(
            &problems(json!({"address": "unix://relative"})),
            "UDS must be an absolute path or abstract socket"
        ));
        assert!(has(
            &problems(json!({"address": "unix://@foo", "ports": {"http": 80}})),
            "UDS may not include ports"
        ));
    }

    #[test]
    fn ports_and_names() {
        assert!(has(
            &problems(json!({"address": "1.1.1.1", "ports": {"http": 99999}})),
            "port must be between 1-65535"
        ));
        let v = problems(json!({"address": "1.1.1.1", "ports": {"@": 80}}));
        assert!(has(&v, "spec.ports: Invalid value"), "{v:?}");
    }

    #[test]
    fn bad_addresses_and_labels() {
        assert!(has(
            &problems(json!({"address": "not_a_host!"})),
            "not a valid FQDN"
        ));
        assert!(has(
            &problems(json!({"address": "foo.123"})),
            "not a valid FQDN"
        ));
        assert!(!problems(json!({"address": "1.1.1.1", "labels": {"bad key!": "v"}})).is_empty());
    }

    #[test]
    fn endpoint_rules() {
        let we: WorkloadEntry =
            serde_json::from_value(json!({"address": "a.example.com", "ports": {"tcp": 1}}))
                .unwrap();
        let declared: BTreeSet<String> = ["http".to_string()].into();
        let mut p = Problems::new();
        we.check(
            EntryRules {
                address_required: true,
                allow_fqdn: false,
                service_ports: Some(&declared),
            },
            &FieldPath::spec(),
            &mut p,
        );
        let msgs: Vec<String> = p.iter().map(|x| x.message.clone()).collect();
        assert!(has(&msgs, "is not a valid IP address"), "{msgs:?}");
        assert!(
            has(&msgs, "is not defined by the service entry"),
            "{msgs:?}"
        );
    }
}
