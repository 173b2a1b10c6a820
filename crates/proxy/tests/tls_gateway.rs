//! HTTPS through the gateway: the real `ironmesh-discovery` serves a Gateway with
//! `tls.mode: SIMPLE` + `credentialName`, and the certificate from a Kubernetes Secret by
//! SDS; `ironmesh-proxy router` terminates TLS (chosen by SNI) and proxies to a loopback
//! echo backend. Certificates are made here with the openssl CLI; the client is curl.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ironmesh_testkit::discovery::Workspace;
use support::*;

const HOST: &str = "httpsserver.example.test";

fn config(backend: u16) -> String {
    config_with(backend, "SIMPLE")
}

fn config_with(backend: u16, mode: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {{name: httpsserver, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - hosts: ["{HOST}"]
    port: {{name: https-default, number: 443, protocol: HTTPS}}
    tls: {{mode: {mode}, credentialName: example-credential}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {{name: httpsserver, namespace: istio-system}}
spec:
  gateways: [httpsserver]
  hosts: ["{HOST}"]
  http:
  - route:
    - destination: {{host: backend.example.internal, port: {{number: {backend}}}}}
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {{name: backend, namespace: istio-system}}
spec:
  hosts: [backend.example.internal]
  location: MESH_EXTERNAL
  ports: [{{number: {backend}, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1}}]
"#
    )
}

/// A self-signed certificate for `HOST` (PEM cert, PEM key) under `dir/tag.*`.
fn cert(dir: &Path, tag: &str) -> (String, String) {
    let (crt, key) = (
        dir.join(format!("{tag}.crt")),
        dir.join(format!("{tag}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-sha256", "-nodes", "-days", "2", "-newkey", "rsa:2048",
        ])
        .args(["-subj", &format!("/O=ironmesh test {tag}/CN={HOST}")])
        .args(["-addext", &format!("subjectAltName=DNS:{HOST}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(crt).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

fn secret_yaml(crt: &str, key: &str) -> String {
    secret_with_ca(crt, key, None)
}

/// The kubernetes.io/tls Secret, with `ca.crt` (the client CA of a MUTUAL server).
fn secret_with_ca(crt: &str, key: &str, ca: Option<&str>) -> String {
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let mut y = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: example-credential, namespace: istio-system}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(crt),
        indent(key)
    );
    if let Some(ca) = ca {
        y.push_str(&format!("  ca.crt: |\n{}", indent(ca)));
    }
    y
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// curl over HTTPS to the gateway with `sni` as the name (resolved to the gateway).
/// Returns `(status, http_version)`, or Err(stderr) when the request failed.
fn curl(gw: SocketAddr, sni: &str, ca: &Path, extra: &[&str]) -> Result<(u16, String), String> {
    curl_body(gw, sni, ca, extra).map(|(s, v, _)| (s, v))
}

/// As [`curl`], with the response body (the echo backend's JSON).
fn curl_body(
    gw: SocketAddr,
    sni: &str,
    ca: &Path,
    extra: &[&str],
) -> Result<(u16, String, serde_json::Value), String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .arg("--cacert")
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{sni}:{}:{}", gw.port(), gw.ip()))
        .args(extra)
        .arg(format!("https://{sni}:{}/", gw.port()))
        .output()
        .expect("run curl");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (code, version) = status.split_once(' ').unwrap_or((status, ""));
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    Ok((code.parse().unwrap_or(0), version.to_string(), json))
}

#[test]
fn gateway_terminates_https_with_the_sds_certificate() {
    let backend = EchoServer::http_on("backend", "127.0.0.1:0".parse().unwrap());
    let ws = Workspace::new();
    let certs = ironmesh_testkit::TempDir::new().unwrap();
    let (crt1, key1) = cert(certs.path(), "one");
    let (crt2, key2) = cert(certs.path(), "two");
    let (ca1, ca2) = (certs.path().join("one.crt"), certs.path().join("two.crt"));
    ws.write("gateway.yaml", &config(backend.addr.port()));
    ws.write("secret.yaml", &secret_yaml(&crt1, &key1));
    let discovery = ws.start_discovery();

    let args: Vec<String> = [
        "--discovery-address".to_string(),
        discovery.xds.to_string(),
        "--bind-port".to_string(),
        "443=127.0.0.1:0".to_string(),
    ]
    .to_vec();
    let env = [
        ("POD_NAME", "istio-ingressgateway-tls-1"),
        ("POD_NAMESPACE", "istio-system"),
        ("INSTANCE_IP", "127.0.0.31"),
        ("SERVICE_ACCOUNT", "istio-ingressgateway-service-account"),
        (
            "ISTIO_METAJSON_LABELS",
            r#"{"app":"istio-ingressgateway","istio":"ingressgateway"}"#,
        ),
    ];
    let p = Proxy::spawn(
        "router",
        &args,
        ironmesh_testkit::TempDir::new().unwrap(),
        &env,
    );
    p.wait_ready();
    let gw = p.addr("0.0.0.0_443");

    // The secret may arrive just after readiness (SDS does not hold it back).
    let deadline = Instant::now() + Duration::from_secs(15);
    let first = loop {
        match curl(gw, HOST, &ca1, &["--http1.1"]) {
            Ok(r) => break r,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no HTTPS within 15s: {e}\n{}\n{}",
                    p.lines().join("\n"),
                    discovery.logs()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    assert_eq!(first, (200, "1.1".to_string()), "HTTP/1.1 over TLS");
    let (_, _, echoed) = curl_body(gw, HOST, &ca1, &[]).unwrap();
    assert_eq!(
        echoed["headers"]["x-forwarded-proto"], "https",
        "the backend is told the client used HTTPS: {echoed}"
    );
    assert_eq!(
        curl(gw, HOST, &ca1, &["--http2"]).unwrap(),
        (200, "2".to_string()),
        "h2 negotiated by ALPN"
    );
    // An SNI no server lists matches no filter chain: the handshake fails even without
    // verification.
    let wrong = curl(gw, "other.example.test", &ca1, &["-k"]);
    assert!(wrong.is_err(), "wrong SNI was served: {wrong:?}");
    // The second certificate is not trusted for the first one's key.
    assert!(
        curl(gw, HOST, &ca2, &[]).is_err(),
        "cert two served before rotation"
    );

    // Rotation: the Secret changes, the next handshakes use the new certificate.
    ws.write("secret.yaml", &secret_yaml(&crt2, &key2));
    let deadline = Instant::now() + Duration::from_secs(20);
    while curl(gw, HOST, &ca2, &[]).is_err() {
        assert!(
            Instant::now() < deadline,
            "rotated certificate not served within 20s\n{}",
            p.lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        curl(gw, HOST, &ca1, &[]).is_err(),
        "old certificate still served"
    );
}

fn start_gateway(
    discovery: &ironmesh_testkit::discovery::Discovery,
    pod: &str,
) -> (Proxy, SocketAddr) {
    let args: Vec<String> = [
        "--discovery-address".to_string(),
        discovery.xds.to_string(),
        "--bind-port".to_string(),
        "443=127.0.0.1:0".to_string(),
    ]
    .to_vec();
    let env = [
        ("POD_NAME", pod),
        ("POD_NAMESPACE", "istio-system"),
        ("INSTANCE_IP", "127.0.0.32"),
        ("SERVICE_ACCOUNT", "istio-ingressgateway-service-account"),
        (
            "ISTIO_METAJSON_LABELS",
            r#"{"app":"istio-ingressgateway","istio":"ingressgateway"}"#,
        ),
    ];
    let p = Proxy::spawn(
        "router",
        &args,
        ironmesh_testkit::TempDir::new().unwrap(),
        &env,
    );
    p.wait_ready();
    let gw = p.addr("0.0.0.0_443");
    (p, gw)
}

#[test]
fn mutual_gateway_requires_a_client_certificate_from_the_secrets_ca() {
    let backend = EchoServer::http_on("backend", "127.0.0.1:0".parse().unwrap());
    let ws = Workspace::new();
    let certs = ironmesh_testkit::TempDir::new().unwrap();
    let dir = certs.path();
    let (crt, key) = cert(dir, "server");
    // A CA, and a client certificate it signs (v3, clientAuth, as webpki requires).
    openssl(
        &[
            "req",
            "-x509",
            "-sha256",
            "-nodes",
            "-days",
            "2",
            "-newkey",
            "rsa:2048",
            "-subj",
            "/CN=ironmesh test client CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-subj",
            "/CN=client",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ],
        dir,
    );
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-sha256",
            "-days",
            "2",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "client.ext",
            "-out",
            "client.crt",
        ],
        dir,
    );
    let ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    ws.write("gateway.yaml", &config_with(backend.addr.port(), "MUTUAL"));
    ws.write("secret.yaml", &secret_with_ca(&crt, &key, Some(&ca)));
    let discovery = ws.start_discovery();
    let (p, gw) = start_gateway(&discovery, "istio-ingressgateway-mtls-1");

    let server_ca = dir.join("server.crt");
    let client = [
        "--cert",
        dir.join("client.crt").to_str().unwrap(),
        "--key",
        dir.join("client.key").to_str().unwrap(),
    ]
    .map(String::from);
    let client: Vec<&str> = client.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match curl(gw, HOST, &server_ca, &client) {
            Ok((200, _)) => break,
            other => assert!(
                Instant::now() < deadline,
                "client with a certificate from the CA not served: {other:?}\n{}",
                p.lines().join("\n")
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let without = curl(gw, HOST, &server_ca, &[]);
    assert!(
        !matches!(without, Ok((200, _))),
        "a client without a certificate was served: {without:?}"
    );
    // A certificate the CA did not sign (the server's own, self-signed) is refused.
    let server_key = dir.join("server.key");
    let foreign = [
        "--cert",
        server_ca.to_str().unwrap(),
        "--key",
        server_key.to_str().unwrap(),
    ];
    let other = curl(gw, HOST, &server_ca, &foreign);
    assert!(
        !matches!(other, Ok((200, _))),
        "a client certificate from another CA was served: {other:?}"
    );
}
