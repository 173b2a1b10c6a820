//! The endpoints of each port.

use std::sync::atomic::Ordering;

use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::agent::{merge_expositions, probe, scrape_app};
use super::http::{json as json_resp, post_required, text, with_type, Req, Resp};
use super::AdminState;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

const ADMIN_HELP: &str = "admin commands are:
  /: this help
  /clusters: upstream cluster status (format=json when the proxy provides it)
  /config_dump: current xDS config (include_eds for endpoints)
  /drain_listeners (POST): drain listeners
  /help: this help
  /listeners: listener names and addresses (format=json)
  /logging: query/change logging levels (POST ?level=<level> or ?<logger>=<level>)
  /quitquitquit (POST): exit the proxy
  /ready: LIVE when the proxy is ready, 503 otherwise
  /server_info: version, state, uptime and node
  /stats: stats as name: value (filter=<regex>, format=prometheus|json)
  /stats/prometheus: stats in Prometheus text format
";

pub(super) async fn admin(state: AdminState, req: Req) -> Resp {
    let hooks = state.inner.hooks.clone();
    match req.path.as_str() {
        "/" | "/help" => text(StatusCode::OK, ADMIN_HELP),
        "/config_dump" => {
            let include_eds = req.param("include_eds").is_some();
            json_resp(StatusCode::OK, &state.config_dump(include_eds))
        }
        "/clusters" => match req.param("format") {
            Some("json") => match hooks.clusters_json() {
                Some(v) => json_resp(StatusCode::OK, &v),
                None => text(
                    StatusCode::NOT_IMPLEMENTED,
                    "/clusters?format=json is not available; use /clusters or /config_dump?include_eds\n",
                ),
            },
            _ => text(StatusCode::OK, hooks.clusters_text()),
        },
        "/listeners" => listeners(&state, &req),
        "/stats" => stats(&state, &req),
        "/stats/prometheus" => prometheus_resp(&hooks.stats_prometheus()),
        "/ready" => ready(&state, |_| "LIVE\n".to_owned()),
        "/logging" => logging(&state, &req),
        "/quitquitquit" => {
            if let Some(resp) = post_required(&req) {
                return resp;
            }
            tracing::info!("quit requested on the admin API");
            hooks.quit();
            text(StatusCode::OK, "OK\n")
        }
        "/drain_listeners" => {
            if let Some(resp) = post_required(&req) {
                return resp;
            }
            tracing::info!("listener drain requested on the admin API");
            state.inner.draining.store(true, Ordering::Relaxed);
            hooks.drain_listeners();
            text(StatusCode::OK, "OK\n")
        }
        "/server_info" => json_resp(StatusCode::OK, &server_info(&state)),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("invalid path: {}\n{ADMIN_HELP}", req.path),
        ),
    }
}

pub(super) async fn status(state: AdminState, req: Req) -> Resp {
    match req.path.as_str() {
        "/healthz/ready" => ready(&state, |_| String::new()),
        "/stats/prometheus" => merged_prometheus(&state).await,
        "/quitquitquit" => {
            if let Some(resp) = post_required(&req) {
                return resp;
            }
            tracing::info!("quit requested on the status port");
            state.inner.hooks.quit();
            text(StatusCode::OK, "OK\n")
        }
        path if path.starts_with("/app-health/") => match state.inner.agent.probers.get(path) {
            Some(prober) => probe(prober).await,
            None => text(
                StatusCode::NOT_FOUND,
                format!("no app probe is configured for {path} (see ISTIO_KUBE_APP_PROBERS)\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            format!("invalid path: {}\n", req.path),
        ),
    }
}

pub(super) async fn readiness(state: AdminState, req: Req) -> Resp {
    match req.path.as_str() {
        "/healthz/ready" => ready(&state, |_| String::new()),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("invalid path: {}\n", req.path),
        ),
    }
}

pub(super) async fn prometheus(state: AdminState, req: Req) -> Resp {
    match req.path.as_str() {
        "/stats/prometheus" => prometheus_resp(&state.inner.hooks.stats_prometheus()),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("invalid path: {}\n", req.path),
        ),
    }
}

