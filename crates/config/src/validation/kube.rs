//! Checks for object metadata and for the Kubernetes kinds the mesh reads. These are
//! the rules that matter to the mesh (names, selectors, ports, TLS secrets), not the
//! whole of the API server's validation.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Endpoints, PodSpec, PodTemplateSpec, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::checks;
use super::Problems;
use crate::object::Resource;
use crate::path::FieldPath;

/// `metadata`: a name (or generateName), a valid namespace, valid label keys/values.
pub fn validate_metadata(meta: &ObjectMeta, namespaced: bool, p: &mut Problems) {
    let at = FieldPath::root().field("metadata");
    match (&meta.name, &meta.generate_name) {
        (Some(n), _) if !n.is_empty() => p.check(&at.field("name"), checks::dns1123_subdomain(n)),
        (_, Some(g)) if !g.is_empty() => {}
        _ => p.error(
            &at.field("name"),
            "metadata.name: Required value: every object needs a name",
        ),
    }
    if let Some(ns) = &meta.namespace {
        if !namespaced {
            p.warn(
                &at.field("namespace"),
                "this kind is cluster-scoped; metadata.namespace is ignored",
            );
        } else if !ns.is_empty() {
            p.check(&at.field("namespace"), checks::namespace_name(ns));
        }
    }
    if let Some(labels) = &meta.labels {
        for (k, v) in labels {
            let lp = at.field("labels").key(k);
            p.check(&lp, checks::label_key(k));
            if let Err(e) = checks::label_value(v) {
                // A `*` is legal in no label value, selector or not.
                p.error(
                    &lp,
                    e.replace(": wildcard is not supported in selector", ""),
                );
            }
        }
    }
    if let Some(ann) = &meta.annotations {
        for k in ann.keys() {
            p.check(&at.field("annotations").key(k), checks::label_key(k));
        }
    }
}

/// Kind-specific checks for the Kubernetes objects.
pub fn validate_kube_object(resource: &Resource, p: &mut Problems) {
    let spec = FieldPath::spec();
    match resource {
        Resource::Service(s) => validate_service(s, p),
        Resource::Pod(pod) => {
            if let Some(ps) = &pod.spec {
                validate_pod_spec(ps, &spec, p);
            } else {
                p.error(&spec, "spec: Required value: a Pod needs containers");
            }
        }
        Resource::Deployment(d) => {
            if let Some(s) = &d.spec {
                validate_workload(s.replicas, Some(&s.selector), &s.template, &spec, p);
            } else {
                p.error(&spec, "spec: Required value");
            }
        }
        Resource::ReplicaSet(d) => {
            if let Some(s) = &d.spec {
                let t = s.template.clone().unwrap_or_default();
                validate_workload(s.replicas, Some(&s.selector), &t, &spec, p);
            }
        }
        Resource::StatefulSet(d) => {
            if let Some(s) = &d.spec {
                validate_workload(s.replicas, Some(&s.selector), &s.template, &spec, p);
            } else {
                p.error(&spec, "spec: Required value");
            }
        }
        Resource::DaemonSet(d) => {
            if let Some(s) = &d.spec {
                validate_workload(None, Some(&s.selector), &s.template, &spec, p);
            } else {
                p.error(&spec, "spec: Required value");
            }
        }
        Resource::Secret(s) => validate_secret(s, p),
        Resource::Namespace(ns) => {
            // metadata.name already passed as a subdomain; a namespace is stricter.
            if let Some(name) = ns
                .metadata
                .name
                .as_deref()
                .filter(|n| checks::dns1123_subdomain(n).is_ok())
            {
                p.check(
                    &FieldPath::root().field("metadata").field("name"),
                    checks::namespace_name(name),
                );
            }
        }
        Resource::Endpoints(e) => validate_endpoints(e, p),
        Resource::EndpointSlice(e) => validate_endpoint_slice(e, p),
        _ => {}
    }
}

