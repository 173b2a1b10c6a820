//! The local mesh runtime: `ironmesh up` runs a whole mesh on one Linux machine from the
//! manifests a user would `kubectl apply` — a network namespace per pod on a bridge,
//! discovery, sidecars with iptables capture, gateways — and the day-two commands
//! (`apply`, `delete`, `get`, `exec`, `logs`, `status`, `down`). See docs/local-mode.md.

pub mod cmds;
mod dns;
mod forward;
pub mod get;
mod images;
mod kubeproxy;
mod manifests;
mod net;
mod pods;
mod podspec;
mod probe;
mod procs;
mod state;
mod supervisor;
mod teardown;
pub mod up;

/// The discovery debug URL of a running local mesh, for proxy-status/proxy-config.
pub fn discovery_url() -> Option<String> {
    state::state_file()
        .exists()
        .then(|| format!("http://{}:{}", state::BRIDGE_IP, state::DISCOVERY_HTTP_PORT))
}

/// `proxy-config TYPE POD` with a pod prefix (`productpage`, `sleep.istio-demo`) names
/// the local mesh's pod in full (`productpage-v1-….default`), as discovery knows it.
pub fn resolve_proxy_arg(argv: &mut [std::ffi::OsString]) {
    let Some(i) = (3..argv.len()).find(|&i| {
        let prev = argv[i - 1].to_string_lossy();
        !argv[i].to_string_lossy().starts_with('-') && !prev.starts_with('-')
    }) else {
        return;
    };
    let given = argv[i].to_string_lossy().to_string();
    if given.contains('~') {
        return;
    }
    let Ok(Some(state)) = state::State::load() else {
        return;
    };
    let ns_flag = argv
        .iter()
        .position(|a| a == "-n" || a == "--namespace")
        .and_then(|p| argv.get(p + 1))
        .map(|a| a.to_string_lossy().to_string());
    let (pod, ns) = match given.split_once('.') {
        Some((p, n)) => (p.to_string(), Some(n.to_string())),
        None => (given.clone(), ns_flag.clone()),
    };
    if let Ok(p) = cmds::find_pod(&state, &pod, ns.as_deref()) {
        // With -n the tool adds the namespace itself.
        argv[i] = if ns_flag.is_some() && !given.contains('.') {
            p.name.clone().into()
        } else {
            format!("{}.{}", p.name, p.namespace).into()
        };
    }
}
