//! Host names as Istio compares them: exact names, `*.suffix` wildcards and `*`, short
//! names qualified with a namespace, and `namespace/host` selectors.

/// Whether `pattern` (`*`, `*.example.com` or a name) covers `host` (which may itself be
/// a wildcard: `*.example.com` covers `*.api.example.com`).
pub fn covers(pattern: &str, host: &str) -> bool {
    if pattern == "*" || pattern == host {
        return true;
    }
    match pattern.strip_prefix('*') {
        // `suffix` keeps its leading dot, so `*.foo.com` never covers `xfoo.com`.
        Some(suffix) => {
            let h = host.strip_prefix('*').unwrap_or(host);
            h.ends_with(suffix) && h.len() > suffix.len()
        }
        None => false,
    }
}

/// The more specific of two hosts when one covers the other (the hosts a gateway server
/// and a VirtualService have in common).
pub fn intersect(a: &str, b: &str) -> Option<String> {
    if covers(a, b) {
        Some(b.to_string())
    } else if covers(b, a) {
        Some(a.to_string())
    } else {
        None
    }
}

/// How specific a host pattern is: exact names rank above any wildcard, longer wildcards
/// above shorter ones.
pub fn specificity(pattern: &str) -> (bool, usize) {
    (!pattern.starts_with('*'), pattern.len())
}

/// Qualifies a short host (`reviews`) with the namespace of the config that names it:
/// `reviews.default.svc.cluster.local`. Names with a dot, and wildcards, stay as written.
pub fn qualify(host: &str, namespace: &str, domain: &str) -> String {
    if host.contains('.') || host.starts_with('*') || host.is_empty() {
        host.to_string()
    } else {
        format!("{host}.{namespace}.svc.{domain}")
    }
}

/// A `namespace/host` selector (Sidecar egress hosts, Gateway server hosts). A bare host
/// means `*/host`. `.` is resolved to `own_namespace`; `~` matches no namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsHost {
    pub namespace: String,
    pub host: String,
}

impl NsHost {
    pub fn parse(text: &str, own_namespace: &str) -> NsHost {
        let (ns, host) = text.split_once('/').unwrap_or(("*", text));
        let namespace = if ns == "." {
            own_namespace.to_string()
        } else {
            ns.to_string()
        };
        NsHost {
            namespace,
            host: host.to_string(),
        }
    }

    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespace == "*" || (self.namespace != "~" && self.namespace == namespace)
    }

    /// Whether a config (or service) named `host` in `namespace` is selected.
    pub fn selects(&self, namespace: &str, host: &str) -> bool {
        self.allows_namespace(namespace) && intersect(&self.host, host).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_istio() {
        assert!(covers("*", "reviews.default.svc.cluster.local"));
        assert!(covers("*.example.com", "a.example.com"));
        assert!(covers("*.example.com", "*.api.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "xexample.com"));
        assert!(!covers("a.example.com", "*.example.com"));
        assert_eq!(
            intersect("*", "*.example.com").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(
            intersect("a.example.com", "*.example.com").as_deref(),
            Some("a.example.com")
        );
        assert_eq!(intersect("a.example.com", "b.example.com"), None);
        assert!(specificity("a.b") > specificity("*.b"));
        assert!(specificity("*.a.b") > specificity("*.b"));
    }

    #[test]
    fn short_names_take_the_config_namespace() {
        assert_eq!(
            qualify("reviews", "prod", "cluster.local"),
            "reviews.prod.svc.cluster.local"
        );
        assert_eq!(
            qualify("reviews.prod", "x", "cluster.local"),
            "reviews.prod"
        );
        assert_eq!(qualify("*", "x", "cluster.local"), "*");
    }

    #[test]
    fn namespace_host_selectors() {
        let own = NsHost::parse("./*", "prod");
        assert!(own.selects("prod", "a.prod.svc.cluster.local"));
        assert!(!own.selects("dev", "a.dev.svc.cluster.local"));
        let none = NsHost::parse("~/*", "prod");
        assert!(!none.selects("prod", "a"));
        let bare = NsHost::parse("*.example.com", "prod");
        assert!(bare.selects("anything", "www.example.com"));
        let sys = NsHost::parse("istio-system/*", "prod");
        assert!(sys.selects("istio-system", "istiod.istio-system.svc.cluster.local"));
    }
}
