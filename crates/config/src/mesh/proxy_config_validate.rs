//! Validation of ProxyConfig with Istio's rules (`ValidateMeshConfigProxyConfig`),
//! applied to the fields that are set (unset fields take valid defaults).

use std::time::Duration as StdDuration;

use super::{AuthenticationPolicy, ProxyConfig, ReadinessProbe, Tracing};
use crate::path::FieldPath;
use crate::types::Duration;
use crate::validation::{checks, Context, Problems, Validate};

const MS: StdDuration = StdDuration::from_millis(1);

/// A network address `host:port` as Istio's `ValidateProxyAddress` reads it: the host is
/// a domain name or an IP address (IPv6 in brackets), the port is 1-65535.
pub fn host_port(addr: &str) -> Result<(), String> {
    let hint = "use host:port, e.g. istiod.istio-system.svc:15012 or 10.0.0.1:9125";
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        match rest.split_once("]:") {
            Some((h, p)) => (h, p),
            None => {
                return Err(format!(
                    "unable to split {addr:?} into host and port: {hint}"
                ))
            }
        }
    } else {
        match addr.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!(
                "unable to split {addr:?}: too many colons (write IPv6 addresses as [addr]:port)"
            ))
            }
            Some((h, p)) => (h, p),
            None => return Err(format!("unable to split {addr:?}: missing port; {hint}")),
        }
    };
    let n: u32 = port
        .parse()
        .map_err(|_| format!("port ({port}) in {addr:?} is not a number; {hint}"))?;
    if !(1..=65535).contains(&n) {
        return Err(format!(
            "port number {n} in {addr:?} must be in the range 1..65535"
        ));
    }
    if checks::fqdn(host).is_err() && checks::ip(host).is_err() {
        return Err(format!(
            "{host:?} in {addr:?} is not a valid hostname or an IP address"
        ));
    }
    Ok(())
}

fn ms_precision(d: &Duration) -> Result<(), String> {
    if !d.as_std().subsec_nanos().is_multiple_of(1_000_000) {
        Err(format!(
            "duration {d} is invalid: only durations to ms precision are supported"
        ))
    } else {
        Ok(())
    }
}

/// At least 1ms, with millisecond precision (Istio's `ValidateDuration`).
pub(crate) fn duration_1ms(d: &Duration, at: &FieldPath, p: &mut Problems) {
    if d.as_std() < MS {
        p.error(
            at,
            format!(
                "duration {d} is too short: duration must be greater than 1ms (use at least 1ms)"
            ),
        );
    } else {
        p.check(at, ms_precision(d));
    }
}

fn port_field(n: Option<i32>, at: &FieldPath, p: &mut Problems) {
    if let Some(n) = n {
        p.check(at, checks::port(n.max(0) as u32));
    }
}

fn address(addr: &Option<String>, what: &str, at: &FieldPath, p: &mut Problems) {
    if let Some(a) = addr {
        if let Err(e) = host_port(a) {
            p.error(at, format!("invalid {what} {a:?}: {e}"));
        }
    }
}