/// 200 with `ok_body` when ready; 503 with the reason (or DRAINING) otherwise.
fn ready(state: &AdminState, ok_body: impl Fn(&AdminState) -> String) -> Resp {
    if state.draining() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "DRAINING\n");
    }
    match state.inner.hooks.ready() {
        Ok(()) => text(StatusCode::OK, ok_body(state)),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

fn prometheus_resp(exposition: &str) -> Resp {
    with_type(
        StatusCode::OK,
        PROMETHEUS_TEXT,
        merge_expositions(&[exposition]),
    )
}

/// The proxy's metrics, then the app's when the pod asks for a scrape. A failed app
/// scrape is logged and counted, and the proxy's metrics are served anyway.
async fn merged_prometheus(state: &AdminState) -> Resp {
    let own = state.inner.hooks.stats_prometheus();
    let Some(scrape) = &state.inner.agent.app_metrics else {
        return prometheus_resp(&own);
    };
    let app = match scrape_app(scrape).await {
        Ok(app) => app,
        Err(error) => {
            tracing::warn!(%error, "cannot scrape the app's metrics for the merged output");
            state.inner.scrape_failures.fetch_add(1, Ordering::Relaxed);
            String::new()
        }
    };
    let failures = format!(
        "# HELP istio_agent_scrape_failures_total The number of failed app metric scrapes.\n\
         # TYPE istio_agent_scrape_failures_total counter\n\
         istio_agent_scrape_failures_total {}\n",
        state.inner.scrape_failures.load(Ordering::Relaxed)
    );
    with_type(
        StatusCode::OK,
        PROMETHEUS_TEXT,
        merge_expositions(&[&own, &app, &failures]),
    )
}

fn listeners(state: &AdminState, req: &Req) -> Resp {
    let list = state.store().listeners();
    if req.param("format") == Some("json") {
        let statuses: Vec<Value> = list
            .iter()
            .map(|(name, addr)| match addr {
                Some((ip, port)) => json!({"name": name, "local_address": {"socket_address": {"address": ip, "port_value": port}}}),
                None => json!({"name": name}),
            })
            .collect();
        return json_resp(StatusCode::OK, &json!({"listener_statuses": statuses}));
    }
    let mut out = String::new();
    for (name, addr) in list {
        match addr {
            Some((ip, port)) => out.push_str(&format!("{name}::{ip}:{port}\n")),
            None => out.push_str(&format!("{name}::\n")),
        }
    }
    text(StatusCode::OK, out)
}

fn stats(state: &AdminState, req: &Req) -> Resp {
    let hooks = &state.inner.hooks;
    if req.param("format") == Some("prometheus") {
        return prometheus_resp(&hooks.stats_prometheus());
    }
    let filter = match req.param("filter").filter(|f| !f.is_empty()) {
        Some(f) => match regex::Regex::new(f) {
            Ok(re) => Some(re),
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("filter {f:?} is not a valid regex: {e}\n"),
                )
            }
        },
        None => None,
    };
    let lines: Vec<(String, String)> = hooks
        .stats_text()
        .lines()
        .filter_map(|l| l.rsplit_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .filter(|(n, _)| filter.as_ref().is_none_or(|re| re.is_match(n)))
        .collect();
    if req.param("format") == Some("json") {
        let stats: Vec<Value> = lines
            .iter()
            .map(|(n, v)| match v.parse::<f64>() {
                Ok(num) => json!({"name": n, "value": num}),
                Err(_) => json!({"name": n, "value": v}),
            })
            .collect();
        return json_resp(StatusCode::OK, &json!({ "stats": stats }));
    }
    let body: String = lines.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
    text(StatusCode::OK, body)
}

