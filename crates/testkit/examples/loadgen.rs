//! HTTP/1.1 keep-alive load generator for the proxy benchmark (`bench/proxy.sh`).
//!
//! ```text
//! loadgen max   --addr 127.0.0.1:8080 [--host H] [--path /] [--conns 16] [--duration 10]
//! loadgen rate  --addr … --rate 1000 [--conns 16] [--duration 10] [--warmup 1]
//! loadgen probe --addr … [--host H] [--path /]        # exit 0 when one GET answers 200
//! ```
//!
//! `max` is closed-loop: every connection sends its next request as soon as the last
//! answer arrived. `rate` is open-loop: request *i* is due at `start + i / rate` and
//! goes on connection `i mod conns`; its latency is measured from when it was *due*,
//! not from when it could be sent, so a stall is charged to every request it delayed
//! (the coordinated-omission correction wrk2 and fortio make). Prints one JSON line:
//! `{"requests", "errors", "seconds", "rps", "p50_us", "p90_us", "p99_us", "max_us"}`.
//!
//! Plain blocking sockets, one thread per connection: at 16 connections and 1000 rps
//! the generator needs a few percent of a core.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    mode: String,
    addr: SocketAddr,
    host: String,
    path: String,
    conns: usize,
    duration: f64,
    rate: f64,
    warmup: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: loadgen max|rate|probe --addr IP:PORT …")?;
    let mut a = Args {
        mode,
        addr: "127.0.0.1:80".parse().expect("literal"),
        host: String::new(),
        path: "/".into(),
        conns: 16,
        duration: 10.0,
        rate: 1000.0,
        warmup: 1.0,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--addr" => a.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?,
            "--host" => a.host = v,
            "--path" => a.path = v,
            "--conns" => a.conns = num(&v)? as usize,
            "--duration" => a.duration = num(&v)?,
            "--rate" => a.rate = num(&v)?,
            "--warmup" => a.warmup = num(&v)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.host.is_empty() {
        a.host = a.addr.to_string();
    }
    if a.conns == 0 || a.rate <= 0.0 || a.duration <= 0.0 {
        return Err("--conns, --rate and --duration must be positive".into());
    }
    Ok(a)
}

/// One keep-alive connection that sends GETs and reads answers with a Content-Length
/// or chunked body.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    request: Vec<u8>,
    line: String,
}

impl Conn {
    fn open(a: &Args) -> std::io::Result<Conn> {
        let s = TcpStream::connect_timeout(&a.addr, Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", a.path, a.host).into_bytes();
        Ok(Conn {
            writer: s.try_clone()?,
            reader: BufReader::with_capacity(16 * 1024, s),
            request,
            line: String::new(),
        })
    }

    /// Sends one GET and reads the answer: its status.
    fn get(&mut self) -> std::io::Result<u16> {
        self.writer.write_all(&self.request)?;
        self.line.clear();
        self.reader.read_line(&mut self.line)?;
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {:?}", self.line)))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                return Err(bad("connection closed in headers".into()));
            }
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.to_ascii_lowercase().contains("chunked");
                } else if k.eq_ignore_ascii_case("connection") {
                    close = v.to_ascii_lowercase().contains("close");
                }
            }
        }
        if chunked {
            self.skip_chunked()?;
        } else if let Some(n) = length {
            std::io::copy(&mut (&mut self.reader).take(n as u64), &mut std::io::sink())?;
        } else if status != 204 && status != 304 {
            return Err(bad("answer without Content-Length".into()));
        }
        if close {
            return Err(bad("server closed the keep-alive connection".into()));
        }
        Ok(status)
    }

    fn skip_chunked(&mut self) -> std::io::Result<()> {
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line)?;
            let size = usize::from_str_radix(self.line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(format!("bad chunk size {:?}", self.line)))?;
            std::io::copy(
                &mut (&mut self.reader).take(size as u64 + 2),
                &mut std::io::sink(),
            )?;
            if size == 0 {
                return Ok(());
            }
        }
    }
}

