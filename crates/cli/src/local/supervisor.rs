//! The supervisor: one long-lived process that builds the node, starts discovery, runs
//! every pod's processes (restarting crashed ones with backoff), keeps the Pod objects
//! discovery sees up to date, forwards the ingress gateway's ports, and tears it all
//! down on SIGTERM/SIGINT. It is the only writer of state.json while it lives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};

use super::manifests::{self, read_documents, write_objects};
use super::net;
use super::pods::{self, desired_pods, pod_file, pod_object, PodPlan};
use super::podspec::proc_specs;
use super::procs::{self, ProcKind, ProcSpec};
use super::state::*;
use super::{forward, kubeproxy, teardown};

struct Proc {
    spec: ProcSpec,
    child: Option<Child>,
    started: Instant,
    /// When a crashed process may start again.
    retry_at: Option<Instant>,
}

struct RunningPod {
    plan: PodPlan,
    procs: Vec<Proc>,
    last_probe: Instant,
}

pub struct Supervisor {
    state: State,
    bin_dir: PathBuf,
    pods: BTreeMap<(String, String), RunningPod>,
    stop: Arc<AtomicBool>,
    reconcile_seen: Option<SystemTime>,
    discovery: Option<Child>,
    started: Instant,
    forwarders: Vec<forward::Forwarder>,
    /// The node's nat table as last applied.
    service_rules: String,
}

pub fn say(msg: impl AsRef<str>) {
    println!("{}", msg.as_ref());
}

pub fn run(files: Vec<PathBuf>, profile: String, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the ironmesh executable has no directory")?
        .to_path_buf();
    let mut sup = Supervisor {
        state: State {
            phase: "starting".into(),
            profile: profile.clone(),
            supervisor_pid: Some(std::process::id()),
            started_at: now_secs(),
            last_ip: 9,
            ..Default::default()
        },
        bin_dir,
        pods: BTreeMap::new(),
        stop,
        reconcile_seen: None,
        discovery: None,
        started: Instant::now(),
        forwarders: Vec::new(),
        service_rules: String::new(),
    };
    sup.state.save()?;
    let result = sup.start(&files, &profile).and_then(|()| sup.serve());
    if let Err(e) = &result {
        say(format!("✘ failed: {e:#}"));
        sup.state.phase = "failed".into();
        sup.state.message = format!("{e:#}");
        let _ = sup.state.save();
    }
    say("stopping: removing pods, namespaces and files");
    sup.shutdown();
    result
}

