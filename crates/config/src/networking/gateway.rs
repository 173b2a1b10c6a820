//! Gateway (networking.istio.io): servers exposed by a gateway workload. The server
//! TLS settings are reused by Sidecar ingress listeners.

mod server_tls;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use server_tls::{ServerTlsMode, ServerTlsSettings, TlsCertificate, TlsProtocol};

use super::net_checks::{self, Protocol, PROTOCOL_NAMES};
use super::workload_entry::UNIX_PREFIX;
use crate::path::FieldPath;
use crate::validation::{checks, Context, Problems, Validate};

/// `Gateway`: a load balancer at the mesh edge, selected by workload labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
    /// Labels of the gateway pods this configuration applies to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
}

/// `Server`: one listener (port, hosts, TLS) of a gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// An IP or `unix://` socket to bind to instead of every address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// `namespace/host` entries (a bare host means `*/host`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    /// Not implemented by Istio; kept so existing manifests load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `Port` of a gateway server (Sidecar listeners use the same shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Deprecated and ignored by gateways and sidecars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

impl Validate for Gateway {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if !cx.name.is_empty() && !checks::is_dns1123_label(cx.name) {
            p.error(
                &FieldPath::root().field("metadata").field("name"),
                format!("invalid gateway name: {:?}: a Gateway name must be a DNS label (no dots), e.g. public-gateway", cx.name),
            );
        }
        let sp = path.field("servers");
        if self.servers.is_empty() {
            p.error(
                &sp,
                "gateway must have at least one server: add a server with a port and hosts",
            );
        }
        let mut port_names = BTreeSet::new();
        for (i, s) in self.servers.iter().enumerate() {
            let at = sp.index(i);
            s.validate(cx, &at, p);
            if let Some(port) = &s.port {
                let name = port.name.as_deref().unwrap_or("");
                if !name.is_empty() && !port_names.insert(name) {
                    p.error(
                        &at.field("port").field("name"),
                        format!("port names in servers must be unique: duplicate name {name}"),
                    );
                }
                let proto = Protocol::parse(port.protocol.as_deref().unwrap_or(""));
                let redirect = s.tls.as_ref().and_then(|t| t.https_redirect) == Some(true);
                if redirect && !proto.is_some_and(Protocol::is_http) {
                    p.warn(
                        &at.field("tls").field("httpsRedirect"),
                        "tls.httpsRedirect should only be used with http servers: it has no effect here",
                    );
                }
            }
        }
        let sel = path.field("selector");
        checks::selector_labels(&self.selector, &sel, p);
    }
}

impl Validate for Server {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let hp = path.field("hosts");
        if self.hosts.is_empty() {
            p.error(
                &hp,
                "server config must contain at least one host: Required value; e.g. \"*/example.com\" or \"*\"",
            );
        }
        for (i, h) in self.hosts.iter().enumerate() {
            p.check(&hp.index(i), net_checks::ns_slash_host(h, true));
        }
        let bind = self.bind.as_deref().unwrap_or("");
        let port_ok = self.validate_port(bind, &path.field("port"), p);
        let bp = path.field("bind");
        if let Some(sock) = bind.strip_prefix(UNIX_PREFIX) {
            p.check(&bp, net_checks::unix_address(sock));
            if self
                .port
                .as_ref()
                .and_then(|x| x.number)
                .is_some_and(|n| n != 0)
            {
                p.error(
                    &path.field("port").field("number"),
                    "port number must be 0 for unix domain socket: a server bound to unix:// has no port",
                );
            }
        } else if !bind.is_empty() {
            p.check(&bp, net_checks::ip(bind));
        }
        self.tls.validate(cx, &path.field("tls"), p);

        if !port_ok {
            return;
        }
        let proto = self
            .port
            .as_ref()
            .and_then(|x| Protocol::parse(x.protocol.as_deref().unwrap_or("")));
        let Some(proto) = proto else { return };
        let tp = path.field("tls");
        match &self.tls {
            None if proto.is_tls() => p.error(
                &tp,
                "server must have TLS settings for HTTPS/TLS protocols: add tls with mode SIMPLE, MUTUAL or PASSTHROUGH",
            ),
            Some(tls) if !proto.is_tls() => {
                if proto.is_http() {
                    let passthrough = matches!(
                        tls.mode.unwrap_or(ServerTlsMode::Passthrough),
                        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
                    );
                    if !passthrough || tls.has_file_certificates() {
                        p.error(
                            &tp,
                            "server cannot have TLS settings for plain text HTTP ports: only tls.httpsRedirect is allowed here (use protocol HTTPS to terminate TLS)",
                        );
                    }
                } else {
                    p.error(
                        &tp,
                        "server cannot have TLS settings for non HTTPS/TLS ports: use protocol HTTPS or TLS",
                    );
                }
            }
            _ => {}
        }
    }
}

impl Server {
    /// Checks the port; returns whether it is usable for the TLS checks that follow.
    fn validate_port(&self, bind: &str, path: &FieldPath, p: &mut Problems) -> bool {
        let Some(port) = &self.port else {
            p.error(
                path,
                "port is required: Required value; set number, protocol and name",
            );
            return false;
        };
        let mut ok = true;
        let proto = port.protocol.as_deref().unwrap_or("");
        if Protocol::parse(proto).is_none() {
            ok = false;
            p.error(
                &path.field("protocol"),
                format!("invalid protocol {proto:?}, supported protocols are {PROTOCOL_NAMES}"),
            );
        }
        let number = port.number.unwrap_or(0);
        if number > 0 || !bind.starts_with(UNIX_PREFIX) {
            if let Err(e) = checks::port(number) {
                ok = false;
                p.error(&path.field("number"), e);
            }
        }
        if port.target_port.is_some_and(|t| t > 0) {
            ok = false;
            p.error(
                &path.field("targetPort"),
                "targetPort has no impact on Gateways: remove it (the gateway listens on number)",
            );
        }
        if port.name.as_deref().is_none_or(str::is_empty) {
            ok = false;
            p.error(
                &path.field("name"),
                "port name must be set: name the port, e.g. https-443",
            );
        }
        ok
    }
}
