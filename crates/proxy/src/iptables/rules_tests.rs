use clap::Parser;

use super::*;
use crate::iptables::Args;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn config(argv: &[&str]) -> CaptureConfig {
    let mut full = vec!["iptables"];
    full.extend_from_slice(argv);
    Cli::try_parse_from(full).unwrap().args.config().unwrap()
}

/// The nat table of `seeds/002_*.txt` (`iptables-save` inside an injected pod).
const SEED_NAT: &str = "\
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
";

/// Rules in the order `iptables-save` lists them: built-in chains first, then our
/// chains by name, each chain's rules in order.
pub fn save_order(rules: &[String]) -> Vec<String> {
    let chain = |r: &String| r.split_whitespace().nth(1).unwrap_or("").to_string();
    let rank = |c: &str| match BUILTIN.iter().position(|b| *b == c) {
        Some(i) => (0, i, String::new()),
        None => (1, 0, c.to_string()),
    };
    let mut indexed: Vec<(usize, &String)> = rules.iter().enumerate().collect();
    indexed.sort_by_key(|(i, r)| (rank(&chain(r)), *i));
    indexed.into_iter().map(|(_, r)| r.clone()).collect()
}

fn table<'a>(rs: &'a Ruleset, name: &str) -> &'a TableRules {
    rs.tables.iter().find(|t| t.table == name).unwrap()
}

#[test]
fn defaults_give_the_seed_rules() {
    let rs = build(&config(&[]));
    assert_eq!(rs.tables.len(), 1);
    let nat = table(&rs, "nat");
    assert_eq!(nat.chains, vec![INBOUND, IN_REDIRECT, OUTPUT, REDIRECT]);
    let want: Vec<String> = SEED_NAT.lines().map(String::from).collect();
    assert_eq!(save_order(&nat.rules), want);
}

#[test]
fn istio_init_args_from_the_seed_parse_and_match() {
    let argv = [
        "-p",
        "15001",
        "-z",
        "15006",
        "-u",
        "1337",
        "-m",
        "REDIRECT",
        "-i",
        "*",
        "-x",
        "",
        "-b",
        "*",
        "-d",
        "15090,15021,15020",
        "--log_output_level=default:info",
    ];
    assert_eq!(config(&argv), config(&[]));
}

#[test]
fn dry_run_text_is_a_restore_transaction() {
    let text = restore_input(&build(&config(&[])), &Existing::default());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "*nat");
    assert_eq!(lines[1], ":ISTIO_INBOUND - [0:0]");
    assert_eq!(*lines.last().unwrap(), "COMMIT");
    assert!(
        !text.contains("-D "),
        "nothing to delete on a fresh namespace"
    );
}

#[test]
fn dns_capture_redirects_port_53_for_everyone_but_the_proxy() {
    let rs = build(&config(&["--redirect-dns"]));
    let nat = table(&rs, "nat");
    assert!(nat.chains.contains(&OUTPUT_DNS));
    let r = &nat.rules;
    assert!(
        r.contains(&"-A OUTPUT -j ISTIO_OUTPUT".to_string()),
        "{r:#?}"
    );
    let pos = |s: &str| {
        r.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("missing {s} in {r:#?}"))
    };
    let uid_return = pos("-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN");
    let gid_return = pos("-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN");
    let to_dns = pos("-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS");
    assert!(uid_return < to_dns && gid_return < to_dns);
    pos("-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053");
    pos("-A ISTIO_OUTPUT_DNS -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053");
    // Loopback DNS (127.0.0.53) from the app must reach the DNS chain.
    pos("-A ISTIO_OUTPUT -o lo -p tcp -m tcp ! --dport 53 -m owner ! --uid-owner 1337 -j RETURN");
    pos("-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT");
}

#[test]
fn cidrs_ports_and_interfaces() {
    let rs = build(&config(&[
        "-i",
        "10.96.0.0/12,240.240.0.0/16",
        "-x",
        "10.96.0.1/32",
        "-b",
        "80,8080",
        "-q",
        "3306",
        "-o",
        "22,2222",
        "-k",
        "eth1",
        "-u",
        "1337,1338",
        "-g",
        "0",
    ]));
    let r = &table(&rs, "nat").rules;
    let expect = [
        "-A PREROUTING -d 10.96.0.0/12 -i eth1 -j ISTIO_REDIRECT",
        "-A PREROUTING -d 240.240.0.0/16 -i eth1 -j ISTIO_REDIRECT",
        "-A ISTIO_INBOUND -p tcp -m tcp --dport 80 -j ISTIO_IN_REDIRECT",
        "-A ISTIO_INBOUND -p tcp -m tcp --dport 8080 -j ISTIO_IN_REDIRECT",
        "-A ISTIO_OUTPUT -p tcp -m tcp --dport 22 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --uid-owner 1338 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --gid-owner 0 -j RETURN",
        "-A ISTIO_OUTPUT -d 10.96.0.1/32 -j RETURN",
        "-A ISTIO_OUTPUT -p tcp -m tcp --dport 3306 -j ISTIO_REDIRECT",
        "-A ISTIO_OUTPUT -d 240.240.0.0/16 -j ISTIO_REDIRECT",
    ];
    for e in expect {
        assert!(r.contains(&e.to_string()), "missing {e} in {r:#?}");
    }
    assert!(!r.iter().any(|x| x == "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"));
    assert!(
        !r.iter().any(|x| x.contains("--dport 15090")),
        "-d applies to -b '*' only"
    );
    // The excluded port returns before any capture in ISTIO_OUTPUT.
    let first = r
        .iter()
        .position(|x| x.starts_with("-A ISTIO_OUTPUT"))
        .unwrap();
    assert_eq!(
        r[first],
        "-A ISTIO_OUTPUT -p tcp -m tcp --dport 22 -j RETURN"
    );
}

