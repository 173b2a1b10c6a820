//! Talking to the kernel: `iptables-save` to read what is there, `iptables-restore
//! --noflush` to change it in one transaction, `ip rule`/`ip route` for TPROXY.

use std::io::Write;
use std::process::{Command, Stdio};

use super::rules::{self, Existing, Family, Ruleset};

fn save_program(f: Family) -> &'static str {
    match f {
        Family::V4 => "iptables-save",
        Family::V6 => "ip6tables-save",
    }
}

fn restore_program(f: Family) -> &'static str {
    match f {
        Family::V4 => "iptables-restore",
        Family::V6 => "ip6tables-restore",
    }
}

fn ip_flag(f: Family) -> &'static str {
    match f {
        Family::V4 => "-4",
        Family::V6 => "-6",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot run {program}: {source} (install the iptables package; it needs iptables-save and iptables-restore on PATH)")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}{hint}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
        hint: &'static str,
    },
}

const ROOT_HINT: &str =
    " (changing iptables needs root or CAP_NET_ADMIN in the pod's network namespace)";

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, ApplyError> {
    let spawn_err = |source| ApplyError::Spawn {
        program: program.to_string(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let hint = if stderr.contains("ermission denied") || stderr.contains("not permitted") {
            ROOT_HINT
        } else {
            ""
        };
        return Err(ApplyError::Failed {
            program: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr,
            hint,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What of ours is installed now.
pub fn existing(f: Family) -> Result<Existing, ApplyError> {
    Ok(Existing::parse(&run(save_program(f), &[], None)?))
}

/// Replaces our rules with `rules` atomically; returns the text that was applied.
pub fn apply(rules: &Ruleset, f: Family) -> Result<String, ApplyError> {
    let text = rules::restore_input(rules, &existing(f)?);
    run(restore_program(f), &["--noflush"], Some(&text))?;
    Ok(text)
}

/// Removes our rules; `Ok(None)` when there was nothing to remove.
pub fn cleanup(f: Family) -> Result<Option<String>, ApplyError> {
    let Some(text) = rules::cleanup_input(&existing(f)?) else {
        return Ok(None);
    };
    run(restore_program(f), &["--noflush"], Some(&text))?;
    Ok(Some(text))
}

/// TPROXY's policy routing: packets carrying `mark` are delivered locally.
pub fn add_tproxy_routes(mark: u32, table: u32, f: Family) -> Result<(), ApplyError> {
    let (mark, table) = (mark.to_string(), table.to_string());
    let fl = ip_flag(f);
    let default = match f {
        Family::V4 => "0.0.0.0/0",
        Family::V6 => "::/0",
    };
    let rules = run("ip", &[fl, "rule", "show"], None)?;
    let wanted = format!(
        "fwmark {:#x} lookup {table}",
        mark.parse::<u32>().unwrap_or(0)
    );
    if !rules.lines().any(|l| l.contains(&wanted)) {
        run(
            "ip",
            &[fl, "rule", "add", "fwmark", &mark, "lookup", &table],
            None,
        )?;
    }
    run(
        "ip",
        &[
            fl, "route", "replace", "local", default, "dev", "lo", "table", &table,
        ],
        None,
    )?;
    Ok(())
}

/// Undoes [`add_tproxy_routes`]; absent rules are fine.
pub fn remove_tproxy_routes(mark: u32, table: u32, f: Family) {
    let (mark, table) = (mark.to_string(), table.to_string());
    let fl = ip_flag(f);
    // Bounded: a rule added twice by hand shows up twice.
    for _ in 0..16 {
        let del = [fl, "rule", "del", "fwmark", &mark, "lookup", &table];
        if run("ip", &del, None).is_err() {
            break;
        }
    }
    let _ = run("ip", &[fl, "route", "flush", "table", &table], None);
}
