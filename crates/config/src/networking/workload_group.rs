//! WorkloadGroup (networking.istio.io): a template for WorkloadEntries (VM
//! auto-registration) with an optional readiness probe.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::workload_entry::{EntryRules, WorkloadEntry};
use crate::path::FieldPath;
use crate::validation::{checks, Context, Problems, Validate};

/// `WorkloadGroup`: metadata and template for generated WorkloadEntries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<GroupMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<WorkloadEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ReadinessProbe>,
}

/// `WorkloadGroup.ObjectMeta`: labels and annotations copied to each WorkloadEntry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `ReadinessProbe`: timing plus exactly one of httpGet, tcpSocket, exec or grpc.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadinessProbe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcHealthCheck>,
}

/// `HTTPHealthCheckConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `HTTP` (default) or `HTTPS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// `HTTPHeader`: a header sent with an HTTP probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `TCPHealthCheckConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpHealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

/// `ExecHealthCheckConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecHealthCheck {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// `GrpcHealthCheckConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcHealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Validate for WorkloadGroup {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if let Some(m) = &self.metadata {
            let at = path.field("metadata");
            for (k, v) in &m.labels {
                let lp = at.field("labels").key(k);
                if let Err(e) = checks::label_key(k).and_then(|_| checks::label_value(v)) {
                    p.error(&lp, format!("invalid labels: {e}"));
                }
            }
            for k in m.annotations.keys() {
                if let Err(e) = checks::label_key(k) {
                    p.error(
                        &at.field("annotations").key(k),
                        format!("invalid annotation key: {e}"),
                    );
                }
            }
        }
        let tpath = path.field("template");
        match &self.template {
            None => p.error(
                &tpath,
                "template is required: Required value; set at least template.serviceAccount (an empty template {} is allowed)",
            ),
            Some(t) => {
                t.check(
                    EntryRules {
                        address_required: false,
                        allow_fqdn: true,
                        service_ports: None,
                    },
                    &tpath,
                    p,
                );
                if t.address.as_deref().is_some_and(|a| !a.is_empty()) {
                    p.warn(
                        &tpath.field("address"),
                        "template.address is ignored: each generated WorkloadEntry takes the address of the VM that registers",
                    );
                }
                if !t.labels.is_empty() {
                    p.warn(
                        &tpath.field("labels"),
                        "template.labels should be set in metadata.labels instead: labels on the template are not propagated",
                    );
                }
            }
        }
        if let Some(pr) = &self.probe {
            pr.check(&path.field("probe"), p);
        }
    }
}

fn header_name_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^[-_A-Za-z0-9]+$").expect("static regex"))
}

fn probe_port(port: Option<u32>, path: &FieldPath, p: &mut Problems) {
    match port {
        None => p.error(path, "Required value: port must be between 1-65535"),
        Some(n) => p.check(path, checks::port(n)),
    }
}

