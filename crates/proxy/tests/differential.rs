//! Differential test: the same requests through real Envoy 1.40 and through
//! ironmesh-proxy, both as the ingress gateway (router node) of the same
//! `ironmesh-discovery`, which generates the config from the Istio YAML in
//! `differential/scenario.yaml`. Answers are compared on status, which backend
//! answered (weighted routes: the share per backend within a binomial tolerance), and
//! what the backend saw (path, Host, headers) and the client got back (headers, body).
//!
//! Headers that legitimately differ between two proxies — ids, timings, dates,
//! `server` — are compared by presence only or ignored (see [`normalise`]).

#[path = "differential/cases.rs"]
mod cases;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use cases::{Case, Fact};
use ironmesh_testkit::discovery::{fill_template, Discovery, Workspace};
use ironmesh_testkit::envoy::{AdsApi, Envoy};
use ironmesh_testkit::http::{self, Request, Response};
use ironmesh_testkit::mirror::{Echo, Seen};
use ironmesh_testkit::net::{bind_same_port, free_ports, loopback, wait_until};
use ironmesh_testkit::node::{self, Node};
use ironmesh_testkit::proxy::{Proxy, ProxyOptions};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers whose value differs per request or per proxy build: compared by presence.
const VOLATILE: &[&str] = &[
    "x-request-id",
    "x-envoy-upstream-service-time",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "traceparent",
    "tracestate",
];
/// Headers left out: framing and hop-by-hop (an echo body's length depends on the
/// headers echoed), dates, the server's name, and Istio's metadata exchange headers
/// (Istio's Envoy build sends them; the PyPI Envoy has no metadata-exchange filter, so
/// only ironmesh-proxy does).
const IGNORED: &[&str] = &[
    "date",
    "server",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "x-envoy-peer-metadata",
    "x-envoy-peer-metadata-id",
];

/// The backends, discovery and the gateway port of one run of the matrix.
struct Scenario {
    _ws: Workspace,
    discovery: Discovery,
    gateway: SocketAddr,
    _backends: Vec<Echo>,
}

impl Scenario {
    fn start() -> Scenario {
        let ips: Vec<IpAddr> = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        let names = ["v1", "v2", "other"];
        let mut next = 0;
        let backends = bind_same_port(&ips, |addr| {
            let name = names[ips.iter().position(|ip| *ip == addr.ip()).unwrap_or(next)];
            next += 1;
            Echo::start(addr, name)
        });
        let backend_port = backends[0].addr().port();
        let gateway_port = free_ports(1)[0];
        let ws = Workspace::new();
        ws.write(
            "scenario.yaml",
            &fill_template(
                include_str!("differential/scenario.yaml"),
                &[
                    ("BACKEND_PORT", backend_port.to_string()),
                    ("GATEWAY_PORT", gateway_port.to_string()),
                ],
            ),
        );
        let discovery = ws.start_discovery();
        discovery.assert_config_accepted();
        Scenario {
            _ws: ws,
            discovery,
            gateway: loopback(gateway_port),
            _backends: backends,
        }
    }

    fn node() -> Node {
        node::router("127.0.0.30", "istio-ingressgateway-diff-0")
    }