#[test]
fn no_inbound_ports_means_no_prerouting_jump() {
    let rs = build(&config(&["-b", ""]));
    let r = &table(&rs, "nat").rules;
    assert!(!r.iter().any(|x| x.starts_with("-A PREROUTING")), "{r:#?}");
    assert!(r.iter().any(|x| x.starts_with("-A OUTPUT")));
}

#[test]
fn tproxy_uses_mangle() {
    let rs = build(&config(&["-m", "TPROXY"]));
    assert_eq!(rs.tables[0].table, "mangle");
    let m = &rs.tables[0].rules;
    assert!(
        m.iter().any(|x| x.contains("-j TPROXY --on-port 15006")),
        "{m:#?}"
    );
    assert!(m.contains(&"-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN".to_string()));
    let nat = &table(&rs, "nat").rules;
    assert!(
        !nat.iter().any(|x| x.starts_with("-A PREROUTING")),
        "inbound is mangle's job"
    );
}

#[test]
fn bad_flags_name_the_flag() {
    let mut full = vec!["iptables", "-p", "notaport"];
    let e = Cli::try_parse_from(&full)
        .unwrap()
        .args
        .config()
        .unwrap_err();
    assert_eq!(e.flag, "--envoy-port");
    full = vec!["iptables", "-i", "10.0.0.0/40"];
    let e = Cli::try_parse_from(&full)
        .unwrap()
        .args
        .config()
        .unwrap_err();
    assert_eq!(e.flag, "--istio-service-cidr");
    full = vec!["iptables", "-m", "NAT"];
    let e = Cli::try_parse_from(&full)
        .unwrap()
        .args
        .config()
        .unwrap_err();
    assert!(e.to_string().contains("REDIRECT or TPROXY"));
}

const INSTALLED: &str = "\
# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_OUTPUT - [0:0]
:KUBE-OTHER - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A PREROUTING -p tcp -j KUBE-OTHER
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -j RETURN
COMMIT
";

#[test]
fn rerun_replaces_instead_of_duplicating() {
    let existing = Existing::parse(INSTALLED);
    assert_eq!(existing.jumps.len(), 2, "{existing:?}");
    assert_eq!(existing.chains.len(), 2);
    let text = restore_input(&build(&config(&[])), &existing);
    let lines: Vec<&str> = text.lines().collect();
    let idx = |s: &str| {
        lines
            .iter()
            .position(|l| *l == s)
            .unwrap_or_else(|| panic!("{s} in {text}"))
    };
    let del = idx("-D PREROUTING -p tcp -j ISTIO_INBOUND");
    idx("-D OUTPUT -p tcp -j ISTIO_OUTPUT");
    let flush = idx("-F ISTIO_INBOUND");
    let drop = idx("-X ISTIO_INBOUND");
    let create = idx(":ISTIO_INBOUND - [0:0]");
    let add = idx("-A PREROUTING -p tcp -j ISTIO_INBOUND");
    assert!(del < flush && flush < drop && drop < create && create < add);
    assert!(!text.contains("KUBE-OTHER"), "other chains are left alone");
}

#[test]
fn cleanup_removes_only_ours_and_is_empty_when_clean() {
    assert_eq!(
        cleanup_input(&Existing::parse("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")),
        None
    );
    let text = cleanup_input(&Existing::parse(INSTALLED)).unwrap();
    assert!(text.contains("-X ISTIO_OUTPUT"));
    assert!(!text.contains("KUBE-OTHER"));
    assert!(!text.contains("-A "));
}

#[test]
fn ipv6_rules_use_v6_loopback_and_v6_cidrs_only() {
    let cfg = config(&["-i", "10.0.0.0/8,fd00::/8", "-x", "fd00::1"]);
    let v6 = build_for(&cfg, Family::V6);
    let r = &table(&v6, "nat").rules;
    for want in [
        "-A ISTIO_OUTPUT -s ::6/128 -o lo -j RETURN",
        "-A ISTIO_OUTPUT -d ::1/128 -j RETURN",
        "-A ISTIO_OUTPUT -d fd00::1/128 -j RETURN",
        "-A ISTIO_OUTPUT -d fd00::/8 -j ISTIO_REDIRECT",
    ] {
        assert!(r.contains(&want.to_string()), "missing {want} in {r:#?}");
    }
    assert!(!r
        .iter()
        .any(|x| x.contains("10.0.0.0/8") || x.contains("127.0.0")));
    let v4 = build(&cfg);
    assert!(!table(&v4, "nat").rules.iter().any(|x| x.contains("fd00")));
}
