//! `ironmesh up`: checks, validation, then a supervisor process (`ironmesh
//! __supervise`) in its own process group; this command relays the supervisor's
//! progress, prints the status table and either waits (Ctrl-C = down) or detaches.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::state::*;
use super::{get, manifests, teardown};

#[derive(clap::Args)]
pub struct UpArgs {
    /// Manifest files or directories (Namespaces, Deployments, Services, Istio config).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Return once the mesh is ready and leave it running; `ironmesh down` stops it.
    #[arg(short = 'd', long)]
    detach: bool,
    /// What to install besides discovery, as istioctl's profiles: `minimal` (no
    /// gateways), `default` (ingress gateway), `demo` (ingress + egress gateways,
    /// access logs to stdout).
    #[arg(long, default_value = "default", value_parser = ["minimal", "default", "demo"])]
    profile: String,
}

pub fn run(args: UpArgs) -> ExitCode {
    match up(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn require_root(what: &str) -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!(
            "`ironmesh {what}` needs root: the local mesh creates network namespaces, veth pairs, \
             a bridge and iptables rules (CAP_NET_ADMIN and CAP_SYS_ADMIN). Run it with sudo, e.g. \
             `sudo ./target/release/ironmesh {what} …`"
        );
    }
    Ok(())
}

fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    require_root("up")?;
    for (tool, pkg) in [
        ("ip", "iproute2"),
        ("setpriv", "util-linux"),
        ("iptables-restore", "iptables"),
    ] {
        if which(tool).is_none() {
            bail!("`{tool}` is not installed; install the {pkg} package");
        }
    }
    if let Some(state) = State::load()? {
        if let Some(pid) = state
            .supervisor_pid
            .filter(|p| pid_alive(*p, "__supervise"))
        {
            bail!(
                "a local mesh is already running (supervisor pid {pid}); add manifests with \
                 `ironmesh apply -f …` or stop it with `ironmesh down`"
            );
        }
        println!("• removing what a previous run left behind");
        teardown::teardown(&state);
    }
    let files: Vec<PathBuf> = args
        .files
        .iter()
        .map(|f| std::fs::canonicalize(f).with_context(|| format!("cannot read {}", f.display())))
        .collect::<anyhow::Result<_>>()?;
    let n = manifests::validate(&files)?;
    println!("• {n} objects valid");
    std::fs::create_dir_all(run_dir())?;
    let log = supervisor_log();
    let out = std::fs::File::create(&log)?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(&exe);
    cmd.arg("__supervise").arg("--profile").arg(&args.profile);
    for f in &files {
        cmd.arg("-f").arg(f);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .current_dir("/")
        // Its own process group: Ctrl-C reaches `up` only, which then stops it in order.
        .process_group(0)
        .spawn()
        .context("cannot start the supervisor")?;
    let stop = signal_flag();
    let mut reader = LogFollower::new(log);
    let mut stopping = false;
    loop {
        for line in reader.lines() {
            println!("{line}");
            if line.starts_with("✔ ready") {
                println!();
                if let Ok(Some(state)) = State::load() {
                    get::print_pods(&state, None, true);
                    print_hints(&state);
                }
                if args.detach {
                    println!("\nRunning in the background (supervisor pid {}). Stop it with `ironmesh down`.", child.id());
                    return Ok(ExitCode::SUCCESS);
                }
                println!("\nPress Ctrl-C to stop the mesh.");
            }
        }
        if let Some(status) = child.try_wait()? {
            for line in reader.lines() {
                println!("{line}");
            }
            return Ok(if status.success() && stopping {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        if stop.load(Ordering::SeqCst) && !stopping {
            stopping = true;
            println!(
                "\n• stopping (Ctrl-C again is ignored; this removes everything the mesh made)"
            );
            super::procs::signal_pid(child.id(), nix::sys::signal::Signal::SIGTERM);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print_hints(state: &State) {
    let gw = state.forwards.iter().find(|f| f.name.ends_with(":80"));
    println!();
    if let Some(gw) = gw {
        println!(
            "Ingress gateway: http://{}  (port 80 of istio-ingressgateway)",
            gw.local
        );
    }
    for f in &state.forwards {
        if !f.name.ends_with(":80") {
            println!("  {} → {}", f.name, f.local);
        }
    }
    println!("Try: ironmesh get pods -A · ironmesh exec POD -- curl … · ironmesh logs POD -c istio-proxy · ironmesh proxy-status");
}

/// A flag set on SIGINT, SIGTERM (and SIGHUP, which is otherwise ignored).
pub fn signal_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => f.store(true, Ordering::SeqCst),
                    _ = term.recv() => f.store(true, Ordering::SeqCst),
                    _ = hup.recv() => {}
                }
            }
        });
    });
    // Let the handlers install before the caller starts anything long.
    std::thread::sleep(Duration::from_millis(20));
    flag
}

pub fn which(tool: &str) -> Option<PathBuf> {
    super::procs::BASE_PATH
        .split(':')
        .map(|d| PathBuf::from(d).join(tool))
        .find(|p| p.exists())
}

/// Reads the lines appended to a file since the last call.
pub struct LogFollower {
    path: PathBuf,
    pos: u64,
    partial: String,
}

impl LogFollower {
    pub fn new(path: PathBuf) -> Self {
        LogFollower {
            path,
            pos: 0,
            partial: String::new(),
        }
    }

    pub fn lines(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.pos += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            out.push(self.partial[..i].to_string());
            self.partial.drain(..=i);
        }
        out
    }
}