fn validate_service(svc: &Service, p: &mut Problems) {
    let at = FieldPath::spec();
    let Some(spec) = &svc.spec else {
        p.error(&at, "spec: Required value: a Service needs ports");
        return;
    };
    let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
    if !matches!(
        ty,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        p.error(
            &at.field("type"),
            crate::types::unsupported_value(
                ty,
                &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
            ),
        );
    }
    if ty == "ExternalName" {
        match spec.external_name.as_deref() {
            None | Some("") => p.error(
                &at.field("externalName"),
                "spec.externalName: Required value: an ExternalName Service needs the DNS name it aliases",
            ),
            Some(n) => p.check(&at.field("externalName"), checks::fqdn(n.trim_end_matches('.'))),
        }
    }
    if let Some(ip) = &spec.cluster_ip {
        if !ip.is_empty() && ip != "None" {
            p.check(&at.field("clusterIP"), checks::ip(ip));
        }
    }
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    if ports.is_empty() && ty != "ExternalName" && spec.cluster_ip.as_deref() != Some("None") {
        p.error(
            &at.field("ports"),
            "spec.ports: Required value: a Service needs at least one port",
        );
    }
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let pp = at.field("ports").index(i);
        p.check(&pp.field("port"), port_i32(port.port));
        let proto = port.protocol.as_deref().unwrap_or("TCP");
        if !matches!(proto, "TCP" | "UDP" | "SCTP") {
            p.error(
                &pp.field("protocol"),
                crate::types::unsupported_value(proto, &["TCP", "UDP", "SCTP"]),
            );
        }
        if !numbers.insert((port.port, proto.to_string())) {
            p.error(
                &pp.field("port"),
                format!(
                    "Duplicate value: port {}/{proto} is listed twice",
                    port.port
                ),
            );
        }
        match &port.name {
            Some(n) if !n.is_empty() => {
                if !checks::is_dns1123_label(n) || n.chars().any(|c| c.is_ascii_uppercase()) {
                    p.error(
                        &pp.field("name"),
                        format!("port name {n:?} must be a lower-case DNS label"),
                    );
                }
                if !names.insert(n.clone()) {
                    p.error(
                        &pp.field("name"),
                        format!("Duplicate value: port name {n:?}"),
                    );
                }
            }
            _ if ports.len() > 1 => p.error(
                &pp.field("name"),
                "name: Required value: every port needs a name when a Service has several ports",
            ),
            _ => {}
        }
        if let Some(tp) = &port.target_port {
            int_or_name_port(tp, &pp.field("targetPort"), p);
        }
    }
    if let Some(sel) = &spec.selector {
        for (k, v) in sel {
            let sp = at.field("selector").key(k);
            p.check(&sp, checks::label_key(k));
            p.check(&sp, checks::label_value(v));
        }
    }
}

fn int_or_name_port(v: &IntOrString, at: &FieldPath, p: &mut Problems) {
    match v {
        IntOrString::Int(n) => p.check(at, port_i32(*n)),
        IntOrString::String(s) => {
            if s.parse::<u32>().is_ok() {
                // kubectl accepts a quoted number and converts it.
                p.check(at, checks::port(s.parse().unwrap_or(0)));
            } else if s.is_empty() || s.len() > 15 || !checks::is_dns1123_label(s) {
                p.error(at, format!("{s:?} must be a port number or a port name (at most 15 lower-case characters)"));
            }
        }
    }
}