impl ReadinessProbe {
    fn check(&self, path: &FieldPath, p: &mut Problems) {
        for (v, name) in [
            (self.initial_delay_seconds, "initialDelaySeconds"),
            (self.timeout_seconds, "timeoutSeconds"),
            (self.period_seconds, "periodSeconds"),
            (self.success_threshold, "successThreshold"),
            (self.failure_threshold, "failureThreshold"),
        ] {
            if let Some(n) = v.filter(|n| *n < 0) {
                p.error(
                    &path.field(name),
                    format!("{name} must be non-negative (got {n}): should be greater than or equal to 0"),
                );
            }
        }
        let methods = [
            self.http_get.is_some(),
            self.tcp_socket.is_some(),
            self.exec.is_some(),
            self.grpc.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        match methods {
            0 => p.error(
                path,
                "probe must set one health check method: httpGet, tcpSocket, exec or grpc",
            ),
            1 => {}
            _ => p.error(
                path,
                "only one of httpGet, tcpSocket, exec or grpc can be set in a probe",
            ),
        }
        if let Some(h) = &self.http_get {
            let at = path.field("httpGet");
            probe_port(h.port, &at.field("port"), p);
            if let Some(s) = h.scheme.as_deref() {
                if !matches!(s, "" | "HTTP" | "HTTPS") {
                    p.error(
                        &at.field("scheme"),
                        format!("scheme must be one of [HTTP, HTTPS] (got {s:?})"),
                    );
                }
            }
            for (i, hd) in h.http_headers.iter().enumerate() {
                let np = at.field("httpHeaders").index(i).field("name");
                let name = hd.name.as_deref().unwrap_or("");
                if name.is_empty() {
                    p.error(&np, "header name cannot be empty: name the header to send");
                } else if !header_name_re().is_match(name) {
                    p.error(
                        &np,
                        format!("{np} in body should match '^[-_A-Za-z0-9]+$': header name {name:?} is not a valid header name"),
                    );
                }
            }
        }
        if let Some(t) = &self.tcp_socket {
            probe_port(t.port, &path.field("tcpSocket").field("port"), p);
        }
        if let Some(e) = &self.exec {
            let at = path.field("exec").field("command");
            if e.command.is_empty() {
                p.error(
                    &at,
                    "exec.command is required: give the command and its arguments",
                );
            }
            for (i, c) in e.command.iter().enumerate() {
                if c.is_empty() {
                    p.error(&at.index(i), "command entries must not be empty");
                }
            }
        }
        if let Some(g) = &self.grpc {
            if let Some(n) = g.port {
                p.check(&path.field("grpc").field("port"), checks::port(n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::problems_of;
    use serde_json::json;

    fn problems(v: serde_json::Value) -> Vec<String> {
        let wg: WorkloadGroup = serde_json::from_value(v).expect("decodes");
        problems_of(&wg, &Context::for_test("WorkloadGroup"))
    }

    fn has(v: &[String], frag: &str) -> bool {
        v.iter().any(|s| s.contains(frag))
    }

    #[test]
    fn full_group_is_valid() {
        let v = problems(json!({
            "metadata": {"labels": {"foo": "bar"}, "annotations": {"foo": "bar"}},
            "probe": {"failureThreshold": 2, "initialDelaySeconds": 1, "periodSeconds": 1,
                      "successThreshold": 1, "timeoutSeconds": 1,
                      "httpGet": {"port": 8080, "host": "bar", "scheme": "HTTPS", "path": "/bar",
                                  "httpHeaders": [{"name": "foo", "value": "bar"}]}},
            "template": {"serviceAccount": "sa", "network": "net", "ports": {"http": 1}, "weight": 2, "locality": "foo/bar/baz"}
        }));
        assert!(v.is_empty(), "{v:?}");
        assert!(problems(
            json!({"template": {}, "probe": {"grpc": {"port": 9000, "service": "x"}}})
        )
        .is_empty());
        assert!(
            problems(json!({"template": {}, "probe": {"exec": {"command": ["true"]}}})).is_empty()
        );
    }

    #[test]
    fn template_rules() {
        assert!(has(&problems(json!({})), "template is required"));
        let w = problems(json!({"template": {"address": "1.2.3.4"}}));
        assert!(has(&w, "template.address is ignored"), "{w:?}");
        assert!(has(
            &problems(json!({"template": {"address": "unix://@a", "ports": {"http": 80}}})),
            "UDS may not include ports"
        ));
        assert!(has(
            &problems(json!({"template": {}, "metadata": {"labels": {"a*": "b"}}})),
            "invalid labels"
        ));
    }

    #[test]
    fn probe_rules() {
        assert!(has(
            &problems(json!({"template": {}, "probe": {"tcpSocket": {"port": 65536}}})),
            "port must be between 1-65535"
        ));
        assert!(has(
            &problems(
                json!({"template": {}, "probe": {"httpGet": {"port": 80, "httpHeaders": [{"name": "**"}]}}})
            ),
            "spec.probe.httpGet.httpHeaders[0].name in body should match"
        ));
        assert!(has(
            &problems(
                json!({"template": {}, "probe": {"tcpSocket": {"port": 1}, "exec": {"command": ["a"]}}})
            ),
            "only one of httpGet"
        ));
        assert!(has(
            &problems(json!({"template": {}, "probe": {"periodSeconds": 1}})),
            "one health check method"
        ));
        assert!(has(
            &problems(json!({"template": {}, "probe": {"exec": {}}})),
            "exec.command is required"
        ));
        assert!(has(
            &problems(
                json!({"template": {}, "probe": {"timeoutSeconds": -1, "grpc": {"port": 1}}})
            ),
            "timeoutSeconds must be non-negative"
        ));
        assert!(has(
            &problems(json!({"template": {}, "probe": {"httpGet": {"port": 80, "scheme": "FTP"}}})),
            "scheme must be one of [HTTP, HTTPS]"
        ));
        assert!(has(
            &problems(json!({"template": {}, "probe": {"httpGet": {}}})),
            "Required value"
        ));
    }
}
