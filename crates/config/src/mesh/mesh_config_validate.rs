//! Validation of MeshConfig with Istio's rules (`ValidateMeshConfig` and the extension
//! provider checks). Paths are relative to the MeshConfig document itself
//! (`defaultConfig.drainDuration`, `extensionProviders[0].zipkin.port`).
//!
//! Where Istio only logs a problem (an invalid extension provider, an unknown ECDH curve)
//! we report an error or a warning respectively: a provider that cannot work is better
//! caught before a Telemetry resource refers to it.

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use super::{
    KubeLabelSelector, MeshConfig, OutboundTrafficPolicyMode, ProviderKind, SelectorOperator,
    BUILTIN_PROVIDERS,
};
use crate::mesh::proxy_config::host_port;
use crate::path::FieldPath;
use crate::types::Duration;
use crate::validation::{checks, Context, Problems, Validate};

const MS: StdDuration = StdDuration::from_millis(1);

/// ECDH curves Envoy accepts.
const ECDH_CURVES: &[&str] = &[
    "P-256",
    "P-384",
    "P-521",
    "X25519",
    "X25519MLKEM768",
    "X25519Kyber768Draft00",
];

/// Retry conditions Envoy understands in `retryOn` (besides HTTP status codes).
const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

fn ms_duration(d: &Option<Duration>, at: &FieldPath, p: &mut Problems) {
    if let Some(d) = d {
        super::super::proxy_config::validate::duration_1ms(d, at, p);
    }
}

