//! The one table the benchmark prints: a column per path, ratios against Envoy and the
//! targets of the data-plane issue with PASS/FAIL.

/// Figures for one path to the backend.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The median of `max_runs`.
    pub max_rps: f64,
    /// Closed-loop requests/s of each round.
    pub max_runs: Vec<f64>,
    pub errors: u64,
    /// Milliseconds at the fixed rate, from each request's due time.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub achieved_rate: f64,
    pub rss_idle: f64,
    pub rss_peak: f64,
    pub cpu_per_1000_fixed: f64,
    pub cpu_per_1000_max: f64,
    /// False for `direct` (no proxy process to read).
    pub has_process: bool,
}

pub struct Column {
    pub name: String,
    pub result: Result<Measured, String>,
}

impl Column {
    pub fn ok(name: &str, m: Measured) -> Column {
        Column {
            name: name.into(),
            result: Ok(m),
        }
    }

    pub fn na(name: &str, why: &str) -> Column {
        Column {
            name: name.into(),
            result: Err(why.into()),
        }
    }
}

pub struct Report {
    pub columns: Vec<Column>,
    /// Sidecar RSS with the large config, MiB.
    pub scale_ours: Result<f64, String>,
    pub scale_envoy: Result<f64, String>,
    pub services: usize,
    pub opts_line: String,
    pub max_tool: String,
}

type Get = fn(&Measured) -> Option<f64>;