fn validate_workload(
    replicas: Option<i32>,
    selector: Option<&LabelSelector>,
    template: &PodTemplateSpec,
    at: &FieldPath,
    p: &mut Problems,
) {
    if let Some(r) = replicas {
        if r < 0 {
            p.error(
                &at.field("replicas"),
                format!("replicas must be 0 or more (got {r})"),
            );
        }
    }
    let template_labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if let Some(sel) = selector {
        let wanted = sel.match_labels.clone().unwrap_or_default();
        if wanted.is_empty() && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty()) {
            p.error(
                &at.field("selector"),
                "selector: Required value: set selector.matchLabels to the pod template's labels",
            );
        }
        for (i, e) in sel
            .match_expressions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let have = template_labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or(&[]);
            let ok = match e.operator.as_str() {
                "In" => have.is_some_and(|v| values.contains(v)),
                "NotIn" => have.is_none_or(|v| !values.contains(v)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                other => {
                    p.error(
                        &at.field("selector")
                            .field("matchExpressions")
                            .index(i)
                            .field("operator"),
                        crate::types::unsupported_value(
                            other,
                            &["In", "NotIn", "Exists", "DoesNotExist"],
                        ),
                    );
                    true
                }
            };
            if !ok {
                p.error(
                    &at.field("template").field("metadata").field("labels"),
                    format!(
                        "selector does not match template labels: matchExpressions[{i}] ({} {} [{}]) is not satisfied by the template's labels",
                        e.key,
                        e.operator,
                        values.join(", ")
                    ),
                );
            }
        }
        for (k, v) in &wanted {
            if template_labels.get(k) != Some(v) {
                p.error(
                    &at.field("template").field("metadata").field("labels"),
                    format!(
                        "selector does not match template labels: the template needs label {k}={v} (spec.selector.matchLabels)"
                    ),
                );
            }
        }
    }
    match &template.spec {
        Some(ps) => validate_pod_spec(ps, &at.field("template").field("spec"), p),
        None => p.error(
            &at.field("template").field("spec"),
            "template.spec: Required value",
        ),
    }
}

fn validate_pod_spec(spec: &PodSpec, at: &FieldPath, p: &mut Problems) {
    if spec.containers.is_empty() {
        p.error(
            &at.field("containers"),
            "containers: Required value: a pod needs at least one container",
        );
    }
    let mut names = BTreeSet::new();
    let init = spec.init_containers.as_deref().unwrap_or(&[]);
    for (field, list) in [
        ("containers", &spec.containers[..]),
        ("initContainers", init),
    ] {
        for (i, c) in list.iter().enumerate() {
            let cp = at.field(field).index(i);
            validate_container(c, &cp, p);
            if !names.insert(c.name.clone()) {
                p.error(
                    &cp.field("name"),
                    format!("Duplicate value: container name {:?}", c.name),
                );
            }
        }
    }
}

fn validate_container(c: &Container, at: &FieldPath, p: &mut Problems) {
    if c.name.is_empty() {
        p.error(&at.field("name"), "name: Required value");
    } else if !checks::is_dns1123_label(&c.name) || c.name.chars().any(|ch| ch.is_ascii_uppercase())
    {
        p.error(
            &at.field("name"),
            format!("container name {:?} must be a lower-case DNS label", c.name),
        );
    }
    if c.image.as_deref().unwrap_or("").is_empty() {
        p.error(&at.field("image"), "image: Required value");
    }
    for (i, port) in c.ports.as_deref().unwrap_or(&[]).iter().enumerate() {
        p.check(
            &at.field("ports").index(i).field("containerPort"),
            port_i32(port.container_port),
        );
    }
}

fn validate_secret(s: &Secret, p: &mut Problems) {
    if s.type_.as_deref() != Some("kubernetes.io/tls") {
        return;
    }
    let has = |key: &str| {
        s.data.as_ref().is_some_and(|d| d.contains_key(key))
            || s.string_data.as_ref().is_some_and(|d| d.contains_key(key))
    };
    for key in ["tls.crt", "tls.key"] {
        if !has(key) {
            p.error(
                &FieldPath::root().field("data").key(key),
                format!("a kubernetes.io/tls Secret needs data[{key}] (base64 PEM) or stringData[{key}]"),
            );
        }
    }
}

/// A port number held in an `i32`, reported as written when out of range.
fn port_i32(n: i32) -> Result<(), String> {
    if (1..=65535).contains(&n) {
        Ok(())
    } else {
        Err(format!("port must be between 1-65535 (got {n})"))
    }
}