impl Validate for ProxyConfig {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        for (field, value, what) in [
            ("configPath", &self.config_path, "config path"),
            ("binaryPath", &self.binary_path, "binary path"),
            ("serviceCluster", &self.service_cluster, "service cluster"),
        ] {
            if value.as_deref() == Some("") {
                p.error(
                    &path.field(field),
                    format!("{what} must be set: it cannot be empty (leave {field} out for Istio's default)"),
                );
            }
        }
        if self.service_cluster.is_some() && self.tracing_service_name.is_some() {
            p.error(
                &path.field("tracingServiceName"),
                "serviceCluster and tracingServiceName are a oneof: set at most one",
            );
        }
        if let Some(d) = &self.drain_duration {
            let at = path.field("drainDuration");
            duration_1ms(d, &at, p);
            if d.as_std() >= MS && d.as_std().subsec_nanos() != 0 {
                p.error(
                    &at,
                    format!("drain time {d} is invalid: drain time only supports durations to seconds precision"),
                );
            }
        }
        if let Some(d) = &self.parent_shutdown_duration {
            let at = path.field("parentShutdownDuration");
            p.warn(
                &at,
                "parentShutdownDuration is deprecated and has no effect",
            );
            duration_1ms(d, &at, p);
        }
        if self.discovery_refresh_delay.is_some() {
            p.warn(
                &path.field("discoveryRefreshDelay"),
                "discoveryRefreshDelay is deprecated and has no effect",
            );
        }
        if let Some(d) = &self.termination_drain_duration {
            p.check(&path.field("terminationDrainDuration"), ms_precision(d));
        }
        match self.discovery_address.as_deref() {
            Some("") => p.error(
                &path.field("discoveryAddress"),
                "discovery address must be set to the proxy discovery service (host:port, e.g. istiod.istio-system.svc:15012)",
            ),
            _ => address(
                &self.discovery_address,
                "discovery address",
                &path.field("discoveryAddress"),
                p,
            ),
        }
        if let Some(z) = &self.zipkin_address {
            let at = path.field("zipkinAddress");
            p.warn(
                &at,
                "zipkinAddress is deprecated: use tracing.zipkin.address",
            );
            if !z.is_empty() {
                address(
                    &Some(z.replace("$(HOST_IP)", "127.0.0.1")),
                    "zipkin address",
                    &at,
                    p,
                );
            }
        }
        if let Some(t) = &self.tracing {
            validate_tracing(t, cx, &path.field("tracing"), p);
        }
        if self.statsd_udp_address.as_deref() != Some("") {
            address(
                &self.statsd_udp_address,
                "statsd udp address",
                &path.field("statsdUdpAddress"),
                p,
            );
        }
        if let Some(a) = &self.envoy_metrics_service_address {
            let at = path.field("envoyMetricsServiceAddress");
            p.warn(
                &at,
                "envoyMetricsServiceAddress is deprecated: use envoyMetricsService.address",
            );
            if !a.is_empty() {
                address(&Some(a.clone()), "envoy metrics service address", &at, p);
            }
        }
        for (field, svc, what) in [
            (
                "envoyMetricsService",
                &self.envoy_metrics_service,
                "envoy metrics service address",
            ),
            (
                "envoyAccessLogService",
                &self.envoy_access_log_service,
                "envoy access log service address",
            ),
        ] {
            if let Some(s) = svc {
                let at = path.field(field);
                if s.address.as_deref().is_some_and(|a| !a.is_empty()) {
                    address(&s.address, what, &at.field("address"), p);
                }
                s.tls_settings.validate(cx, &at.field("tlsSettings"), p);
                if let Some(k) = &s.tcp_keepalive {
                    validate_keepalive(k, &at.field("tcpKeepalive"), p);
                }
            }
        }
        if self.availability_zone.is_some() {
            p.warn(
                &path.field("availabilityZone"),
                "availabilityZone is deprecated and has no effect",
            );
        }
        if self.sds.is_some() {
            p.warn(&path.field("sds"), "sds is deprecated and has no effect");
        }
        port_field(self.proxy_admin_port, &path.field("proxyAdminPort"), p);
        port_field(self.status_port, &path.field("statusPort"), p);
        if self.proxy_admin_port() == self.status_port() {
            let field = if self.status_port.is_some() {
                "statusPort"
            } else {
                "proxyAdminPort"
            };
            p.error(
                &path.field(field),
                format!(
                    "proxyAdminPort and statusPort are both {}: the Envoy admin port and the agent status port must differ",
                    self.status_port()
                ),
            );
        }
        if self.control_plane_auth_policy == Some(AuthenticationPolicy::Inherit) {
            p.error(
                &path.field("controlPlaneAuthPolicy"),
                "unrecognized control plane auth policy \"INHERIT\": use NONE or MUTUAL_TLS",
            );
        }
        if let Some(n) = self.concurrency {
            if n < 0 {
                p.error(
                    &path.field("concurrency"),
                    format!("concurrency {n} is invalid: must be 0 (all cores) or more"),
                );
            }
        }
        if let Some(n) = self.stat_name_length {
            if n < 0 {
                p.error(
                    &path.field("statNameLength"),
                    format!("statNameLength {n} is invalid: must be 0 or more"),
                );
            }
        }
        if let Some(t) = &self.gateway_topology {
            if let Some(n) = t.num_trusted_proxies {
                if n < 0 || n > u32::MAX as i64 {
                    p.error(
                        &path.field("gatewayTopology").field("numTrustedProxies"),
                        format!("numTrustedProxies {n} is invalid: must be 0 or more"),
                    );
                }
            }
        }
        if let Some(r) = &self.readiness_probe {
            validate_probe(r, &path.field("readinessProbe"), p);
        }
        if let Some(m) = &self.proxy_stats_matcher {
            for (i, r) in m.inclusion_regexps.iter().enumerate() {
                p.check(
                    &path
                        .field("proxyStatsMatcher")
                        .field("inclusionRegexps")
                        .index(i),
                    checks::re2_regex(r),
                );
            }
        }
        if let Some(k) = &self.private_key_provider {
            let at = path.field("privateKeyProvider");
            let set = [("cryptomb", &k.cryptomb), ("qat", &k.qat)];
            let n = set.iter().filter(|(_, v)| v.is_some()).count();
            if n != 1 {
                p.error(
                    &at,
                    "invalid private key provider configuration: set exactly one of cryptomb or qat",
                );
            }
            for (name, v) in set {
                if let Some(v) = v {
                    let pd = at.field(name).field("pollDelay");
                    match &v.poll_delay {
                        None => p.error(&pd, "pollDelay is required"),
                        Some(d) if d.as_std().is_zero() => {
                            p.error(&pd, "pollDelay must be non zero")
                        }
                        _ => {}
                    }
                }
            }
        }
        if let Some(d) = &self.file_flush_interval {
            duration_1ms(d, &path.field("fileFlushInterval"), p);
        }
        for k in self.proxy_metadata.keys() {
            if k.is_empty() || k.contains('=') {
                p.error(
                    &path.field("proxyMetadata").key(k),
                    format!("proxyMetadata key {k:?} is not a valid environment variable name"),
                );
            }
        }
    }
}