impl Report {
    fn get(&self, name: &str) -> Option<&Measured> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.result.as_ref().ok())
    }

    fn value(&self, name: &str, f: Get) -> Option<f64> {
        self.get(name).and_then(f)
    }

    /// `f` minus the same figure for `direct`.
    fn added(&self, name: &str, f: Get) -> Option<f64> {
        Some(self.value(name, f)? - self.value("direct", f)?)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        out.push_str(&format!(
            "| measurement | {} | ironmesh / Envoy | target | result |\n",
            names.join(" | ")
        ));
        out.push_str(&format!(
            "|---|{}---:|---|---|\n",
            "---:|".repeat(names.len())
        ));
        let ours = "ironmesh-proxy";
        let rps: Get = |m| Some(m.max_rps);
        let p50: Get = |m| Some(m.p50);
        let p90: Get = |m| Some(m.p90);
        let p99: Get = |m| Some(m.p99);
        let rss_idle: Get = |m| m.has_process.then_some(m.rss_idle);
        let rss_peak: Get = |m| m.has_process.then_some(m.rss_peak);
        let cpu_fixed: Get = |m| m.has_process.then_some(m.cpu_per_1000_fixed);
        let cpu_max: Get = |m| m.has_process.then_some(m.cpu_per_1000_max);

        // Throughput.
        let target = match (
            self.value(ours, rps),
            self.value("Envoy", rps),
            self.value("nginx", rps),
        ) {
            (Some(a), Some(e), Some(n)) => verdict(a >= 2.0 * e && a >= n),
            _ => "n/a".into(),
        };
        self.row(
            &mut out,
            &format!("max requests/s, {} ({}, median)", "16 conns", self.max_tool),
            rps,
            kilo,
            "≥ 2× Envoy and ≥ nginx",
            &target,
        );
        self.row(&mut out, "p50 at fixed rate (ms)", p50, ms, "", "");
        self.row(&mut out, "p90 at fixed rate (ms)", p90, ms, "", "");
        self.row(&mut out, "p99 at fixed rate (ms)", p99, ms, "", "");
        for (label, f) in [
            ("added p50 vs direct (ms)", p50),
            ("added p99 vs direct (ms)", p99),
        ] {
            let cells: Vec<String> = self
                .columns
                .iter()
                .map(|c| match &c.result {
                    Err(_) => "n/a".into(),
                    Ok(_) if c.name == "direct" => "—".into(),
                    Ok(_) => self.added(&c.name, f).map_or("n/a".into(), ms),
                })
                .collect();
            let (ratio, verdict_text) = match (self.added(ours, f), self.added("Envoy", f)) {
                // A path faster than direct means the direct run was disturbed: the
                // comparison says nothing, so it is neither PASS nor FAIL.
                (Some(a), Some(e)) if a < 0.0 || e <= 0.0 => {
                    (ratio(a, e), "noisy run (re-run)".into())
                }
                (Some(a), Some(e)) => (ratio(a, e), verdict(a <= 0.5 * e)),
                _ => ("n/a".into(), "n/a".into()),
            };
            out.push_str(&format!(
                "| {label} | {} | {ratio} | ≤ ½ Envoy's | {verdict_text} |\n",
                cells.join(" | ")
            ));
        }
        let rate: Get = |m| Some(m.achieved_rate);
        self.row(
            &mut out,
            "fixed rate achieved (req/s)",
            rate,
            |v| format!("{v:.0}"),
            "",
            "",
        );
        let errors: Get = |m| Some(m.errors as f64);
        self.row(
            &mut out,
            "non-200 / failed requests",
            errors,
            |v| format!("{v:.0}"),
            "",
            "",
        );
        let idle_target = match (self.value(ours, rss_idle), self.value("Envoy", rss_idle)) {
            (Some(a), Some(e)) => verdict(a <= 0.25 * e),
            _ => "n/a".into(),
        };
        self.row(
            &mut out,
            "RSS idle, 1 route (MiB)",
            rss_idle,
            mib,
            "≤ ¼ Envoy's",
            &idle_target,
        );
        self.row(&mut out, "RSS peak under load (MiB)", rss_peak, mib, "", "");
        self.row(
            &mut out,
            "CPU s per 1000 requests at fixed rate",
            cpu_fixed,
            |v| format!("{v:.3}"),
            "",
            "",
        );
        self.row(
            &mut out,
            "CPU s per 1000 requests at max",
            cpu_max,
            |v| format!("{v:.3}"),
            "",
            "",
        );

        // Sidecars with the large config.
        let cell = |r: &Result<f64, String>| match r {
            Ok(v) => mib(*v),
            Err(_) => "n/a".into(),
        };
        let (r, v) = match (&self.scale_ours, &self.scale_envoy) {
            (Ok(a), Ok(e)) => (ratio(*a, *e), verdict(*a <= 0.25 * e)),
            _ => ("n/a".into(), "n/a".into()),
        };
        let cells: Vec<String> = self
            .columns
            .iter()
            .map(|c| match c.name.as_str() {
                "ironmesh-proxy" => cell(&self.scale_ours),
                "Envoy" => cell(&self.scale_envoy),
                _ => "—".into(),
            })
            .collect();
        out.push_str(&format!(
            "| RSS as sidecar, {} services / {} endpoints (MiB) | {} | {r} | ≤ ¼ Envoy's | {v} |\n",
            self.services,
            self.services * 3,
            cells.join(" | ")
        ));

        out.push_str(&format!("\n{}.\n", self.opts_line));
        let runs: Vec<String> = self
            .columns
            .iter()
            .filter_map(|c| {
                let m = c.result.as_ref().ok()?;
                let each: Vec<String> = m.max_runs.iter().map(|v| kilo(*v)).collect();
                Some(format!("{} {}", c.name, each.join(" / ")))
            })
            .collect();
        out.push_str(&format!(
            "Closed-loop rounds (req/s, round by round): {}.\n",
            runs.join("; ")
        ));
        for c in &self.columns {
            if let Err(why) = &c.result {
                out.push_str(&format!("{}: n/a — {why}\n", c.name));
            }
        }
        for (who, r) in [
            ("ironmesh-proxy sidecar", &self.scale_ours),
            ("Envoy sidecar", &self.scale_envoy),
        ] {
            if let Err(why) = r {
                out.push_str(&format!(
                    "{who} with {} services: n/a — {why}\n",
                    self.services
                ));
            }
        }
        out
    }

    fn row(
        &self,
        out: &mut String,
        label: &str,
        f: Get,
        fmt: fn(f64) -> String,
        target: &str,
        result: &str,
    ) {
        let cells: Vec<String> = self
            .columns
            .iter()
            .map(|c| match &c.result {
                Err(_) => "n/a".into(),
                Ok(m) => f(m).map_or("—".into(), fmt),
            })
            .collect();
        let r = match (self.value("ironmesh-proxy", f), self.value("Envoy", f)) {
            (Some(a), Some(e)) => ratio(a, e),
            _ => "n/a".into(),
        };
        out.push_str(&format!(
            "| {label} | {} | {r} | {target} | {result} |\n",
            cells.join(" | ")
        ));
    }
}

fn verdict(ok: bool) -> String {
    if ok { "PASS" } else { "FAIL" }.into()
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "n/a".into()
    } else {
        format!("{:.2}×", a / b)
    }
}

fn kilo(v: f64) -> String {
    format!("{:.1}k", v / 1000.0)
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn mib(v: f64) -> String {
    format!("{v:.1}")
}