fn bad(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    last_error: Option<String>,
}

/// Closed loop on one connection until `stop`.
fn run_max(a: &Args, stop: &AtomicBool) -> Tally {
    let mut t = Tally::default();
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(a) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    t.errors += 1;
                    t.last_error = Some(e.to_string());
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        match c.get() {
            Ok(200) => t.ok += 1,
            Ok(s) => {
                t.errors += 1;
                t.last_error = Some(format!("status {s}"));
            }
            Err(e) => {
                t.errors += 1;
                t.last_error = Some(e.to_string());
                conn = None;
            }
        }
    }
    t
}

/// Open loop: the requests `k, k + conns, k + 2·conns, …` of a schedule at `rate`.
/// Requests due during the warm-up are sent but not recorded.
fn run_rate(a: &Args, k: usize, start: Instant) -> Tally {
    let mut t = Tally::default();
    let interval = 1.0 / a.rate;
    let total = ((a.warmup + a.duration) * a.rate) as usize;
    let mut conn: Option<Conn> = None;
    let mut i = k;
    while i < total {
        let due = start + Duration::from_secs_f64(i as f64 * interval);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let record = i as f64 * interval >= a.warmup;
        let result = match conn.as_mut() {
            Some(c) => c.get(),
            None => Conn::open(a).and_then(|c| conn.insert(c).get()),
        };
        let latency = due.elapsed().as_micros() as u64;
        match result {
            Ok(200) if record => {
                t.ok += 1;
                t.latencies_us.push(latency);
            }
            Ok(200) => {}
            Ok(s) => {
                t.errors += u64::from(record);
                t.last_error = Some(format!("status {s}"));
            }
            Err(e) => {
                t.errors += u64::from(record);
                t.last_error = Some(e.to_string());
                conn = None;
            }
        }
        i += a.conns;
    }
    t
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    if a.mode == "probe" {
        let ok = Conn::open(&a).and_then(|mut c| c.get());
        return match ok {
            Ok(200) => ExitCode::SUCCESS,
            Ok(s) => {
                eprintln!("probe: status {s}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("probe: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now() + Duration::from_millis(50);
    let handles: Vec<_> = (0..a.conns)
        .map(|k| {
            let a = a.clone();
            let stop = stop.clone();
            std::thread::spawn(move || match a.mode.as_str() {
                "rate" => run_rate(&a, k, start),
                _ => run_max(&a, &stop),
            })
        })
        .collect();
    let measured_from;
    if a.mode == "rate" {
        measured_from = start + Duration::from_secs_f64(a.warmup);
    } else if a.mode == "max" {
        std::thread::sleep(Duration::from_secs_f64(a.duration));
        stop.store(true, Ordering::Relaxed);
        measured_from = Instant::now() - Duration::from_secs_f64(a.duration);
    } else {
        eprintln!("loadgen: unknown mode {} (max|rate|probe)", a.mode);
        return ExitCode::from(2);
    }
    let mut all = Tally::default();
    for h in handles {
        let t = h.join().expect("worker thread");
        all.ok += t.ok;
        all.errors += t.errors;
        all.latencies_us.extend(t.latencies_us);
        all.last_error = all.last_error.or(t.last_error);
    }
    let seconds = if a.mode == "rate" {
        measured_from.elapsed().as_secs_f64()
    } else {
        a.duration
    };
    all.latencies_us.sort_unstable();
    let l = &all.latencies_us;
    println!(
        "{{\"requests\":{},\"errors\":{},\"seconds\":{:.3},\"rps\":{:.1},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{},\"last_error\":{}}}",
        all.ok,
        all.errors,
        seconds,
        all.ok as f64 / seconds,
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        l.last().copied().unwrap_or(0),
        serde_json::Value::from(all.last_error.unwrap_or_default()),
    );
    ExitCode::SUCCESS
}
