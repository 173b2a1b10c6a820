//! Validation of AuthorizationPolicy rules, following Istio's webhook and CRD schema.

use std::sync::OnceLock;

use regex::Regex;

use super::{Action, AuthorizationPolicy, Condition, Operation, Rule, Source};
use crate::path::FieldPath;
use crate::validation::{checks, Problems};

/// The attributes a `when` condition may use, as written in messages.
const SUPPORTED_KEYS: &str = "request.headers[<name>], source.ip, remote.ip, source.namespace, \
     source.principal, source.serviceAccount, request.auth.principal, request.auth.audiences, \
     request.auth.presenter, request.auth.claims[<claim>], destination.ip, destination.port, \
     connection.sni, experimental.envoy.filters.<filter>[<key>]";

/// The Source fields of `source`, by wire name.
fn source_fields(s: &Source) -> [(&'static str, &Vec<String>); 12] {
    [
        ("principals", &s.principals),
        ("notPrincipals", &s.not_principals),
        ("requestPrincipals", &s.request_principals),
        ("notRequestPrincipals", &s.not_request_principals),
        ("namespaces", &s.namespaces),
        ("notNamespaces", &s.not_namespaces),
        ("serviceAccounts", &s.service_accounts),
        ("notServiceAccounts", &s.not_service_accounts),
        ("ipBlocks", &s.ip_blocks),
        ("notIpBlocks", &s.not_ip_blocks),
        ("remoteIpBlocks", &s.remote_ip_blocks),
        ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
    ]
}

/// The Operation fields of `op`, by wire name.
fn operation_fields(o: &Operation) -> [(&'static str, &Vec<String>); 8] {
    [
        ("hosts", &o.hosts),
        ("notHosts", &o.not_hosts),
        ("ports", &o.ports),
        ("notPorts", &o.not_ports),
        ("methods", &o.methods),
        ("notMethods", &o.not_methods),
        ("paths", &o.paths),
        ("notPaths", &o.not_paths),
    ]
}

/// Source fields that need the peer identity and so are not supported by CUSTOM.
const CUSTOM_UNSUPPORTED: &[&str] = &[
    "principals",
    "notPrincipals",
    "requestPrincipals",
    "notRequestPrincipals",
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
];

/// Source fields Envoy can match on plain TCP connections.
const TCP_SOURCE_FIELDS: &[&str] = &[
    "principals",
    "notPrincipals",
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
];

pub(super) fn policy(ap: &AuthorizationPolicy, path: &FieldPath, p: &mut Problems) {
    let action = ap.action.unwrap_or(Action::Allow);
    let custom = action == Action::Custom;
    if custom {
        if ap.rules.is_empty() {
            p.error(
                &path.field("rules"),
                "CUSTOM action without `rules` is meaningless as it will never be triggered: add \
                 an empty rule `{}` to trigger it for every request",
            );
        } else if ap
            .provider
            .as_ref()
            .and_then(|x| x.name.as_deref())
            .unwrap_or("")
            .is_empty()
        {
            p.error(
                &path.field("provider").field("name"),
                "`provider.name` must not be empty: a CUSTOM policy names the extension provider \
                 (from meshConfig.extensionProviders) that makes the decision",
            );
        }
    } else if ap.provider.is_some() {
        p.error(
            &path.field("provider"),
            format!(
                "`provider` must not be with non CUSTOM action, found {action}: set action: \
                 CUSTOM or remove provider"
            ),
        );
    }
    if action == Action::Deny && ap.rules.is_empty() {
        p.error(
            &path.field("rules"),
            "DENY action without `rules` is meaningless as it will never be triggered: add an \
             empty rule `{}` to deny every request",
        );
    }
    for (i, rule) in ap.rules.iter().enumerate() {
        validate_rule(rule, action, &path.field("rules").index(i), p);
    }
}

fn validate_rule(rule: &Rule, action: Action, path: &FieldPath, p: &mut Problems) {
    let custom = action == Action::Custom;
    let (mut from_exists, mut to_exists, mut tcp_from, mut tcp_to) = (false, false, false, false);
    for (j, from) in rule.from.iter().enumerate() {
        let at = path.field("from").index(j);
        match &from.source {
            None => p.error(
                &at,
                "`from.source` must not be nil: each from entry needs a source",
            ),
            Some(src) => {
                from_exists = true;
                tcp_from |= source_fields(src)
                    .iter()
                    .any(|(n, v)| !v.is_empty() && TCP_SOURCE_FIELDS.contains(n));
                validate_source(src, custom, &at.field("source"), p);
            }
        }
    }
    for (j, to) in rule.to.iter().enumerate() {
        let at = path.field("to").index(j);
        match &to.operation {
            None => p.error(
                &at,
                "`to.operation` must not be nil: each to entry needs an operation",
            ),
            Some(op) => {
                to_exists = true;
                tcp_to |= !op.ports.is_empty() || !op.not_ports.is_empty();
                validate_operation(op, &at.field("operation"), p);
            }
        }
    }
    for (j, c) in rule.when.iter().enumerate() {
        validate_condition(c, custom, &path.field("when").index(j), p);
    }
    if action == Action::Deny
        && ((from_exists && !to_exists && !tcp_from) || (to_exists && !tcp_to))
    {
        p.warn(
            path,
            "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope \
             due to the use of only HTTP attributes in a DENY rule; it is recommended to \
             explicitly specify the port",
        );
    }
}

fn validate_source(src: &Source, custom: bool, path: &FieldPath, p: &mut Problems) {
    let fields = source_fields(src);
    if fields.iter().all(|(_, v)| v.is_empty()) {
        p.error(
            path,
            "`from.source` must not be empty: set at least one field such as principals, \
             namespaces, serviceAccounts or ipBlocks",
        );
    }
    let identity = !src.principals.is_empty()
        || !src.not_principals.is_empty()
        || !src.namespaces.is_empty()
        || !src.not_namespaces.is_empty();
    if identity && (!src.service_accounts.is_empty() || !src.not_service_accounts.is_empty()) {
        p.error(
            path,
            "Cannot set serviceAccounts with namespaces or principals: use serviceAccounts \
             (\"<namespace>/<name>\") alone, or principals/namespaces without it",
        );
    }
    for (name, values) in fields {
        if values.is_empty() {
            continue;
        }
        let at = path.field(name);
        if custom && CUSTOM_UNSUPPORTED.contains(&name) {
            p.error(
                &at,
                format!(
                    "{name} is currently not supported with CUSTOM action: the external \
                     authorizer sees the request, not the peer identity"
                ),
            );
        }
        for (k, v) in values.iter().enumerate() {
            let item = at.index(k);
            if v.is_empty() {
                p.error(&item, format!("empty value not allowed, found in {name}"));
                continue;
            }
            match name {
                "ipBlocks" | "notIpBlocks" | "remoteIpBlocks" | "notRemoteIpBlocks" => {
                    p.check(&item, checks::ip_or_cidr(v))
                }
                "serviceAccounts" | "notServiceAccounts" => service_account(v, &item, p),
                _ => wildcard_position(v, &item, p),
            }
        }
    }
}

/// `<namespace>/<name>` or `<name>`.
fn service_account(v: &str, path: &FieldPath, p: &mut Problems) {
    let parts: Vec<&str> = v.split('/').collect();
    if parts.len() > 2 || parts.iter().any(|s| s.is_empty()) {
        p.error(
            path,
            format!(
                "invalid service account {v:?}: use \"<namespace>/<name>\", or \"<name>\" for the \
                 policy's namespace"
            ),
        );
    } else if v.contains('*') {
        p.warn(
            path,
            format!("service account {v:?} contains '*': service accounts are matched exactly"),
        );
    }
}

/// Istio matches `*` only as the whole value, a prefix (`*abc`) or a suffix (`abc*`);
/// elsewhere it is a literal character.
fn wildcard_position(v: &str, path: &FieldPath, p: &mut Problems) {
    if v == "*" {
        return;
    }
    let inner = v
        .strip_prefix('*')
        .or_else(|| v.strip_suffix('*'))
        .unwrap_or(v);
    if inner.contains('*') {
        p.warn(
            path,
            format!(
                "{v:?}: '*' is a wildcard only as the whole value, a prefix (\"*abc\") or a \
                 suffix (\"abc*\"); here it is matched literally"
            ),
        );
    }
}

fn validate_operation(op: &Operation, path: &FieldPath, p: &mut Problems) {
    let fields = operation_fields(op);
    if fields.iter().all(|(_, v)| v.is_empty()) {
        p.error(
            path,
            "`to.operation` must not be empty: set at least one field such as paths, methods, \
             hosts or ports",
        );
    }
    for (name, values) in fields {
        let at = path.field(name);
        for (k, v) in values.iter().enumerate() {
            let item = at.index(k);
            if v.is_empty() {
                p.error(&item, format!("empty value not allowed, found in {name}"));
                continue;
            }
            match name {
                "ports" | "notPorts" => {
                    if let Err(e) = port_value(v) {
                        p.error(&item, e);
                    } else if v == "0" {
                        p.warn(&item, "port 0 never matches a connection");
                    }
                }
                "paths" | "notPaths" => path_value(v, &item, p),
                _ => wildcard_position(v, &item, p),
            }
        }
    }
}

/// A port as Istio reads it from a string: a decimal number no larger than 65535.
fn port_value(v: &str) -> Result<(), String> {
    match v.parse::<u64>() {
        Ok(n) if n <= 65535 => Ok(()),
        _ => Err(format!(
            "bad port ({v}): a port must be a number between 1-65535, e.g. \"8080\""
        )),
    }
}

fn path_value(v: &str, path: &FieldPath, p: &mut Problems) {
    static UNSUPPORTED: OnceLock<Regex> = OnceLock::new();
    if v.contains("{*}") || v.contains("{**}") {
        let re = UNSUPPORTED.get_or_init(|| {
            Regex::new(r"/\{\w+=\*\*?\}|\{\w*\}|/\*\*?|\*\*?/").expect("static regex")
        });
        if re.is_match(v) {
            p.error(
                path,
                format!(
                    "invalid or unsupported path template {v:?}: a template may use only {{*}} \
                     (one segment) and {{**}} (any segments), not named variables, {{}}, or bare \
                     * / ** segments"
                ),
            );
        }
        return;
    }
    if !v.starts_with('/') && !v.starts_with('*') {
        p.warn(
            path,
            format!(
                "path {v:?} does not start with '/': request paths always do, so it never \
                 matches (gRPC paths look like /package.Service/Method)"
            ),
        );
    }
    wildcard_position(v, path, p);
}

fn validate_condition(c: &Condition, custom: bool, path: &FieldPath, p: &mut Problems) {
    let key = match c.key.as_deref() {
        None => {
            p.error(
                &path.field("key"),
                format!("Required value: the attribute to match, one of {SUPPORTED_KEYS}"),
            );
            return;
        }
        Some("") => {
            p.error(
                &path.field("key"),
                format!("`key` must not be empty: use one of {SUPPORTED_KEYS}"),
            );
            return;
        }
        Some(k) => k,
    };
    if custom
        && (key == "source.namespace"
            || key == "source.serviceAccount"
            || key == "source.principal"
            || key.starts_with("request.auth."))
    {
        p.error(
            &path.field("key"),
            format!("{key} is currently not supported with CUSTOM action"),
        );
    }
    if c.values.is_empty() && c.not_values.is_empty() {
        p.error(
            path,
            format!("at least one of `values` or `notValues` must be set for key {key}"),
        );
        return;
    }
    for (field, values, what) in [
        ("values", &c.values, "value"),
        ("notValues", &c.not_values, "notValue"),
    ] {
        if values.is_empty() {
            continue;
        }
        if let Err(e) = attribute(key, values) {
            p.error(
                &path.field(field),
                format!("invalid `{what}` for `key` {key}: {e}"),
            );
        }
    }
}

/// Checks one condition's values against its attribute.
fn attribute(key: &str, values: &[String]) -> Result<(), String> {
    if values.iter().any(|v| v.is_empty()) {
        return Err(format!("empty value not allowed, found in {key}"));
    }
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => {
            for v in values {
                checks::ip_or_cidr(v)?;
            }
            Ok(())
        }
        "destination.port" => values.iter().try_for_each(|v| port_value(v)),
        "source.namespace"
        | "source.principal"
        | "source.serviceAccount"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "connection.sni" => Ok(()),
        "destination.namespace" => Err(format!(
            "attribute {key} is replaced by the metadata.namespace: put the policy in that namespace"
        )),
        "destination.name" | "destination.user" => Err(format!(
            "deprecated attribute {key}: only supported in v1alpha1; use the selector instead"
        )),
        k if k.starts_with("destination.labels") => Err(format!(
            "attribute {k} is replaced by the workload selector: use spec.selector.matchLabels"
        )),
        k if k.starts_with("request.headers")
            || k.starts_with("request.auth.claims")
            || k.starts_with("experimental.envoy.filters.") =>
        {
            map_key(k)
        }
        k => Err(format!("unknown attribute: {k}; supported are {SUPPORTED_KEYS}")),
    }
}

/// `a[b]`: a non-empty name in brackets at the end.
fn map_key(key: &str) -> Result<(), String> {
    match key.find('[') {
        Some(open) if key.ends_with(']') && open > 0 && open + 2 < key.len() => Ok(()),
        _ => Err(format!(
            "bad key ({key}): should have format a[b], e.g. request.headers[x-token]"
        )),
    }
}

#[cfg(test)]
#[path = "authorization_policy_tests.rs"]
mod tests;