/// A Kubernetes LabelSelector: valid keys/values, operators with the right values.
pub(crate) fn kube_selector(s: &KubeLabelSelector, at: &FieldPath, p: &mut Problems) {
    for (k, v) in &s.match_labels {
        let lp = at.field("matchLabels").key(k);
        p.check(&lp, checks::label_key(k));
        p.check(&lp, checks::label_value(v));
    }
    for (i, e) in s.match_expressions.iter().enumerate() {
        let ep = at.field("matchExpressions").index(i);
        match e.key.as_deref() {
            None | Some("") => p.error(&ep.field("key"), "key: Required value"),
            Some(k) => p.check(&ep.field("key"), checks::label_key(k)),
        }
        match e.operator {
            None => p.error(
                &ep.field("operator"),
                "operator: Required value: use In, NotIn, Exists or DoesNotExist",
            ),
            Some(SelectorOperator::In | SelectorOperator::NotIn) => {
                if e.values.is_empty() {
                    p.error(
                        &ep.field("values"),
                        "values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            Some(_) => {
                if !e.values.is_empty() {
                    p.error(
                        &ep.field("values"),
                        "values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
        }
        for (j, v) in e.values.iter().enumerate() {
            p.check(&ep.field("values").index(j), checks::label_value(v));
        }
    }
}

/// A SPIFFE trust domain: DNS labels separated by dots (a trailing dot is allowed).
fn trust_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("empty domain name not allowed".into());
    }
    let d = domain.strip_suffix('.').unwrap_or(domain);
    if d.split('.').all(checks::is_dns1123_label) {
        Ok(())
    } else {
        Err(format!(
            "trust domain name {domain:?} invalid: use DNS labels (letters, digits, '-') separated by dots, e.g. cluster.local"
        ))
    }
}

impl Validate for MeshConfig {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if self.mesh_networks.is_some() {
            p.error(
                &path.field("meshNetworks"),
                "meshNetworks is not a MeshConfig field: it is a separate document (the meshNetworks key of the istio ConfigMap)",
            );
        }
        for (field, v) in [
            ("proxyListenPort", self.proxy_listen_port),
            ("proxyInboundListenPort", self.proxy_inbound_listen_port),
        ] {
            if let Some(n) = v {
                if let Err(e) = checks::port(n.max(0) as u32) {
                    p.error(&path.field(field), format!("invalid {field}: {e}"));
                }
            }
        }
        if let Some(n) = self.proxy_http_port.filter(|n| *n != 0) {
            p.check(&path.field("proxyHttpPort"), checks::port(n.max(0) as u32));
        }
        if let Some(d) = &self.connect_timeout {
            let at = path.field("connectTimeout");
            super::super::proxy_config::validate::duration_1ms(d, &at, p);
            if d.as_std() > StdDuration::from_secs(3600) {
                p.error(
                    &at,
                    format!("invalid connect timeout: time {d} must be >1ms and <1h"),
                );
            }
        }
        if let Some(d) = &self.protocol_detection_timeout {
            if d.as_std().subsec_nanos() % 1_000_000 != 0 {
                p.error(
                    &path.field("protocolDetectionTimeout"),
                    format!("invalid protocol detection timeout {d}: only durations to ms precision are supported (use 0s to disable)"),
                );
            }
        }
        ms_duration(&self.dns_refresh_rate, &path.field("dnsRefreshRate"), p);
        if let Some(k) = &self.tcp_keepalive {
            super::super::proxy_config::validate::validate_keepalive(
                k,
                &path.field("tcpKeepalive"),
                p,
            );
        }
        if let Some(pc) = &self.default_config {
            pc.validate(cx, &path.field("defaultConfig"), p);
        }
        if let Some(td) = &self.trust_domain {
            if let Err(e) = trust_domain(td) {
                p.error(&path.field("trustDomain"), e);
            }
        }
        for (i, td) in self.trust_domain_aliases.iter().enumerate() {
            p.check(&path.field("trustDomainAliases").index(i), trust_domain(td));
        }
        if let Some(ns) = &self.root_namespace {
            p.check(&path.field("rootNamespace"), checks::namespace_name(ns));
        }
        if let Some(sel) = &self.ingress_selector {
            if let Err(e) = checks::label_value(sel) {
                p.error(
                    &path.field("ingressSelector"),
                    format!("ingressSelector is used as the label value istio={sel}: {e}"),
                );
            }
        }
        for (field, list) in [
            ("defaultServiceExportTo", &self.default_service_export_to),
            (
                "defaultVirtualServiceExportTo",
                &self.default_virtual_service_export_to,
            ),
            (
                "defaultDestinationRuleExportTo",
                &self.default_destination_rule_export_to,
            ),
        ] {
            checks::export_to(list, &path.field(field), p);
        }
        self.validate_telemetry(path, p);
        self.validate_security(cx, path, p);
        self.validate_traffic(cx, path, p);
    }
}

impl MeshConfig {
    fn validate_telemetry(&self, path: &FieldPath, p: &mut Problems) {
        if self.access_log_encoding == Some(super::AccessLogEncoding::Json) {
            if let Some(f) = self.access_log_format.as_deref().filter(|f| !f.is_empty()) {
                let ok = serde_json::from_str::<serde_json::Value>(f)
                    .map(|v| v.is_object())
                    .unwrap_or(false);
                if !ok {
                    p.warn(
                        &path.field("accessLogFormat"),
                        "with accessLogEncoding JSON, accessLogFormat must be a JSON object of field names to Envoy command operators; Istio falls back to its default format",
                    );
                }
            }
        }
        let mut names = BTreeSet::new();
        for (i, ep) in self.extension_providers.iter().enumerate() {
            let at = path.field("extensionProviders").index(i);
            match ep.name.as_deref() {
                None | Some("") => p.error(
                    &at.field("name"),
                    "empty extension provider name: every extension provider needs a unique name",
                ),
                Some(n) => {
                    if !names.insert(n) {
                        p.error(
                            &at.field("name"),
                            format!("duplicate extension provider name {n}: names must be unique"),
                        );
                    }
                }
            }
            ep.validate(&at, p);
        }
        if let Some(dp) = &self.default_providers {
            let at = path.field("defaultProviders");
            for (field, list, kind) in [
                ("tracing", &dp.tracing, ProviderKind::Tracing),
                ("metrics", &dp.metrics, ProviderKind::Metrics),
                (
                    "accessLogging",
                    &dp.access_logging,
                    ProviderKind::AccessLogging,
                ),
            ] {
                for (i, name) in list.iter().enumerate() {
                    let np = at.field(field).index(i);
                    match self.extension_provider(name) {
                        None => {
                            let mut known: Vec<String> =
                                BUILTIN_PROVIDERS.iter().map(|s| s.to_string()).collect();
                            for e in &self.extension_providers {
                                if let Some(n) = &e.name {
                                    if !known.contains(n) {
                                        known.push(n.clone());
                                    }
                                }
                            }
                            p.error(
                                &np,
                                format!(
                                    "default {field} provider {name:?} is not defined: use a name from extensionProviders or a built-in provider ({})",
                                    known.join(", ")
                                ),
                            );
                        }
                        Some(ep) => {
                            if !ep.kinds().contains(&kind) && !ep.providers_set().is_empty() {
                                p.warn(
                                    &np,
                                    format!(
                                        "provider {name:?} is a {} provider and cannot be used for {field}",
                                        ep.providers_set().join("/")
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    fn validate_security(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        for (i, c) in self.ca_certificates.iter().enumerate() {
            let at = path.field("caCertificates").index(i);
            match (&c.pem, &c.spiffe_bundle_url) {
                (Some(_), Some(_)) => p.error(
                    &at,
                    "caCertificates entry sets both pem and spiffeBundleUrl: set exactly one",
                ),
                (None, None) => p.error(
                    &at,
                    "caCertificates entry needs pem or spiffeBundleUrl",
                ),
                (Some(pem), None) => {
                    if !pem.contains("-----BEGIN CERTIFICATE-----") {
                        p.error(
                            &at.field("pem"),
                            "pem must hold PEM certificates (-----BEGIN CERTIFICATE----- ...)",
                        );
                    }
                }
                (None, Some(u)) => match url::Url::parse(u) {
                    Ok(parsed) if parsed.scheme() == "https" && parsed.host_str().is_some() => {}
                    _ => p.error(
                        &at.field("spiffeBundleUrl"),
                        format!("spiffeBundleUrl {u:?} must be an https:// URL of a SPIFFE bundle endpoint"),
                    ),
                },
            }
            for (j, td) in c.trust_domains.iter().enumerate() {
                p.check(&at.field("trustDomains").index(j), trust_domain(td));
            }
        }
        if let Some(m) = &self.mesh_mtls {
            if !m.ecdh_curves.is_empty() {
                p.error(
                    &path.field("meshMTLS").field("ecdhCurves"),
                    "mesh TLS does not support ECDH curves configuration: set ecdhCurves in tlsDefaults",
                );
            }
        }
        if let Some(t) = &self.tls_defaults {
            let mut seen = BTreeSet::new();
            for (i, c) in t.ecdh_curves.iter().enumerate() {
                let at = path.field("tlsDefaults").field("ecdhCurves").index(i);
                if !ECDH_CURVES.contains(&c.as_str()) {
                    p.warn(
                        &at,
                        format!(
                            "detected unrecognized ECDH curve {c:?}: known curves are {}",
                            ECDH_CURVES.join(", ")
                        ),
                    );
                } else if !seen.insert(c.as_str()) {
                    p.warn(&at, format!("detected duplicate ECDH curve {c:?}"));
                }
            }
        }
        if let Some(cp) = &self.compliance_policy {
            if !matches!(cp.as_str(), "" | "fips-140-2" | "pqc") {
                p.error(
                    &path.field("compliancePolicy"),
                    crate::types::unsupported_value(cp, &["", "fips-140-2", "pqc"]),
                );
            }
        }
        if let Some(ca) = &self.ca {
            let at = path.field("ca");
            match ca.address.as_deref() {
                None | Some("") => p.error(
                    &at.field("address"),
                    "ca.address: Required value: the external CA's host:port",
                ),
                Some(a) => {
                    if let Err(e) = host_port(a) {
                        p.error(&at.field("address"), format!("invalid CA address: {e}"));
                    }
                }
            }
            ms_duration(&ca.request_timeout, &at.field("requestTimeout"), p);
            ca.tls_settings.validate(cx, &at.field("tlsSettings"), p);
        }
        if self.verify_certificate_at_client.is_some() {
            p.warn(
                &path.field("verifyCertificateAtClient"),
                "verifyCertificateAtClient is deprecated: certificates are always verified unless a DestinationRule sets insecureSkipVerify",
            );
        }
        if !self.certificates.is_empty() {
            p.warn(
                &path.field("certificates"),
                "certificates is deprecated: use cert-manager or another provisioner for DNS certificates",
            );
            for (i, c) in self.certificates.iter().enumerate() {
                for (j, n) in c.dns_names.iter().enumerate() {
                    p.check(
                        &path
                            .field("certificates")
                            .index(i)
                            .field("dnsNames")
                            .index(j),
                        checks::fqdn(n),
                    );
                }
            }
        }
    }

    fn validate_traffic(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if let Some(o) = &self.outbound_traffic_policy {
            if o.tls.is_some() && o.mode != Some(OutboundTrafficPolicyMode::AllowAnyDynamicDns) {
                p.warn(
                    &path.field("outboundTrafficPolicy").field("tls"),
                    "outboundTrafficPolicy.tls only applies to mode ALLOW_ANY_DYNAMIC_DNS",
                );
            }
            o.tls
                .validate(cx, &path.field("outboundTrafficPolicy").field("tls"), p);
        }
        self.locality_lb_setting
            .validate(cx, &path.field("localityLbSetting"), p);
        for (i, s) in self.service_settings.iter().enumerate() {
            for (j, h) in s.hosts.iter().enumerate() {
                let at = path
                    .field("serviceSettings")
                    .index(i)
                    .field("hosts")
                    .index(j);
                if let Err(e) = checks::wildcard_domain(h) {
                    p.error(&at, format!("serviceSettings[{i}], host `{h}`: {e}"));
                }
            }
        }
        for (i, s) in self.service_scope_configs.iter().enumerate() {
            let at = path.field("serviceScopeConfigs").index(i);
            if s.namespace_selector.is_none() && s.services_selector.is_none() {
                p.error(
                    &at,
                    "serviceScopeConfigs entry needs namespaceSelector or servicesSelector",
                );
            }
            if let Some(sel) = &s.namespace_selector {
                kube_selector(sel, &at.field("namespaceSelector"), p);
            }
            if let Some(sel) = &s.services_selector {
                kube_selector(sel, &at.field("servicesSelector"), p);
            }
        }
        for (i, s) in self.discovery_selectors.iter().enumerate() {
            kube_selector(s, &path.field("discoverySelectors").index(i), p);
        }
        for (i, c) in self.config_sources.iter().enumerate() {
            let at = path.field("configSources").index(i);
            if c.address.as_deref().unwrap_or("").is_empty() {
                p.error(
                    &at.field("address"),
                    "address: Required value: e.g. xds://istiod:15010, k8s:// or fs:///etc/istio/config",
                );
            }
            c.tls_settings.validate(cx, &at.field("tlsSettings"), p);
        }
        if let Some(r) = &self.default_http_retry_policy {
            let at = path.field("defaultHttpRetryPolicy");
            if let Some(a) = r.attempts {
                if a < 0 {
                    p.error(
                        &at.field("attempts"),
                        format!("attempts {a} is invalid: attempts cannot be negative (0 disables retries)"),
                    );
                }
            }
            if let Some(d) = &r.per_try_timeout {
                ms_duration(&Some(d.clone()), &at.field("perTryTimeout"), p);
                p.warn(
                    &at.field("perTryTimeout"),
                    "perTryTimeout is not applied by the mesh-wide default retry policy; set it on VirtualService routes",
                );
            }
            ms_duration(&r.backoff, &at.field("backoff"), p);
            if let Some(on) = &r.retry_on {
                for cond in on.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                    let is_code = cond.parse::<u32>().is_ok_and(|c| (100..=599).contains(&c));
                    if !is_code && !RETRY_ON.contains(&cond) {
                        p.error(
                            &at.field("retryOn"),
                            format!(
                                "{cond:?} is not a valid retryOn policy: use HTTP status codes or {}",
                                RETRY_ON.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        if self.thrift_config.is_some() {
            p.warn(
                &path.field("thriftConfig"),
                "thriftConfig was removed from Istio (Thrift is no longer supported) and is ignored",
            );
        }
        if let Some(d) = &self.protocol_detection_timeout {
            if d.as_std() > StdDuration::ZERO && d.as_std() < MS {
                p.error(
                    &path.field("protocolDetectionTimeout"),
                    "protocolDetectionTimeout must be 0s (disabled) or at least 1ms",
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "mesh_config_validate_tests.rs"]
mod tests;
