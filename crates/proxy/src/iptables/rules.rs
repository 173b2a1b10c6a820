//! The capture rules as `iptables-restore` text. Pure: the same config and the same
//! current state always give the same text, so `--dry-run` and the unit tests see exactly
//! what is applied.
//!
//! Rules are written in the form `iptables-save` prints them (`-p tcp -m tcp --dport`,
//! `! -d 127.0.0.1/32 -o lo …`), so a test can compare what the kernel holds with what was
//! asked for, line by line.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::config::{CaptureConfig, InterceptionMode, Selection};

pub const INBOUND: &str = "ISTIO_INBOUND";
pub const IN_REDIRECT: &str = "ISTIO_IN_REDIRECT";
pub const OUTPUT: &str = "ISTIO_OUTPUT";
pub const REDIRECT: &str = "ISTIO_REDIRECT";
pub const OUTPUT_DNS: &str = "ISTIO_OUTPUT_DNS";
pub const DIVERT: &str = "ISTIO_DIVERT";
pub const TPROXY: &str = "ISTIO_TPROXY";

/// Every chain name this tool may create; cleanup removes exactly these.
pub const OWN_CHAINS: &[&str] = &[
    INBOUND,
    IN_REDIRECT,
    OUTPUT,
    REDIRECT,
    OUTPUT_DNS,
    DIVERT,
    TPROXY,
];

const BUILTIN: &[&str] = &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// The rules of one table: chains to create and `-A` lines in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRules {
    pub table: &'static str,
    pub chains: Vec<&'static str>,
    pub rules: Vec<String>,
}

/// Everything to install, table by table (`mangle` before `nat`, as iptables-save
/// orders them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub tables: Vec<TableRules>,
}

struct Builder {
    chains: Vec<&'static str>,
    rules: Vec<String>,
}

impl Builder {
    fn new(chains: &[&'static str]) -> Builder {
        Builder {
            chains: chains.to_vec(),
            rules: Vec::new(),
        }
    }
    fn add(&mut self, chain: &str, spec: impl AsRef<str>) {
        self.rules.push(format!("-A {chain} {}", spec.as_ref()));
    }
    fn finish(self, table: &'static str) -> TableRules {
        TableRules {
            table,
            chains: self.chains,
            rules: self.rules,
        }
    }
}

/// Which `iptables` the rules are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The proxy's inbound source address (`127.0.0.6`, `::6`).
    fn inbound_source(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.6/32",
            Family::V6 => "::6/128",
        }
    }
    fn localhost(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.1/32",
            Family::V6 => "::1/128",
        }
    }
    fn any(self) -> &'static str {
        match self {
            Family::V4 => "0.0.0.0",
            Family::V6 => "::",
        }
    }
    fn nets(self, nets: &[IpNet]) -> impl Iterator<Item = &IpNet> {
        nets.iter().filter(move |n| {
            matches!(
                (self, n),
                (Family::V4, IpNet::V4(_)) | (Family::V6, IpNet::V6(_))
            )
        })
    }
}

/// The IPv4 rules for `cfg`.
pub fn build(cfg: &CaptureConfig) -> Ruleset {
    build_for(cfg, Family::V4)
}

/// The rules for `cfg` in one address family (`ip6tables` for [`Family::V6`]).
pub fn build_for(cfg: &CaptureConfig, family: Family) -> Ruleset {
    let mut tables = Vec::new();
    if cfg.mode == InterceptionMode::Tproxy && cfg.captures_inbound() {
        tables.push(mangle(cfg, family));
    }
    tables.push(nat(cfg, family));
    Ruleset { tables }
}