impl Supervisor {
    fn step<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        say(format!("• {what}"));
        f(self).with_context(|| format!("step \"{what}\" failed"))
    }

    fn start(&mut self, files: &[PathBuf], profile: &str) -> anyhow::Result<()> {
        let discovery = self.bin_dir.join("ironmesh-discovery");
        if !discovery.exists() {
            bail!(
                "{} is missing next to ironmesh; build it: cargo build --release",
                discovery.display()
            );
        }
        for bin in ["ironmesh-proxy", "ironmesh-sample"] {
            if !self.bin_dir.join(bin).exists() {
                say(format!(
                    "  warning: {} is missing next to ironmesh; pods that need it will not start (cargo build -p {bin})",
                    self.bin_dir.join(bin).display()
                ));
            }
        }
        self.step(
            &format!("creating node namespace {NODE_NETNS} with bridge {BRIDGE} ({BRIDGE_IP}/16)"),
            |s| net::create_node(&mut s.state),
        )?;
        self.step("writing manifests into the config directory", |s| {
            std::fs::create_dir_all(config_dir())?;
            let mut docs = manifests::system_objects(profile);
            docs.extend(read_documents(files)?);
            let written = write_objects(&docs, &mut s.state)?;
            if let Some(mesh) = manifests::profile_mesh_config(profile) {
                manifests::ensure_file(&mesh_config_file(), mesh)?;
            }
            s.state.save()?;
            say(format!(
                "  {} objects ({})",
                written.len(),
                config_dir().display()
            ));
            Ok(())
        })?;
        self.step(
            &format!("starting ironmesh-discovery on {BRIDGE_IP}:{XDS_PORT} (xDS) in {NODE_NETNS}"),
            Self::start_discovery,
        )?;
        self.step("starting pods", |s| s.reconcile())?;
        Ok(())
    }

    fn start_discovery(&mut self) -> anyhow::Result<()> {
        let mut args = vec![
            "--config-dir".to_string(),
            config_dir().display().to_string(),
            "--grpc-addr".into(),
            format!("{BRIDGE_IP}:{XDS_PORT}"),
            "--http-addr".into(),
            format!("{BRIDGE_IP}:{DISCOVERY_HTTP_PORT}"),
            "--monitoring-addr".into(),
            format!("{BRIDGE_IP}:{DISCOVERY_MONITORING_PORT}"),
        ];
        if mesh_config_file().exists() {
            args.push("--mesh-config".into());
            args.push(mesh_config_file().display().to_string());
        }
        let spec = ProcSpec {
            container: "discovery".into(),
            program: self.bin_dir.join("ironmesh-discovery"),
            args,
            env: vec![("IRONMESH_LOG".into(), "info".into())],
            uid: None,
            ports: vec![XDS_PORT],
            kind: ProcKind::App,
        };
        let log = pod_log("istio-system", "discovery", "discovery");
        let child = procs::spawn(NODE_NETNS, &spec, &log)?;
        self.state.discovery_pid = Some(child.id());
        self.state.save()?;
        self.discovery = Some(child);
        let url = format!("http://{BRIDGE_IP}:{DISCOVERY_HTTP_PORT}/ready");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = self.discovery.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    bail!(
                        "ironmesh-discovery exited ({status}); its log: {}\n{}",
                        log.display(),
                        tail(&log, 15)
                    );
                }
            }
            if http_ok(&url) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "ironmesh-discovery is not ready after 30s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Brings the running pods in line with the config dir: starts missing pods, stops
    /// pods whose owner is gone, refreshes every pod's hosts file.
    fn reconcile(&mut self) -> anyhow::Result<()> {
        let objects = pods::load_config_objects()?;
        let desired = desired_pods(&objects, &self.state.pods);
        let keys: Vec<(String, String)> = desired
            .iter()
            .map(|p| (p.namespace.clone(), p.name.clone()))
            .collect();
        let stale: Vec<(String, String)> = self
            .pods
            .keys()
            .filter(|k| !keys.contains(k))
            .cloned()
            .collect();
        for key in stale {
            say(format!("• removing pod {}/{}", key.0, key.1));
            self.stop_pod(&key);
        }
        for plan in desired {
            let key = (plan.namespace.clone(), plan.name.clone());
            if self.pods.contains_key(&key) {
                continue;
            }
            self.start_pod(plan)?;
        }
        self.write_dns_files();
        self.sync_service_rules(&objects);
        self.reconcile_seen = mtime(&reconcile_file());
        Ok(())
    }

    /// kube-proxy's rules for the ready pods (see kubeproxy.rs).
    fn sync_service_rules(&mut self, objects: &[ironmesh_config::Object]) {
        let endpoints: Vec<kubeproxy::Endpoint> = self
            .state
            .pods
            .iter()
            .filter(|ps| ps.ready)
            .filter_map(|ps| {
                let pod = self.pods.get(&(ps.namespace.clone(), ps.name.clone()))?;
                let ports = pod
                    .plan
                    .spec
                    .containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .filter_map(|p| Some((p.name.clone()?, u16::try_from(p.container_port).ok()?)))
                    .collect();
                Some(kubeproxy::Endpoint {
                    namespace: &ps.namespace,
                    ip: &ps.ip,
                    labels: &pod.plan.labels,
                    ports,
                })
            })
            .collect();
        let rules = kubeproxy::rules(objects, &endpoints);
        if rules != self.service_rules {
            match kubeproxy::apply(&rules) {
                Ok(()) => self.service_rules = rules,
                Err(e) => say(format!("  warning: {e:#}")),
            }
        }
    }

    fn start_pod(&mut self, plan: PodPlan) -> anyhow::Result<()> {
        self.state.last_ip += 1;
        if self.state.last_ip >= 0xfffc {
            bail!("the pod range 10.213.0.0/16 is exhausted");
        }
        let ip = net::pod_ip(self.state.last_ip);
        let netns = pod_netns(&plan.namespace, &plan.name);
        let veth = net::veth_name(&netns);
        let (specs, warnings) = proc_specs(&plan, &ip, &self.bin_dir);
        for w in warnings {
            say(format!("  warning: {w}"));
        }
        let gateway = plan.is_gateway();
        self.state.pods.push(PodState {
            namespace: plan.namespace.clone(),
            name: plan.name.clone(),
            netns: netns.clone(),
            veth: veth.clone(),
            ip: ip.clone(),
            injected: plan.injected,
            gateway,
            phase: "Pending".into(),
            ready: false,
            owner: plan.owner.clone(),
            containers: specs
                .iter()
                .filter(|s| s.kind != ProcKind::Init)
                .map(|s| ContainerState {
                    name: s.container.clone(),
                    uid: s.uid.unwrap_or(0),
                    status: "Waiting".into(),
                    ports: s.ports.clone(),
                    ..Default::default()
                })
                .collect(),
            created_at: now_secs(),
        });
        self.state.netns.push(netns.clone());
        self.state.save()?;
        say(format!(
            "  pod {}/{} ip {ip}{}",
            plan.namespace,
            plan.name,
            if plan.injected {
                " (sidecar)"
            } else if gateway {
                " (gateway)"
            } else {
                ""
            }
        ));
        net::create_pod_net(&netns, &veth, &ip).with_context(|| {
            format!(
                "creating the network of pod {}/{}",
                plan.namespace, plan.name
            )
        })?;
        // Before istio-init: DNS capture reads the pod's resolv.conf.
        if let Some(ps) = self.state.pods.last() {
            write_pod_dns(ps, &self.state.vips);
        }
        self.write_pod_object(&plan, &ip, "Pending", false)?;
        let mut procs_ = Vec::new();
        for spec in specs {
            if spec.kind == ProcKind::Init {
                run_init(&netns, &plan, &spec)?;
                continue;
            }
            procs_.push(Proc {
                spec,
                child: None,
                started: Instant::now(),
                retry_at: Some(Instant::now()),
            });
        }
        let key = (plan.namespace.clone(), plan.name.clone());
        self.pods.insert(
            key,
            RunningPod {
                plan,
                procs: procs_,
                last_probe: Instant::now() - Duration::from_secs(5),
            },
        );
        self.tick_processes();
        Ok(())
    }

    fn write_pod_object(
        &self,
        plan: &PodPlan,
        ip: &str,
        phase: &str,
        ready: bool,
    ) -> anyhow::Result<()> {
        let obj = pod_object(plan, ip, phase, ready);
        let path = pod_file(&plan.namespace, &plan.name);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&obj)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    fn stop_pod(&mut self, key: &(String, String)) {
        if let Some(mut pod) = self.pods.remove(key) {
            for p in pod.procs.iter_mut().rev() {
                if let Some(c) = p.child.as_mut() {
                    procs::stop_child(c, Duration::from_secs(3));
                }
            }
            if pod.plan.owner.is_empty() {
                // A bare Pod's file is the user's object: keep it unless it was deleted.
            } else {
                let _ = std::fs::remove_file(pod_file(&key.0, &key.1));
            }
        }
        if let Some(idx) = self
            .state
            .pods
            .iter()
            .position(|p| p.namespace == key.0 && p.name == key.1)
        {
            let ps = self.state.pods.remove(idx);
            teardown::remove_netns(&ps.netns);
            self.state.netns.retain(|n| n != &ps.netns);
        }
        let _ = self.state.save();
    }

    /// Starts processes that are due, notices exits and schedules restarts with backoff.
    fn tick_processes(&mut self) {
        let now = Instant::now();
        for ((ns, name), pod) in self.pods.iter_mut() {
            let Some(ps) = self
                .state
                .pods
                .iter_mut()
                .find(|p| &p.namespace == ns && &p.name == name)
            else {
                continue;
            };
            for proc_ in pod.procs.iter_mut() {
                let Some(cs) = ps
                    .containers
                    .iter_mut()
                    .find(|c| c.name == proc_.spec.container)
                else {
                    continue;
                };
                if let Some(child) = proc_.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        let ran = proc_.started.elapsed();
                        cs.restarts += 1;
                        cs.pid = None;
                        cs.ready = false;
                        cs.status = if ran < Duration::from_secs(10) {
                            "CrashLoopBackOff".into()
                        } else {
                            "Error".into()
                        };
                        let backoff = Duration::from_secs(1 << cs.restarts.min(5))
                            .min(Duration::from_secs(30));
                        say(format!(
                            "  pod {ns}/{name} container {} exited ({status}); restart {} in {}s",
                            proc_.spec.container,
                            cs.restarts,
                            backoff.as_secs()
                        ));
                        proc_.child = None;
                        proc_.retry_at = Some(now + backoff);
                    }
                }
                if proc_.child.is_none() && proc_.retry_at.is_some_and(|t| t <= now) {
                    let log = pod_log(ns, name, &proc_.spec.container);
                    match procs::spawn(&ps.netns, &proc_.spec, &log) {
                        Ok(child) => {
                            cs.pid = Some(child.id());
                            cs.status = "Running".into();
                            proc_.child = Some(child);
                            proc_.started = now;
                            proc_.retry_at = None;
                        }
                        Err(e) => {
                            cs.status = "Error".into();
                            say(format!("  pod {ns}/{name}: {e:#}"));
                            proc_.retry_at = Some(now + Duration::from_secs(10));
                        }
                    }
                }
            }
            if ps.phase == "Pending" && ps.containers.iter().all(|c| c.pid.is_some()) {
                ps.phase = "Running".into();
            }
        }
    }

    /// Readiness: the sidecar's (or gateway's) /healthz/ready on 15021, the app's
    /// declared ports listening in the pod's namespace, or the app simply running.
    fn probe(&mut self) -> bool {
        let mut changed = Vec::new();
        for ((ns, name), pod) in self.pods.iter_mut() {
            if pod.last_probe.elapsed() < Duration::from_millis(500) {
                continue;
            }
            pod.last_probe = Instant::now();
            let Some(ps) = self
                .state
                .pods
                .iter_mut()
                .find(|p| &p.namespace == ns && &p.name == name)
            else {
                continue;
            };
            for cs in ps.containers.iter_mut() {
                cs.ready = match cs.pid {
                    None => false,
                    Some(pid) if cs.uid == PROXY_UID => {
                        let _ = pid;
                        http_ok(&format!("http://{}:15021/healthz/ready", ps.ip))
                    }
                    Some(pid) => {
                        let listening = net::listening_ports(pid);
                        cs.ports.iter().all(|p| listening.contains(p))
                    }
                };
            }
            let ready = ps.phase == "Running" && ps.containers.iter().all(|c| c.ready);
            if ready != ps.ready {
                ps.ready = ready;
                changed.push((pod.plan.clone(), ps.ip.clone(), ready));
            }
        }
        let any = !changed.is_empty();
        for (plan, ip, ready) in changed {
            let _ = self.write_pod_object(&plan, &ip, "Running", ready);
        }
        any
    }

    fn serve(&mut self) -> anyhow::Result<()> {
        let ready_deadline = Instant::now() + Duration::from_secs(180);
        let mut announced = false;
        while !self.stop.load(Ordering::SeqCst) {
            self.tick_processes();
            let changed = self.probe();
            if let Some(c) = self.discovery.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    bail!(
                        "ironmesh-discovery exited ({status}); see {}",
                        pod_log("istio-system", "discovery", "discovery").display()
                    );
                }
            }
            if mtime(&reconcile_file()) != self.reconcile_seen {
                if let Err(e) = self.reconcile() {
                    say(format!("  reconcile failed: {e:#}"));
                    self.reconcile_seen = mtime(&reconcile_file());
                }
            }
            let all_ready = self.state.pods.iter().all(|p| p.ready);
            if !announced && (all_ready || Instant::now() > ready_deadline) {
                self.start_forwards();
                let ms = self.started.elapsed().as_millis() as u64;
                self.state.ready_after_ms = Some(ms);
                self.state.phase = "ready".into();
                if !all_ready {
                    let waiting: Vec<String> = self
                        .state
                        .pods
                        .iter()
                        .filter(|p| !p.ready)
                        .map(|p| format!("{}/{}", p.namespace, p.name))
                        .collect();
                    self.state.message = format!("not ready after 180s: {}", waiting.join(", "));
                    say(format!(
                        "  warning: {}; see `ironmesh logs POD`",
                        self.state.message
                    ));
                }
                self.state.save()?;
                say(format!("✔ ready in {:.1}s", ms as f64 / 1000.0));
                announced = true;
            } else if changed {
                self.state.save()?;
            }
            if changed {
                if let Ok(objects) = pods::load_config_objects() {
                    self.sync_service_rules(&objects);
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    fn start_forwards(&mut self) {
        for ps in self
            .state
            .pods
            .iter()
            .filter(|p| p.gateway && p.namespace == "istio-system")
        {
            if !ps.name.starts_with("istio-ingressgateway") {
                continue;
            }
            for (port, target) in [(80u16, 8080u16), (443, 8443), (15021, 15021)] {
                let to = format!("{}:{target}", ps.ip);
                match forward::Forwarder::start(&to) {
                    Ok(f) => {
                        say(format!(
                            "  ingress gateway port {port} → http://{}",
                            f.local
                        ));
                        self.state.forwards.push(Forward {
                            name: format!("istio-ingressgateway:{port}"),
                            target: to,
                            local: f.local.to_string(),
                        });
                        self.forwarders.push(f);
                    }
                    Err(e) => say(format!(
                        "  warning: cannot forward gateway port {port}: {e}"
                    )),
                }
            }
        }
    }

    /// Per pod: a hosts file naming every Service VIP (short names for the pod's own
    /// namespace, as the search path would) and a resolv.conf with the cluster search
    /// path; injected pods' DNS goes to their sidecar's DNS proxy.
    fn write_dns_files(&self) {
        for ps in &self.state.pods {
            write_pod_dns(ps, &self.state.vips);
        }
    }

    fn shutdown(&mut self) {
        self.state.phase = "stopping".into();
        let _ = self.state.save();
        self.forwarders.clear();
        let keys: Vec<_> = self.pods.keys().cloned().collect();
        for p in self.pods.values_mut() {
            for pr in p.procs.iter_mut() {
                if let Some(c) = pr.child.as_mut() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(c.id() as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
            }
        }
        for key in keys {
            self.stop_pod(&key);
        }
        if let Some(mut d) = self.discovery.take() {
            procs::stop_child(&mut d, Duration::from_secs(3));
        }
        teardown::teardown(&self.state);
    }
}

/// istio-init: the iptables rules must be in place before the sidecar and app start.
fn run_init(netns: &str, plan: &PodPlan, spec: &ProcSpec) -> anyhow::Result<()> {
    let log = pod_log(&plan.namespace, &plan.name, &spec.container);
    let mut child = procs::spawn(netns, spec, &log)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            bail!(
                "istio-init (ironmesh-proxy iptables) failed in pod {}/{} ({status}):\n{}",
                plan.namespace,
                plan.name,
                tail(&log, 10)
            );
        }
        if Instant::now() > deadline {
            procs::stop_child(&mut child, Duration::from_secs(1));
            bail!(
                "istio-init did not finish in 20s in pod {}/{}",
                plan.namespace,
                plan.name
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_pod_dns(ps: &PodState, vips: &BTreeMap<String, String>) {
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n");
    hosts.push_str(&format!("{}\t{}\n", ps.ip, ps.name));
    for (key, vip) in vips {
        let Some((ns, name)) = key.split_once('/') else {
            continue;
        };
        let mut names = format!("{name}.{ns}.svc.cluster.local {name}.{ns}.svc {name}.{ns}");
        if ns == ps.namespace {
            names.push(' ');
            names.push_str(name);
        }
        hosts.push_str(&format!("{vip}\t{names}\n"));
    }
    let resolv = format!(
        "search {}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {BRIDGE_IP}\noptions ndots:5 timeout:1 attempts:2\n",
        ps.namespace
    );
    let dir = net::etc_dir(&ps.netns);
    let _ = std::fs::create_dir_all(&dir);
    let _ = net::write_in_place(&dir.join("hosts"), &hosts);
    let _ = net::write_in_place(&dir.join("resolv.conf"), &resolv);
    let _ = net::write_in_place(&dir.join("hostname"), &format!("{}\n", ps.name));
}

pub fn pod_netns(namespace: &str, pod: &str) -> String {
    format!("im-{namespace}-{pod}")
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

pub fn http_ok(url: &str) -> bool {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(500)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    matches!(agent.get(url).call(), Ok(r) if r.status().as_u16() == 200)
}

pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
