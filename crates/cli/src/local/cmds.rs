//! Day-two commands against a running local mesh: `apply`, `delete`, `exec`, `logs`,
//! `status`, `down`.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::manifests::{delete_objects, read_documents, validate, write_objects};
use super::state::*;
use super::up::{require_root, LogFollower};
use super::{get, procs, teardown};

/// The state of a running mesh, or a message saying how to start one.
pub fn running_state() -> Option<State> {
    match State::load() {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            eprintln!("error: no local mesh is running; start one with `sudo ironmesh up -f DIR`");
            None
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            None
        }
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}

#[derive(clap::Args)]
pub struct FilesArgs {
    /// Manifest files or directories.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
}

pub fn apply(args: FilesArgs) -> ExitCode {
    let r = (|| -> anyhow::Result<()> {
        require_root("apply")?;
        let Some(mut state) = running_state() else {
            anyhow::bail!("nothing to apply to");
        };
        validate(&args.files)?;
        let docs = read_documents(&args.files)?;
        // The supervisor owns the VIP table; a fresh read narrows the race with it to
        // the few milliseconds between load and save.
        let written = write_objects(&docs, &mut state)?;
        if let Some(mut fresh) = State::load()? {
            fresh.vips.extend(state.vips);
            fresh.save()?;
        }
        touch_reconcile()?;
        for w in written {
            println!("{w} configured");
        }
        Ok(())
    })();
    r.map(|()| ExitCode::SUCCESS).unwrap_or_else(fail)
}

pub fn delete(args: FilesArgs) -> ExitCode {
    let r = (|| -> anyhow::Result<bool> {
        require_root("delete")?;
        if running_state().is_none() {
            anyhow::bail!("nothing to delete from");
        }
        let docs = read_documents(&args.files)?;
        let (gone, missing) = delete_objects(&docs);
        touch_reconcile()?;
        for g in &gone {
            println!("{g} deleted");
        }
        for m in &missing {
            eprintln!("{m} not found");
        }
        Ok(missing.is_empty())
    })();
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(e),
    }
}

fn touch_reconcile() -> anyhow::Result<()> {
    std::fs::write(
        reconcile_file(),
        format!("{:?}\n", std::time::SystemTime::now()),
    )?;
    Ok(())
}