fn inbound_filter(b: &mut Builder, cfg: &CaptureConfig, target: &str) {
    b.add(
        INBOUND,
        format!("-p tcp -m tcp --dport {} -j RETURN", cfg.tunnel_port),
    );
    match &cfg.inbound_ports {
        Selection::All => {
            for p in &cfg.inbound_exclude_ports {
                b.add(INBOUND, format!("-p tcp -m tcp --dport {p} -j RETURN"));
            }
            b.add(INBOUND, format!("-p tcp -j {target}"));
        }
        Selection::Only(ports) => {
            for p in ports {
                b.add(INBOUND, format!("-p tcp -m tcp --dport {p} -j {target}"));
            }
        }
    }
}

fn nat(cfg: &CaptureConfig, f: Family) -> TableRules {
    let mut chains = vec![INBOUND, IN_REDIRECT, OUTPUT, REDIRECT];
    if cfg.redirect_dns {
        chains.push(OUTPUT_DNS);
    }
    let mut b = Builder::new(&chains);

    // Jumps from the built-in chains: the only rules outside our own chains, and all of
    // them target an ISTIO_* chain, which is how a re-run or cleanup finds them again.
    for iface in &cfg.kube_virt_interfaces {
        match &cfg.outbound_cidrs {
            Selection::All => b.add("PREROUTING", format!("-i {iface} -j {REDIRECT}")),
            Selection::Only(nets) => {
                for n in f.nets(nets) {
                    b.add("PREROUTING", format!("-d {n} -i {iface} -j {REDIRECT}"));
                }
            }
        }
    }
    if cfg.mode == InterceptionMode::Redirect && cfg.captures_inbound() {
        b.add("PREROUTING", format!("-p tcp -j {INBOUND}"));
    }
    if cfg.redirect_dns {
        // DNS is UDP too, so every protocol goes through ISTIO_OUTPUT; its final
        // REDIRECT only matches TCP.
        b.add("OUTPUT", format!("-j {OUTPUT}"));
    } else {
        b.add("OUTPUT", format!("-p tcp -j {OUTPUT}"));
    }

    if cfg.mode == InterceptionMode::Redirect && cfg.captures_inbound() {
        inbound_filter(&mut b, cfg, IN_REDIRECT);
    }
    b.add(
        IN_REDIRECT,
        format!("-p tcp -j REDIRECT --to-ports {}", cfg.inbound_port),
    );
    b.add(
        REDIRECT,
        format!("-p tcp -j REDIRECT --to-ports {}", cfg.outbound_port),
    );

    for p in &cfg.outbound_exclude_ports {
        b.add(OUTPUT, format!("-p tcp -m tcp --dport {p} -j RETURN"));
    }
    // Inbound traffic the proxy forwards to the app comes from 127.0.0.6: never capture it.
    b.add(OUTPUT, format!("-s {} -o lo -j RETURN", f.inbound_source()));
    // The proxy calling its own pod IP (through lo) is inbound traffic: send it to the
    // inbound listener. DNS (53) is excluded so the proxy's own lookups are not looped.
    let loop_ports = if cfg.redirect_dns {
        format!("-m multiport ! --dports 53,{}", cfg.tunnel_port)
    } else {
        format!("-m tcp ! --dport {}", cfg.tunnel_port)
    };
    // Everyone else talking over lo is app-to-app inside the pod: leave it alone,
    // except DNS, which the DNS chain captures below.
    let lo_return = if cfg.redirect_dns {
        "-o lo -p tcp -m tcp ! --dport 53 -m owner ! --"
    } else {
        "-o lo -m owner ! --"
    };
    let owners = cfg
        .proxy_uids
        .iter()
        .map(|u| ("uid-owner", *u))
        .chain(cfg.proxy_gids.iter().map(|g| ("gid-owner", *g)));
    for (kind, id) in owners {
        b.add(
            OUTPUT,
            format!(
                "! -d {} -o lo -p tcp {loop_ports} -m owner --{kind} {id} -j {IN_REDIRECT}",
                f.localhost()
            ),
        );
        b.add(OUTPUT, format!("{lo_return}{kind} {id} -j RETURN"));
        b.add(OUTPUT, format!("-m owner --{kind} {id} -j RETURN"));
    }
    if cfg.redirect_dns {
        // Reached only by traffic not from the proxy (its uid/gid returned above), so
        // the agent's own upstream queries are never captured.
        b.add(OUTPUT, format!("-j {OUTPUT_DNS}"));
        b.add(
            OUTPUT_DNS,
            format!(
                "-p tcp -m tcp --dport 53 -j REDIRECT --to-ports {}",
                cfg.dns_port
            ),
        );
        b.add(
            OUTPUT_DNS,
            format!(
                "-p udp -m udp --dport 53 -j REDIRECT --to-ports {}",
                cfg.dns_port
            ),
        );
    }
    b.add(OUTPUT, format!("-d {} -j RETURN", f.localhost()));
    for n in f.nets(&cfg.outbound_exclude_cidrs) {
        b.add(OUTPUT, format!("-d {n} -j RETURN"));
    }
    for p in &cfg.outbound_include_ports {
        b.add(OUTPUT, format!("-p tcp -m tcp --dport {p} -j {REDIRECT}"));
    }
    match &cfg.outbound_cidrs {
        Selection::All => b.add(OUTPUT, format!("-j {REDIRECT}")),
        Selection::Only(nets) => {
            for n in f.nets(nets) {
                b.add(OUTPUT, format!("-d {n} -j {REDIRECT}"));
            }
        }
    }
    b.finish("nat")
}