    /// Waits until `node` is in sync with discovery and the gateway routes a request.
    fn wait_serving(&self, node: &Node, logs: impl Fn() -> String) {
        let synced = wait_until(Duration::from_secs(30), || {
            self.discovery.in_sync(&node.id())
        });
        assert!(
            synced,
            "{} did not ACK every type within 30s\nsyncz: {:?}\nproxy log:\n{}",
            node.id(),
            self.discovery.syncz_of(&node.id()),
            logs()
        );
        let mut last = String::new();
        let serving = wait_until(Duration::from_secs(20), || {
            match http::get(
                self.gateway,
                "match.example.com",
                "/exact",
                &[],
                REQUEST_TIMEOUT,
            ) {
                Ok(r) if r.status == 200 && r.header("x-echo-backend") == Some("v1") => true,
                Ok(r) => {
                    last = format!("{} {}", r.status, r.body);
                    false
                }
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        assert!(
            serving,
            "gateway {} does not route match.example.com/exact to v1; last: {last}\nproxy log:\n{}",
            self.gateway,
            logs()
        );
    }
}

/// What one proxy did with one case: every answer, normalised.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    /// Distinct normalised answers (backend left out) and how often each came.
    answers: BTreeMap<String, usize>,
    /// Answers per backend (`-` for the proxy's own answers).
    backends: BTreeMap<String, usize>,
    /// One raw answer, to check the case's facts on.
    sample: Response,
    /// Requests sent.
    total: usize,
}

fn run_case(gateway: SocketAddr, case: &Case) -> Observed {
    let mut answers = BTreeMap::new();
    let mut backends = BTreeMap::new();
    let mut sample = None;
    for i in 0..case.repeat {
        let r = http::send(
            gateway,
            &Request {
                method: case.method,
                host: case.host,
                path: case.path,
                headers: case.headers,
            },
            REQUEST_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{}: request {i}: {e}", case.name));
        let backend = Seen::parse(&r.body).map_or("-".to_string(), |s| s.backend);
        *backends.entry(backend).or_insert(0) += 1;
        *answers.entry(normalise(&r)).or_insert(0) += 1;
        sample.get_or_insert(r);
    }
    Observed {
        answers,
        backends,
        sample: sample.expect("repeat >= 1"),
        total: case.repeat,
    }
}

/// One answer as comparable text: status, the response headers and (for the proxy's
/// own answers) the body, or what the backend saw — with volatile values masked and
/// the backend's name left out (it is compared through the distribution).
fn normalise(r: &Response) -> String {
    let mut out = format!("status {}\n", r.status);
    let mut resp: Vec<String> = r
        .headers
        .iter()
        .filter(|(k, _)| !IGNORED.contains(&k.as_str()) && k != "x-echo-backend")
        .map(|(k, v)| mask(k, v))
        .collect();
    resp.sort();
    for h in resp {
        out.push_str(&format!("response {h}\n"));
    }
    match Seen::parse(&r.body) {
        Some(seen) => {
            out.push_str(&format!("upstream {} {}\n", seen.method, seen.path));
            let mut req: Vec<String> = seen
                .headers
                .iter()
                .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
                .map(|(k, v)| mask(k, v))
                .collect();
            req.sort();
            for h in req {
                out.push_str(&format!("upstream {h}\n"));
            }
        }
        None => out.push_str(&format!("body {:?}\n", r.body)),
    }
    out
}

fn mask(k: &str, v: &str) -> String {
    if VOLATILE.contains(&k) {
        format!("{k}: <present>")
    } else {
        format!("{k}: {v}")
    }
}

/// The facts of `case` that `obs` breaks.
fn check_facts(case: &Case, obs: &Observed) -> Vec<String> {
    let mut broken = Vec::new();
    let r = &obs.sample;
    let seen = Seen::parse(&r.body);
    for fact in case.facts {
        let ok = match *fact {
            Fact::Status(s) => r.status == s,
            Fact::Backend(b) => obs.backends.get(b) == Some(&obs.total),
            Fact::NotEcho => obs.backends.get("-") == Some(&obs.total),
            Fact::Path(p) => seen.as_ref().is_some_and(|s| s.path == p),
            Fact::Host(h) => seen
                .as_ref()
                .is_some_and(|s| s.header_values("host") == [h]),
            Fact::ReqHeader(name, values) => seen
                .as_ref()
                .is_some_and(|s| s.header_values(name) == values),
            Fact::RespHeader(name, value) => r.header(name) == value,
            Fact::Body(b) => r.body == b,
            Fact::Split(weights) => split_within_tolerance(&obs.backends, weights).is_ok(),
            Fact::Varies => true,
            Fact::SomeAttempt(n) => obs
                .answers
                .keys()
                .any(|a| a.contains(&format!("upstream x-envoy-attempt-count: {n}\n"))),
        };
        if !ok {
            broken.push(format!(
                "{}: expected {fact:?}; got {} backends {:?}\n{}",
                case.name,
                r.status,
                obs.backends,
                normalise(r)
            ));
        }
    }
    // Every repetition of a case must answer the same, unless it says otherwise.
    let varies = case.facts.iter().any(|f| matches!(f, Fact::Varies));
    if obs.answers.len() > 1 && !varies {
        broken.push(format!(
            "{}: answers differ between repetitions: {:#?}",
            case.name, obs.answers
        ));
    }
    broken
}

fn split_within_tolerance(
    backends: &BTreeMap<String, usize>,
    weights: &[(&str, f64)],
) -> Result<(), String> {
    let total: usize = backends.values().sum();
    for (name, want) in weights {
        let got = backends.get(*name).copied().unwrap_or(0) as f64 / total as f64;
        if (got - want).abs() > cases::SPLIT_TOLERANCE {
            return Err(format!("{name}: share {got:.3}, configured {want}"));
        }
    }
    let named: usize = weights
        .iter()
        .map(|(n, _)| backends.get(*n).copied().unwrap_or(0))
        .sum();
    if named != total {
        return Err(format!("answers from other backends: {backends:?}"));
    }
    Ok(())
}

/// Runs every case; with `IRONMESH_DIFF_SHOW=1` prints each normalised answer.
fn run_matrix(gateway: SocketAddr) -> Vec<(Case, Observed)> {
    let show = std::env::var_os("IRONMESH_DIFF_SHOW").is_some();
    cases::all()
        .into_iter()
        .map(|c| {
            let o = run_case(gateway, &c);
            if show {
                eprintln!("=== {} {:?}\n{}", c.name, o.backends, normalise(&o.sample));
            }
            (c, o)
        })
        .collect()
}

fn run_through_envoy(s: &Scenario) -> Vec<(Case, Observed)> {
    let node = Scenario::node();
    let envoy = Envoy::start(&node.envoy_config(s.discovery.xds.port(), AdsApi::Delta));
    s.wait_serving(&node, || envoy.logs());
    run_matrix(s.gateway)
    // Dropping `envoy` here frees the gateway port for the next proxy.
}

/// Envoy answers the matrix as Istio's semantics say: proves the scenario, the
/// harness and the expectations that ironmesh-proxy is then held to.
#[test]
fn envoy_answers_the_matrix_as_istio_specifies() {
    let s = Scenario::start();
    let results = run_through_envoy(&s);
    let broken: Vec<String> = results
        .iter()
        .flat_map(|(c, o)| check_facts(c, o))
        .collect();
    assert!(
        broken.is_empty(),
        "Envoy broke {} expectation(s):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

/// The comparison: Envoy first, then ironmesh-proxy with the same identity and the
/// same discovery. Fails (never skips) when the proxy binary cannot start.
#[test]
fn ironmesh_proxy_answers_the_matrix_like_envoy() {
    let s = Scenario::start();
    let envoy = run_through_envoy(&s);
    let node = Scenario::node();
    // `$IRONMESH_PROXY` compares another build (e.g. a release binary) instead.
    let bin = std::env::var_os("IRONMESH_PROXY").map_or_else(
        || env!("CARGO_BIN_EXE_ironmesh-proxy").into(),
        PathBuf::from,
    );
    let opts = ProxyOptions::new(&bin, node.clone(), s.discovery.xds);
    let proxy = Proxy::start(&opts).unwrap_or_else(|e| {
        panic!("ironmesh-proxy could not start as the gateway, so nothing was compared:\n{e}")
    });
    s.wait_serving(&node, || proxy.logs());
    let ours = run_matrix(s.gateway);

    let mut problems = Vec::new();
    for ((case, theirs), (_, mine)) in envoy.iter().zip(&ours) {
        for b in check_facts(case, mine) {
            problems.push(format!("ironmesh-proxy {b}"));
        }
        let split = case.facts.iter().any(|f| matches!(f, Fact::Split(_)));
        if !split && theirs.backends != mine.backends {
            problems.push(format!(
                "{}: backends differ: envoy {:?}, ironmesh-proxy {:?}",
                case.name, theirs.backends, mine.backends
            ));
        }
        // Where answers vary, how many attempts each took depends on where each
        // proxy's round robin stood: the shapes are compared without the count (the
        // case's facts check that retries happened).
        let varies = case.facts.iter().any(|f| matches!(f, Fact::Varies));
        let shapes = |o: &Observed| -> std::collections::BTreeSet<String> {
            o.answers
                .keys()
                .map(|a| {
                    if varies {
                        without_attempt_count(a)
                    } else {
                        a.clone()
                    }
                })
                .collect()
        };
        let (theirs_set, mine_set) = (shapes(theirs), shapes(mine));
        let theirs_shapes: Vec<&String> = theirs_set.iter().collect();
        let mine_shapes: Vec<&String> = mine_set.iter().collect();
        if theirs_shapes != mine_shapes {
            problems.push(format!(
                "{}: answers differ (- Envoy only, + ironmesh-proxy only)\n{}",
                case.name,
                line_diff(&theirs_shapes, &mine_shapes)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "ironmesh-proxy differs from Envoy in {} place(s):\n{}\n\nproxy log (tail):\n{}",
        problems.len(),
        problems.join("\n"),
        tail(&proxy.logs(), 40)
    );
}

/// A normalised answer with the upstream's `x-envoy-attempt-count` value masked.
fn without_attempt_count(answer: &str) -> String {
    answer
        .lines()
        .map(
            |l| match l.strip_prefix("upstream x-envoy-attempt-count: ") {
                Some(_) => "upstream x-envoy-attempt-count: <n>\n".to_string(),
                None => format!("{l}\n"),
            },
        )
        .collect()
}

/// The lines of the normalised answers that only one side has.
fn line_diff(theirs: &[&String], mine: &[&String]) -> String {
    let lines = |answers: &[&String]| -> std::collections::BTreeSet<String> {
        answers
            .iter()
            .flat_map(|a| a.lines().map(str::to_string))
            .collect()
    };
    let (t, m) = (lines(theirs), lines(mine));
    let mut out: Vec<String> = t.difference(&m).map(|l| format!("  - {l}")).collect();
    out.extend(m.difference(&t).map(|l| format!("  + {l}")));
    if out.is_empty() {
        out.push(format!(
            "  (same lines, different grouping: {} vs {} distinct answers)",
            theirs.len(),
            mine.len()
        ));
    }
    out.join("\n")
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The comparison's helpers can tell answers apart: a masked id is equal, a changed
/// path or header is not, and a skewed split is caught.
#[test]
fn normalisation_masks_only_volatile_values() {
    let echo = |path: &str, id: &str| Response {
        status: 200,
        headers: vec![
            ("date".into(), id.into()),
            ("x-envoy-upstream-service-time".into(), id.into()),
        ],
        body: format!(
            r#"{{"backend":"v1","method":"GET","path":"{path}","headers":[["x-request-id","{id}"],["x-forwarded-proto","http"]]}}"#
        ),
    };
    assert_eq!(normalise(&echo("/a", "1")), normalise(&echo("/a", "2")));
    assert_ne!(normalise(&echo("/a", "1")), normalise(&echo("/b", "1")));
    let mut other = echo("/a", "1");
    other.headers.push(("x-extra".into(), "1".into()));
    assert_ne!(normalise(&echo("/a", "1")), normalise(&other));
    let counts =
        |a: usize, b: usize| BTreeMap::from([("v1".to_string(), a), ("v2".to_string(), b)]);
    let half = [("v1", 0.5), ("v2", 0.5)];
    assert!(split_within_tolerance(&counts(210, 190), &half).is_ok());
    assert!(split_within_tolerance(&counts(300, 100), &half).is_err());
}