fn validate_endpoints(e: &Endpoints, p: &mut Problems) {
    for (i, subset) in e.subsets.as_deref().unwrap_or(&[]).iter().enumerate() {
        let sp = FieldPath::root().field("subsets").index(i);
        for field in ["addresses", "notReadyAddresses"] {
            let list = if field == "addresses" {
                subset.addresses.as_deref()
            } else {
                subset.not_ready_addresses.as_deref()
            };
            for (j, a) in list.unwrap_or(&[]).iter().enumerate() {
                p.check(&sp.field(field).index(j).field("ip"), checks::ip(&a.ip));
            }
        }
        for (j, port) in subset.ports.as_deref().unwrap_or(&[]).iter().enumerate() {
            p.check(
                &sp.field("ports").index(j).field("port"),
                port_i32(port.port),
            );
        }
    }
}

fn validate_endpoint_slice(e: &EndpointSlice, p: &mut Problems) {
    let root = FieldPath::root();
    let ty = e.address_type.as_str();
    if !matches!(ty, "IPv4" | "IPv6" | "FQDN") {
        p.error(
            &root.field("addressType"),
            crate::types::unsupported_value(ty, &["IPv4", "IPv6", "FQDN"]),
        );
    }
    for (i, ep) in e.endpoints.iter().enumerate() {
        let ap = root.field("endpoints").index(i).field("addresses");
        if ep.addresses.is_empty() {
            p.error(
                &ap,
                "addresses: Required value: an endpoint needs at least one address",
            );
        }
        for (j, a) in ep.addresses.iter().enumerate() {
            let ok = match ty {
                "IPv4" => a.parse::<std::net::Ipv4Addr>().is_ok(),
                "IPv6" => a.parse::<std::net::Ipv6Addr>().is_ok(),
                "FQDN" => checks::fqdn(a).is_ok(),
                _ => true,
            };
            if !ok {
                let what = if ty == "FQDN" { "domain name" } else { ty };
                p.error(
                    &ap.index(j),
                    format!("{a:?} is not a valid {what} address (addressType is {ty})"),
                );
            }
        }
    }
    for (i, port) in e.ports.as_deref().unwrap_or(&[]).iter().enumerate() {
        if let Some(n) = port.port {
            p.check(&root.field("ports").index(i).field("port"), port_i32(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(kind: &str, v: serde_json::Value) -> Vec<String> {
        let (_, r) =
            crate::object::decode(crate::object::kind_info(kind).unwrap(), &v).expect("decodes");
        let mut p = Problems::new();
        validate_kube_object(&r, &mut p);
        p.into_vec()
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    }

    fn deployment(selector: serde_json::Value, labels: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": selector, "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        })
    }

    #[test]
    fn ports_report_the_written_number() {
        assert!(port_i32(-80).unwrap_err().contains("got -80"));
        assert!(port_i32(80).is_ok() && port_i32(65536).is_err());
    }

    #[test]
    fn selector_expressions_are_evaluated() {
        let ok = deployment(
            json!({"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web"]},
                {"key": "old", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "tier", "operator": "Exists"}]}),
            json!({"tier": "web"}),
        );
        assert!(problems("Deployment", ok).is_empty());
        let bad = deployment(
            json!({"matchExpressions": [{"key": "old", "operator": "DoesNotExist"}]}),
            json!({"old": "yes"}),
        );
        let got = problems("Deployment", bad);
        assert!(
            got[0].contains("matchExpressions[0] (old DoesNotExist [])"),
            "{got:?}"
        );
        let op = deployment(
            json!({"matchExpressions": [{"key": "a", "operator": "Equals"}]}),
            json!({"a": "b"}),
        );
        assert!(problems("Deployment", op)[0].contains("Unsupported value"));
    }

    #[test]
    fn external_name_and_endpoints() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"type": "ExternalName", "externalName": "bad_name"}});
        assert!(problems("Service", svc)[0].contains("spec.externalName"));
        let eps = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "e"}, "addressType": "IPv6",
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": []}],
            "ports": [{"port": 0}]});
        let got = problems("EndpointSlice", eps);
        assert_eq!(got.len(), 3, "{got:?}");
        let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
            "subsets": [{"notReadyAddresses": [{"ip": "x"}], "ports": [{"port": 70000}]}]});
        assert_eq!(problems("Endpoints", ep).len(), 2);
    }
}
