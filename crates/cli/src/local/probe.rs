//! Readiness: HTTP probes and discovery's view of whether every proxy is in sync.

use std::time::Duration;

use super::state::*;

pub fn http_ok(url: &str) -> bool {
    let agent = ureq::Agent::config_builder()
        // Pod IPs are local: never through an HTTP(S)_PROXY from the environment.
        .proxy(None)
        .timeout_global(Some(Duration::from_millis(500)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    matches!(agent.get(url).call(), Ok(r) if r.status().as_u16() == 200)
}

pub fn http_get(url: &str) -> Option<String> {
    let agent = ureq::Agent::config_builder()
        // Pod IPs are local: never through an HTTP(S)_PROXY from the environment.
        .proxy(None)
        .timeout_global(Some(Duration::from_millis(800)))
        .build()
        .new_agent();
    agent.get(url).call().ok()?.body_mut().read_to_string().ok()
}

/// Every pod with a proxy is connected to discovery and has acknowledged the last
/// version of every type it subscribed to.
pub fn proxies_synced(state: &State) -> bool {
    let expected = state
        .pods
        .iter()
        .filter(|p| p.injected || p.gateway)
        .count();
    if expected == 0 {
        return true;
    }
    let url = format!("http://{BRIDGE_IP}:{DISCOVERY_HTTP_PORT}/debug/syncz");
    let Some(body) = http_get(&url) else {
        return false;
    };
    let Ok(serde_json::Value::Array(proxies)) = serde_json::from_str(&body) else {
        return false;
    };
    proxies.len() >= expected
        && proxies.iter().all(|p| {
            p["types"].as_object().is_some_and(|types| {
                types.values().all(|t| {
                    t["subscribed"] != true
                        || (!t["sentVersion"].is_null() && t["sentVersion"] == t["ackedVersion"])
                })
            })
        })
}
