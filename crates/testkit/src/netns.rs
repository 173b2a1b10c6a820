//! Network namespaces for tests that need a private network stack (iptables capture):
//! created with `ip netns`, removed on drop even when the test fails.

use std::process::Command;

/// Whether the process can create namespaces and iptables rules.
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace; deleted on drop (with every rule and address inside it).
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// Creates `ironmesh-<tag>-<pid>` with loopback up.
    pub fn new(tag: &str) -> NetNs {
        let name = format!("ironmesh-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = NetNs { name };
        ns.exec_ok("ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace; panics with its stderr when it fails.
    pub fn exec_ok(&self, cmd: &str, args: &[&str]) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .output()
            .expect("run ip netns exec");
        assert!(
            out.status.success(),
            "{cmd} {} in {}: {}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A `Command` that runs `program` inside the namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Moves the calling thread into namespace `name` (for servers/clients run by the test).
pub fn enter(name: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{name}")).expect("open netns");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}