/// TPROXY: inbound connections are marked and handed to the proxy's socket without
/// NAT, with policy routing (mark → table with a local default route) doing the rest.
fn mangle(cfg: &CaptureConfig, f: Family) -> TableRules {
    let mut b = Builder::new(&[DIVERT, TPROXY, INBOUND, OUTPUT]);
    let mark = cfg.tproxy_mark;
    b.add("PREROUTING", format!("-p tcp -j {INBOUND}"));
    b.add("OUTPUT", format!("-p tcp -j {OUTPUT}"));
    b.add(DIVERT, format!("-j MARK --set-xmark {mark:#x}/0xffffffff"));
    b.add(DIVERT, "-j ACCEPT");
    // Already diverted, the proxy's own inbound hop to the app, and local traffic the
    // proxy did not mark as "to my own pod IP": not inbound captures.
    b.add(
        INBOUND,
        format!("-p tcp -m mark --mark {mark:#x} -j RETURN"),
    );
    b.add(
        INBOUND,
        format!("-s {} -i lo -p tcp -j RETURN", f.inbound_source()),
    );
    b.add(
        INBOUND,
        format!("-i lo -p tcp -m mark ! --mark {:#x} -j RETURN", mark + 1),
    );
    let mut tail = Builder::new(&[]);
    inbound_filter(&mut tail, cfg, TPROXY);
    // Established connections that were diverted keep going to the proxy's socket.
    for rule in tail.rules {
        if rule == format!("-A {INBOUND} -p tcp -j {TPROXY}") {
            b.add(
                INBOUND,
                format!("-p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j {DIVERT}"),
            );
        }
        b.rules.push(rule);
    }
    b.add(
        TPROXY,
        format!(
            "! -d {} -p tcp -j TPROXY --on-port {} --on-ip {} --tproxy-mark {mark:#x}/0xffffffff",
            f.localhost(),
            cfg.inbound_port,
            f.any()
        ),
    );
    b.add(
        OUTPUT,
        format!("-o lo -p tcp -m mark --mark {mark:#x} -j RETURN"),
    );
    for (kind, id) in cfg
        .proxy_uids
        .iter()
        .map(|u| ("uid-owner", *u))
        .chain(cfg.proxy_gids.iter().map(|g| ("gid-owner", *g)))
    {
        b.add(
            OUTPUT,
            format!(
                "! -d {} -o lo -p tcp -m owner --{kind} {id} -j MARK --set-xmark {:#x}/0xffffffff",
                f.localhost(),
                mark + 1
            ),
        );
    }
    b.add(OUTPUT, format!("-p tcp -m connmark --mark {mark:#x} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff"));
    b.finish("mangle")
}