/// Prometheus samples as Envoy's `/stats` lines: `name{labels}: value`.
pub(super) fn prometheus_to_stats_text(exposition: &str) -> String {
    let mut out = String::new();
    for line in exposition.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The value follows the last space outside the label braces (a sample may
        // carry a timestamp after the value; keep only the value).
        let body_end = line.rfind('}').map_or(0, |i| i + 1);
        let (name, rest) = if body_end > 0 {
            line.split_at(body_end)
        } else {
            line.split_once(' ').unwrap_or((line, ""))
        };
        let value = rest.split_whitespace().next().unwrap_or("");
        if !value.is_empty() {
            out.push_str(&format!("{name}: {value}\n"));
        }
    }
    out
}

fn logging(state: &AdminState, req: &Req) -> Resp {
    let Some(control) = &state.inner.log else {
        return text(
            StatusCode::NOT_IMPLEMENTED,
            "this proxy was started without a reloadable log filter\n",
        );
    };
    if req.query.is_empty() {
        return text(StatusCode::OK, active_loggers(&control.current()));
    }
    if req.method != Method::POST {
        if let Some(resp) = post_required(req) {
            return resp;
        }
    }
    for (key, value) in &req.query {
        let result = match key.as_str() {
            "level" => control.set_level(value),
            "paths" => value
                .split(',')
                .filter(|p| !p.is_empty())
                .try_for_each(|p| match p.split_once(':') {
                    Some((target, level)) => control.set_target(target, level),
                    None => Err(format!("{p:?} is not <logger>:<level>")),
                }),
            target => control.set_target(target, value),
        };
        if let Err(error) = result {
            return text(StatusCode::BAD_REQUEST, format!("{error}\n"));
        }
    }
    tracing::info!(filter = %control.current(), "log filter changed on the admin API");
    text(StatusCode::OK, active_loggers(&control.current()))
}

/// Envoy's listing, one `  <logger>: <level>` line per filter directive; the bare
/// level is the `default` logger, and levels use Envoy's names (`warning`).
fn active_loggers(directives: &str) -> String {
    let mut out = String::from("active loggers:\n");
    for directive in directives.split(',').filter(|d| !d.is_empty()) {
        let (logger, level) = directive.split_once('=').unwrap_or(("default", directive));
        let level = if level == "warn" { "warning" } else { level };
        out.push_str(&format!("  {logger}: {level}\n"));
    }
    out
}

fn server_info(state: &AdminState) -> Value {
    let uptime = state.inner.started_at.elapsed().as_secs();
    let node = super::store::render_any(&ironmesh_xds::pack(&state.inner.node))
        .map(|mut v| {
            if let Some(m) = v.as_object_mut() {
                m.shift_remove("@type");
            }
            v
        })
        .unwrap_or(Value::Null);
    let live = if state.draining() {
        "DRAINING"
    } else if state.inner.hooks.ready().is_ok() {
        "LIVE"
    } else {
        "PRE_INITIALIZING"
    };
    json!({
        "version": format!("ironmesh-proxy/{}", state.inner.version),
        "state": live,
        "uptime_current_epoch": format!("{uptime}s"),
        "uptime_all_epochs": format!("{uptime}s"),
        "node": node,
        "command_line_options": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggers_listed_as_envoy_does() {
        assert_eq!(
            active_loggers("warn,ironmesh_xds=debug"),
            "active loggers:\n  default: warning\n  ironmesh_xds: debug\n"
        );
    }

    #[test]
    fn stats_text_from_prometheus() {
        let prom =
            "# HELP x help\n# TYPE x counter\nx_total{a=\"b c\"} 3\ny 1.5 1700000000\n# EOF\n";
        assert_eq!(
            prometheus_to_stats_text(prom),
            "x_total{a=\"b c\"}: 3\ny: 1.5\n"
        );
    }
}