/// A pod by exact name or unique prefix (`sleep` for `sleep-5fc8…-x2x9q`).
pub fn find_pod<'a>(state: &'a State, pod: &str, ns: Option<&str>) -> anyhow::Result<&'a PodState> {
    let in_ns = |p: &&PodState| ns.is_none_or(|n| n == p.namespace);
    if let Some(p) = state.pods.iter().filter(in_ns).find(|p| p.name == pod) {
        return Ok(p);
    }
    let matches: Vec<&PodState> = state
        .pods
        .iter()
        .filter(in_ns)
        .filter(|p| p.name.starts_with(pod))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => anyhow::bail!(
            "pod {pod:?} not found{}; see `ironmesh get pods`",
            ns.map(|n| format!(" in namespace {n}")).unwrap_or_default()
        ),
        many => anyhow::bail!(
            "{pod:?} matches {} pods ({}); give more of the name or -n NAMESPACE",
            many.len(),
            many.iter()
                .map(|p| format!("{}/{}", p.namespace, p.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[derive(clap::Args)]
pub struct ExecArgs {
    /// Pod name or a unique prefix of it.
    pod: String,
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Container whose user to run as (default: the first app container).
    #[arg(short = 'c', long)]
    container: Option<String>,
    /// Accepted for kubectl compatibility (stdin is always passed through).
    #[arg(short = 'i', long)]
    stdin: bool,
    #[arg(short = 't', long)]
    tty: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn exec(args: ExecArgs) -> ExitCode {
    let _ = (args.stdin, args.tty);
    let r = (|| -> anyhow::Result<ExitCode> {
        require_root("exec")?;
        let Some(state) = running_state() else {
            anyhow::bail!("nothing to exec in");
        };
        let pod = find_pod(&state, &args.pod, args.namespace.as_deref())?;
        let uid = match &args.container {
            Some(c) => pod
                .containers
                .iter()
                .find(|x| &x.name == c)
                .map(|x| x.uid)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "pod {} has no container {c:?}; it has {}",
                        pod.name,
                        pod.containers
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?,
            None => pod
                .containers
                .iter()
                .find(|c| c.name != "istio-proxy")
                .map(|c| c.uid)
                .unwrap_or(APP_UID),
        };
        let (program, rest) = args.command.split_first().expect("required");
        let status = procs::command_in(&pod.netns, Some(uid), std::path::Path::new(program), rest)
            .env_clear()
            .env("PATH", procs::BASE_PATH)
            .env("HOME", "/tmp")
            .env("HOSTNAME", &pod.name)
            .env(
                "TERM",
                std::env::var("TERM").unwrap_or_else(|_| "xterm".into()),
            )
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()?;
        Ok(ExitCode::from(
            status.code().unwrap_or(1).clamp(0, 255) as u8
        ))
    })();
    r.unwrap_or_else(fail)
}

#[derive(clap::Args)]
pub struct LogsArgs {
    /// Pod name or a unique prefix of it.
    pod: String,
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Container (default: the first app container; `istio-proxy` for the sidecar).
    #[arg(short = 'c', long)]
    container: Option<String>,
    /// Keep printing new lines.
    #[arg(short = 'f', long)]
    follow: bool,
}

pub fn logs(args: LogsArgs) -> ExitCode {
    let r = (|| -> anyhow::Result<()> {
        let Some(state) = running_state() else {
            anyhow::bail!("no logs to show");
        };
        let pod = find_pod(&state, &args.pod, args.namespace.as_deref())?;
        let container = match args.container {
            Some(c) => c,
            None => pod
                .containers
                .iter()
                .find(|c| c.name != "istio-proxy")
                .or(pod.containers.first())
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        };
        if !pod.containers.iter().any(|c| c.name == container) && container != "istio-init" {
            anyhow::bail!("pod {} has no container {container:?}", pod.name);
        }
        let path = pod_log(&pod.namespace, &pod.name, &container);
        let mut f = LogFollower::new(path);
        for l in f.lines() {
            println!("{l}");
        }
        while args.follow && state_file().exists() {
            for l in f.lines() {
                println!("{l}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    })();
    r.map(|()| ExitCode::SUCCESS).unwrap_or_else(fail)
}

pub fn status() -> ExitCode {
    let Some(state) = running_state() else {
        return ExitCode::FAILURE;
    };
    let alive = state
        .supervisor_pid
        .is_some_and(|p| pid_alive(p, "__supervise"));
    println!(
        "mesh: {}{} (profile {}, supervisor pid {}{})",
        state.phase,
        if state.message.is_empty() {
            String::new()
        } else {
            format!(" — {}", state.message)
        },
        state.profile,
        state
            .supervisor_pid
            .map(|p| p.to_string())
            .unwrap_or_default(),
        if alive {
            ""
        } else {
            ", NOT RUNNING: run `ironmesh down`"
        }
    );
    if let Some(ms) = state.ready_after_ms {
        println!("ready after {:.1}s", ms as f64 / 1000.0);
    }
    println!(
        "discovery: xds {BRIDGE_IP}:{XDS_PORT}, debug http://{BRIDGE_IP}:{DISCOVERY_HTTP_PORT}"
    );
    for f in &state.forwards {
        println!("{} → {}", f.name, f.local);
    }
    println!();
    get::print_pods(&state, None, true);
    if alive {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn down() -> ExitCode {
    if let Err(e) = require_root("down") {
        return fail(e);
    }
    let state = match State::load() {
        Ok(Some(s)) => s,
        Ok(None) => {
            println!("no local mesh is running; nothing to remove");
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(e),
    };
    if let Some(pid) = state
        .supervisor_pid
        .filter(|p| pid_alive(*p, "__supervise"))
    {
        println!("• stopping the supervisor (pid {pid})");
        procs::signal_pid(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while pid_alive(pid, "__supervise") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if pid_alive(pid, "__supervise") {
            procs::signal_pid(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    // Whatever the supervisor did not get to (or everything, after a SIGKILL).
    let state = State::load().ok().flatten().unwrap_or(state);
    println!(
        "• removing {} network namespaces, the host link and {}",
        state.netns.len(),
        run_dir().display()
    );
    teardown::teardown(&state);
    println!("✔ down");
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
pub struct SuperviseArgs {
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    files: Vec<PathBuf>,
    #[arg(long, default_value = "default")]
    profile: String,
}

pub fn supervise(args: SuperviseArgs) -> ExitCode {
    let stop = super::up::signal_flag();
    match super::supervisor::run(args.files, args.profile, stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