/// What `iptables-save` shows of our rules today, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    /// `(table, chain)` for every ISTIO_* chain that exists.
    pub chains: BTreeSet<(String, String)>,
    /// `(table, "-A BUILTIN …")` for every built-in-chain rule that jumps to one of our
    /// chains, in the order listed.
    pub jumps: Vec<(String, String)>,
}

impl Existing {
    /// Reads `iptables-save` output.
    pub fn parse(save: &str) -> Existing {
        let mut out = Existing::default();
        let mut table = String::new();
        for line in save.lines() {
            let line = line.trim();
            if let Some(t) = line.strip_prefix('*') {
                table = t.to_string();
            } else if let Some(decl) = line.strip_prefix(':') {
                let name = decl.split_whitespace().next().unwrap_or("");
                if OWN_CHAINS.contains(&name) {
                    out.chains.insert((table.clone(), name.to_string()));
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let mut words = rule.split_whitespace();
                let chain = words.next().unwrap_or("");
                let jumps_to_ours = rule
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .windows(2)
                    .any(|w| (w[0] == "-j" || w[0] == "-g") && OWN_CHAINS.contains(&w[1]));
                if BUILTIN.contains(&chain) && jumps_to_ours {
                    out.jumps.push((table.clone(), line.to_string()));
                }
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.chains.is_empty() && self.jumps.is_empty()
    }

    fn tables(&self) -> BTreeSet<&str> {
        self.chains
            .iter()
            .map(|(t, _)| t.as_str())
            .chain(self.jumps.iter().map(|(t, _)| t.as_str()))
            .collect()
    }

    /// The removal lines for one table: jumps first (so the chains are unreferenced),
    /// then flush every chain (they may reference each other), then delete them.
    fn removal(&self, table: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (t, rule) in &self.jumps {
            if t == table {
                out.push(format!("-D {}", &rule[3..]));
            }
        }
        let chains: Vec<&str> = self
            .chains
            .iter()
            .filter(|(t, _)| t == table)
            .map(|(_, c)| c.as_str())
            .collect();
        out.extend(chains.iter().map(|c| format!("-F {c}")));
        out.extend(chains.iter().map(|c| format!("-X {c}")));
        out
    }
}

/// `iptables-restore --noflush` input that replaces whatever of ours is there with
/// `rules`, in one transaction per table.
pub fn restore_input(rules: &Ruleset, existing: &Existing) -> String {
    let mut out = String::new();
    let wanted: BTreeSet<&str> = rules.tables.iter().map(|t| t.table).collect();
    // Tables we used before but not now (TPROXY → REDIRECT) are only cleaned.
    for table in existing.tables() {
        if !wanted.contains(table) {
            push_table(&mut out, table, &existing.removal(table), &[], &[]);
        }
    }
    for t in &rules.tables {
        push_table(
            &mut out,
            t.table,
            &existing.removal(t.table),
            &t.chains,
            &t.rules,
        );
    }
    out
}

/// `iptables-restore --noflush` input that removes everything of ours; `None` when
/// nothing is installed.
pub fn cleanup_input(existing: &Existing) -> Option<String> {
    if existing.is_empty() {
        return None;
    }
    let mut out = String::new();
    for table in existing.tables() {
        push_table(&mut out, table, &existing.removal(table), &[], &[]);
    }
    Some(out)
}

fn push_table(
    out: &mut String,
    table: &str,
    removal: &[String],
    chains: &[&str],
    rules: &[String],
) {
    out.push_str(&format!("*{table}\n"));
    for l in removal {
        out.push_str(l);
        out.push('\n');
    }
    for c in chains {
        out.push_str(&format!(":{c} - [0:0]\n"));
    }
    for r in rules {
        out.push_str(r);
        out.push('\n');
    }
    out.push_str("COMMIT\n");
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
