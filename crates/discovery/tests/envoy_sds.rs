//! Real Envoy 1.40 as the ingress gateway, configured by the real `ironmesh-discovery`:
//! a Gateway `tls.mode: SIMPLE` server with `credentialName` makes Envoy ask for
//! `kubernetes://<credentialName>` over SDS, and the certificate discovery reads from the
//! Kubernetes Secret is the one Envoy serves (checked with curl against that certificate
//! as the only trusted root). A rotated Secret is served without restarting Envoy.

// Only the process, workspace, Envoy and HTTP helpers are used here.
#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ironmesh_testkit::envoy::AdsApi;
use support::envoy::{self as e, tail, wait_converged};
use support::http::Backend;
use support::{free_ports, wait_until, Workspace};

const HOST: &str = "secure.example.test";

fn config(gateway_port: u16, backend: u16) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
---
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway
  namespace: istio-system
  labels: {{app: istio-ingressgateway, istio: ingressgateway}}
spec:
  type: LoadBalancer
  selector: {{app: istio-ingressgateway, istio: ingressgateway}}
  ports:
  - {{name: https, port: 443, protocol: TCP, targetPort: {gateway_port}}}
---
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {{name: secure, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - hosts: ["{HOST}"]
    port: {{name: https, number: 443, protocol: HTTPS}}
    tls: {{mode: SIMPLE, credentialName: secure-credential}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {{name: secure, namespace: istio-system}}
spec:
  gateways: [secure]
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

/// A self-signed certificate for HOST; returns the PEM paths (cert, key).
fn cert(dir: &Path, tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (crt, key) = (
        dir.join(format!("{tag}.crt")),
        dir.join(format!("{tag}.key")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-sha256", "-nodes", "-days", "2"])
        .args(["-newkey", "rsa:2048"])
        .args(["-subj", &format!("/CN={HOST}")])
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
    (crt, key)
}

/// The kubernetes.io/tls Secret, base64 under `data` as `kubectl create secret tls`
/// writes it.
fn secret(crt: &Path, key: &Path) -> String {
    let b64 = |p: &Path| {
        let out = Command::new("base64").arg("-w0").arg(p).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: secure-credential, namespace: istio-system}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(crt),
        b64(key)
    )
}

/// `Ok(body)` when an HTTPS GET with SNI HOST verifies against `ca` alone.
fn https_get(gw: SocketAddr, ca: &Path) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--noproxy", "*", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{HOST}:{}:{}", gw.port(), gw.ip()))
        .arg(format!("https://{HOST}:{}/", gw.port()))
        .output()
        .expect("run curl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn envoy_serves_https_with_the_sds_certificate() {
    let backend = Backend::start("127.0.0.1:0".parse().unwrap(), "secure-backend").unwrap();
    let port = free_ports(1)[0];
    let ws = Workspace::new();
    let certs = ironmesh_testkit::TempDir::new().unwrap();
    let (crt1, key1) = cert(certs.path(), "one");
    let (crt2, key2) = cert(certs.path(), "two");
    ws.write("gateway.yaml", &config(port, backend.addr().port()));
    ws.write("secret.yaml", &secret(&crt1, &key1));
    let discovery = ws.start_discovery();
    let node = e::router("127.0.0.30", "istio-ingressgateway-sds-1");
    let envoy = e::start(&node, discovery.xds.port(), AdsApi::Delta);
    // Converged includes no listener warming: the SDS secret arrived and was accepted.
    wait_converged(&envoy, &discovery, &node, Duration::from_secs(30));
    let gw = SocketAddr::from(([127, 0, 0, 1], port));

    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(15), || match https_get(gw, &crt1) {
        Ok(body) => {
            last = body.clone();
            body == "secure-backend"
        }
        Err(e) => {
            last = e;
            false
        }
    });
    assert!(
        ok,
        "Envoy does not serve HTTPS with the Secret's certificate; last: {last}\nenvoy log:\n{}",
        tail(&envoy.logs(), 40)
    );
    assert!(https_get(gw, &crt2).is_err(), "an untrusted root verified");

    ws.write("secret.yaml", &secret(&crt2, &key2));
    let ok = wait_until(Duration::from_secs(20), || https_get(gw, &crt2).is_ok());
    assert!(
        ok,
        "rotated Secret not served by Envoy within 20s\nenvoy log:\n{}",
        tail(&envoy.logs(), 40)
    );
}
