//! Process readings from /proc: resident memory and CPU time of a process tree.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// `pid` and every descendant (nginx's workers).
pub fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                if stat_fields(child)
                    .and_then(|f| f.get(1).cloned())
                    .as_deref()
                    == Some(&parent.to_string())
                {
                    all.push(child);
                }
            }
        }
        i += 1;
    }
    all
}

/// Fields of /proc/PID/stat after the command name: state, ppid, … (so index 1 is
/// ppid, 11 utime and 12 stime).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds of `pids`.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .filter_map(|p| {
            let f = stat_fields(*p)?;
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    ticks as f64 / ticks_per_second()
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(&format!("{field}:")))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory of `pids` now, in MiB.
pub fn rss_mib(pids: &[u32]) -> f64 {
    pids.iter().map(|p| status_kib(*p, "VmRSS")).sum::<u64>() as f64 / 1024.0
}

/// Peak resident memory of `pids` over their lives, in MiB.
pub fn peak_rss_mib(pids: &[u32]) -> f64 {
    pids.iter().map(|p| status_kib(*p, "VmHWM")).sum::<u64>() as f64 / 1024.0
}