pub(crate) fn validate_keepalive(k: &super::TcpKeepalive, at: &FieldPath, p: &mut Problems) {
    for (field, d) in [("time", &k.time), ("interval", &k.interval)] {
        if let Some(d) = d {
            duration_1ms(d, &at.field(field), p);
        }
    }
}

fn validate_tracing(t: &Tracing, cx: &Context<'_>, at: &FieldPath, p: &mut Problems) {
    let set = t.tracers_set();
    if set.len() > 1 {
        p.error(
            at,
            format!(
                "tracing sets {} tracers ({}): the tracer is a oneof, set at most one",
                set.len(),
                set.join(", ")
            ),
        );
    }
    if let Some(z) = &t.zipkin {
        let a = z.address.as_deref().unwrap_or("");
        if let Err(e) = host_port(&a.replace("$(HOST_IP)", "127.0.0.1")) {
            p.error(
                &at.field("zipkin").field("address"),
                format!("invalid zipkin config: {e}"),
            );
        }
    }
    if let Some(l) = &t.lightstep {
        let lp = at.field("lightstep");
        p.warn(
            &lp,
            "the lightstep tracer is deprecated: use OpenTelemetry through the Telemetry API",
        );
        if let Err(e) = host_port(l.address.as_deref().unwrap_or("")) {
            p.error(
                &lp.field("address"),
                format!("invalid lightstep config: address is required: {e}"),
            );
        }
        if l.access_token.as_deref().unwrap_or("").is_empty() {
            p.error(
                &lp.field("accessToken"),
                "invalid lightstep config: access token is required",
            );
        }
    }
    if let Some(d) = &t.datadog {
        let a = d.address.as_deref().unwrap_or("");
        if let Err(e) = host_port(&a.replace("$(HOST_IP)", "127.0.0.1")) {
            p.error(
                &at.field("datadog").field("address"),
                format!("invalid datadog config: {e}"),
            );
        }
    }
    if let Some(s) = t.sampling {
        if !(0.0..=100.0).contains(&s) {
            p.error(
                &at.field("sampling"),
                format!("tracing sampling {s} is invalid: must be between 0.0 and 100.0"),
            );
        }
    }
    for (name, tag) in &t.custom_tags {
        let n = [
            tag.literal.is_some(),
            tag.environment.is_some(),
            tag.header.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n != 1 {
            p.error(
                &at.field("customTags").key(name),
                format!("invalid tracing custom tags: tag {name:?} must set exactly one of literal, environment or header"),
            );
        }
    }
    t.tls_settings.validate(cx, &at.field("tlsSettings"), p);
}

fn validate_probe(r: &ReadinessProbe, at: &FieldPath, p: &mut Problems) {
    let n = [
        r.http_get.is_some(),
        r.tcp_socket.is_some(),
        r.exec.is_some(),
        r.grpc.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if n != 1 {
        p.error(
            at,
            "readinessProbe must set exactly one health check method: httpGet, tcpSocket, exec or grpc",
        );
    }
    for (field, v) in [
        ("initialDelaySeconds", r.initial_delay_seconds),
        ("timeoutSeconds", r.timeout_seconds),
        ("periodSeconds", r.period_seconds),
        ("successThreshold", r.success_threshold),
        ("failureThreshold", r.failure_threshold),
    ] {
        if let Some(v) = v {
            if v < 0 {
                p.error(
                    &at.field(field),
                    format!("{field} {v} is invalid: must be 0 or more"),
                );
            }
        }
    }
    if let Some(h) = &r.http_get {
        let hp = at.field("httpGet");
        p.check(&hp.field("port"), checks::port(h.port.unwrap_or(0)));
        if let Some(s) = h.scheme.as_deref() {
            if !matches!(s, "HTTP" | "HTTPS" | "http" | "https") {
                p.error(
                    &hp.field("scheme"),
                    format!("scheme {s:?} is invalid: use HTTP or HTTPS"),
                );
            }
        }
    }
    if let Some(t) = &r.tcp_socket {
        p.check(
            &at.field("tcpSocket").field("port"),
            checks::port(t.port.unwrap_or(0)),
        );
    }
    if let Some(e) = &r.exec {
        if e.command.is_empty() {
            p.error(
                &at.field("exec").field("command"),
                "exec.command: Required value: the command to run",
            );
        }
    }
    if let Some(g) = &r.grpc {
        p.check(
            &at.field("grpc").field("port"),
            checks::port(g.port.unwrap_or(0)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::problems_of;
    use serde_json::json;

    fn problems(v: serde_json::Value) -> Vec<String> {
        let pc: ProxyConfig = serde_json::from_value(v).expect("decodes");
        problems_of(&pc, &Context::for_test("MeshConfig"))
    }

    fn has(v: serde_json::Value, fragment: &str) {
        let got = problems(v);
        assert!(
            got.iter().any(|p| p.contains(fragment)),
            "expected {fragment:?} in {got:?}"
        );
    }

    #[test]
    fn host_port_forms() {
        for ok in [
            "istiod.istio-system.svc:15012",
            "10.0.0.1:9125",
            "[::1]:15012",
            "zipkin:9411",
        ] {
            assert!(host_port(ok).is_ok(), "{ok}");
        }
        for bad in [
            "istiod",
            "istiod:0",
            "istiod:99999",
            "bad_host:80",
            "::1:80",
            "a:b",
        ] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_config_is_valid_and_defaults_apply() {
        assert!(problems(json!({})).is_empty());
        let pc = ProxyConfig::default();
        assert_eq!(pc.drain_duration(), StdDuration::from_secs(45));
        assert_eq!(pc.termination_drain_duration(), StdDuration::from_secs(5));
        assert_eq!(pc.discovery_address(), "istiod.istio-system.svc:15012");
        assert_eq!(pc.proxy_admin_port(), 15000);
        assert_eq!(pc.status_port(), 15020);
        assert_eq!(pc.concurrency(), 2);
        assert_eq!(pc.service_cluster(), Some("istio-proxy"));
        assert_eq!(pc.tracing().sampling(), 1.0);
        assert_eq!(
            pc.tracing().zipkin.unwrap().address.as_deref(),
            Some("zipkin.istio-system:9411")
        );
        assert!(problems_of(&ProxyConfig::istio_defaults(), &Context::for_test("x")).is_empty());
    }

    #[test]
    fn effective_merges_over_defaults() {
        let pc: ProxyConfig = serde_json::from_value(json!({
            "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"},
            "tracing": {"datadog": {"address": "$(HOST_IP):8126"}, "sampling": 10},
            "tracingServiceName": "CANONICAL_NAME_ONLY"
        }))
        .unwrap();
        let e = pc.effective();
        assert_eq!(e.drain_duration(), StdDuration::from_secs(45));
        assert_eq!(e.proxy_metadata["ISTIO_META_DNS_CAPTURE"], "true");
        let t = e.tracing.unwrap();
        assert!(
            t.zipkin.is_none(),
            "a set tracer replaces the default zipkin"
        );
        assert_eq!(t.sampling, Some(10.0));
        assert!(e.service_cluster.is_none());
    }

    #[test]
    fn durations() {
        has(json!({"drainDuration": "0s"}), "greater than 1ms");
        has(json!({"drainDuration": "1.5s"}), "seconds precision");
        has(json!({"fileFlushInterval": "0s"}), "greater than 1ms");
        has(json!({"parentShutdownDuration": "60s"}), "deprecated");
    }

    #[test]
    fn addresses_and_ports() {
        has(
            json!({"discoveryAddress": ""}),
            "discovery address must be set",
        );
        has(
            json!({"discoveryAddress": "istiod"}),
            "invalid discovery address",
        );
        has(
            json!({"statsdUdpAddress": "x:0"}),
            "invalid statsd udp address",
        );
        has(json!({"proxyAdminPort": 0}), "port must be between 1-65535");
        has(json!({"statusPort": 70000}), "port must be between 1-65535");
        has(json!({"statusPort": 15000}), "must differ");
        has(
            json!({"envoyAccessLogService": {"address": "als"}}),
            "invalid envoy access log service address",
        );
        has(json!({"envoyMetricsServiceAddress": "m:1"}), "deprecated");
    }

    #[test]
    fn tracing_rules() {
        has(
            json!({"tracing": {"sampling": 101}}),
            "between 0.0 and 100.0",
        );
        has(
            json!({"tracing": {"sampling": -1}}),
            "between 0.0 and 100.0",
        );
        has(
            json!({"tracing": {"zipkin": {"address": "zipkin"}}}),
            "invalid zipkin config",
        );
        has(
            json!({"tracing": {"zipkin": {"address": "z:1"}, "datadog": {"address": "d:2"}}}),
            "set at most one",
        );
        has(
            json!({"tracing": {"lightstep": {"address": "l:1"}}}),
            "access token is required",
        );
        has(
            json!({"tracing": {"customTags": {"a": {}}}}),
            "exactly one of literal",
        );
        assert!(
            problems(json!({"tracing": {"datadog": {"address": "$(HOST_IP):8126"}}})).is_empty()
        );
    }

    #[test]
    fn other_rules() {
        has(json!({"configPath": ""}), "config path must be set");
        has(json!({"binaryPath": ""}), "binary path must be set");
        has(
            json!({"serviceCluster": "a", "tracingServiceName": "CANONICAL_NAME_ONLY"}),
            "oneof",
        );
        has(
            json!({"controlPlaneAuthPolicy": "INHERIT"}),
            "unrecognized control plane auth policy",
        );
        has(json!({"concurrency": -1}), "concurrency -1");
        has(json!({"statNameLength": -1}), "statNameLength");
        has(
            json!({"gatewayTopology": {"numTrustedProxies": -1}}),
            "must be 0 or more",
        );
        has(json!({"readinessProbe": {}}), "exactly one health check");
        has(
            json!({"readinessProbe": {"tcpSocket": {"port": 0}}}),
            "port must be between",
        );
        has(json!({"readinessProbe": {"exec": {}}}), "exec.command");
        has(
            json!({"readinessProbe": {"periodSeconds": -1, "grpc": {"port": 1}}}),
            "periodSeconds",
        );
        has(
            json!({"readinessProbe": {"httpGet": {"port": 80, "scheme": "FTP"}}}),
            "HTTP or HTTPS",
        );
        has(
            json!({"proxyStatsMatcher": {"inclusionRegexps": ["(x"]}}),
            "RE2",
        );
        has(
            json!({"privateKeyProvider": {}}),
            "exactly one of cryptomb or qat",
        );
        has(
            json!({"privateKeyProvider": {"cryptomb": {}}}),
            "pollDelay is required",
        );
        has(
            json!({"privateKeyProvider": {"qat": {"pollDelay": "0s"}}}),
            "pollDelay must be non zero",
        );
        has(
            json!({"proxyMetadata": {"A=B": "x"}}),
            "environment variable",
        );
        has(json!({"sds": {"enabled": true}}), "deprecated");
        has(
            json!({"terminationDrainDuration": "1.0001s"}),
            "ms precision",
        );
        has(
            json!({"envoyMetricsService": {"tcpKeepalive": {"time": "0s"}}}),
            "greater than 1ms",
        );
    }

    #[test]
    fn snake_case_names_are_accepted() {
        let pc: ProxyConfig = serde_json::from_value(json!({
            "drain_duration": "30s",
            "proxy_metadata": {"A": "b"},
            "hold_application_until_proxy_starts": true
        }))
        .unwrap();
        assert_eq!(pc.drain_duration(), StdDuration::from_secs(30));
        assert!(pc.hold_application_until_proxy_starts());
        let back = serde_json::to_value(&pc).unwrap();
        assert!(back.get("drainDuration").is_some());
    }
}
