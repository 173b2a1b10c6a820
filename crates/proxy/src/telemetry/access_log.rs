//! xDS access loggers (`envoy.access_loggers.file`, `…stdout`, `…stderr`) compiled to
//! formats plus writers. Lines go through a bounded channel to one writer thread per
//! destination, so the request path never blocks on disk; when the writer falls
//! behind, lines are dropped and counted rather than stalling traffic.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use ironmesh_xds::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
use ironmesh_xds::pb::envoy::config::core::v3::{
    data_source, substitution_format_string, SubstitutionFormatString,
};
use ironmesh_xds::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use ironmesh_xds::pb::envoy::extensions::access_loggers::stream::v3::{
    stderr_access_log, stdout_access_log, StderrAccessLog, StdoutAccessLog,
};
use prost::{Message, Name};

use super::format::{LogFormat, ENVOY_DEFAULT_FORMAT};
use super::StreamInfo;

/// Lines buffered per destination before new ones are dropped.
const QUEUE: usize = 16 * 1024;

enum Msg {
    Line(String),
    Flush(SyncSender<()>),
    /// Reopen the file (after log rotation moved it), then ack.
    Reopen(SyncSender<()>),
}

/// One destination (file, stdout or stderr) and its writer thread.
#[derive(Debug)]
pub struct Sink {
    path: String,
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
}

impl Sink {
    fn send(&self, line: String) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Line(line))
        {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Blocks until every line sent before is written and flushed.
    pub fn flush(&self) {
        let (ack_tx, ack_rx) = sync_channel(1);
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }

    /// Reopens the file (Envoy's `/reopen_logs`), waiting until it is done.
    pub fn reopen(&self) {
        let (ack_tx, ack_rx) = sync_channel(1);
        if self.tx.send(Msg::Reopen(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }

    /// Lines dropped because the writer could not keep up (or failed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

fn open_output(path: &str) -> Result<Box<dyn Write + Send>, String> {
    Ok(match path {
        "/dev/stdout" => Box::new(std::io::BufWriter::new(std::io::stdout())),
        "/dev/stderr" => Box::new(std::io::BufWriter::new(std::io::stderr())),
        p => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| {
                    format!("access log: cannot open {p:?} for appending: {e}; fix accessLogFile or the directory's permissions")
                })?;
            Box::new(std::io::BufWriter::new(f))
        }
    })
}

fn writer_loop(mut out: Box<dyn Write + Send>, rx: Receiver<Msg>, path: String) {
    let mut failed = false;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        // Drain what is queued before flushing: one write syscall per burst.
        while let Some(msg) = next.take() {
            match msg {
                Msg::Line(l) => {
                    if let Err(e) = out.write_all(l.as_bytes()) {
                        if !failed {
                            tracing::warn!(path, error = %e, "access log write failed; check the file's disk and permissions");
                            failed = true;
                        }
                    }
                }
                Msg::Flush(ack) => {
                    let _ = out.flush();
                    let _ = ack.send(());
                }
                Msg::Reopen(ack) => {
                    let _ = out.flush();
                    match open_output(&path) {
                        Ok(o) => {
                            out = o;
                            failed = false;
                        }
                        Err(e) => {
                            tracing::warn!(path, error = %e, "access log reopen failed; still writing to the old file")
                        }
                    }
                    let _ = ack.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        let _ = out.flush();
    }
}

/// Every live destination, shared by the listeners that name the same path.
static SINKS: OnceLock<Mutex<HashMap<String, Weak<Sink>>>> = OnceLock::new();

/// Reopens every access-log file of the process (Envoy's admin `POST /reopen_logs`),
/// so `logrotate`'s move-and-signal rotation works.
pub fn reopen_all() {
    let sinks: Vec<Arc<Sink>> = {
        let map = SINKS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.values().filter_map(Weak::upgrade).collect()
    };
    for s in sinks {
        s.reopen();
    }
}

fn open_sink(path: &str) -> Result<Arc<Sink>, String> {
    let mut sinks = SINKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(s) = sinks.get(path).and_then(Weak::upgrade) {
        return Ok(s);
    }
    let out = open_output(path)?;
    let (tx, rx) = sync_channel(QUEUE);
    let thread_path = path.to_string();
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || writer_loop(out, rx, thread_path))
        .map_err(|e| format!("access log: cannot start the writer thread for {path:?}: {e}"))?;
    let sink = Arc::new(Sink {
        path: path.to_string(),
        tx,
        dropped: AtomicU64::new(0),
    });
    sinks.retain(|_, w| w.strong_count() > 0);
    sinks.insert(path.to_string(), Arc::downgrade(&sink));
    Ok(sink)
}

/// One configured logger.
#[derive(Debug, Clone)]
pub struct Logger {
    pub format: Arc<LogFormat>,
    pub sink: Arc<Sink>,
}

/// The access loggers of one listener filter (HCM or TCP proxy), compiled from the
/// xDS `access_log` list (`envoy.access_loggers.file` with `text_format_source` or
/// `json_format`, as discovery emits from MeshConfig `accessLogFile` /
/// `accessLogEncoding` / `accessLogFormat`). Empty = no access log.
#[derive(Debug, Clone, Default)]
pub struct AccessLogs {
    pub loggers: Vec<Logger>,
}

#[allow(deprecated)] // `text_format` is deprecated but still valid xDS.
fn compile_sfs(s: &SubstitutionFormatString) -> Result<LogFormat, String> {
    use substitution_format_string::Format;
    for f in &s.formatters {
        // Operators these extensions add are built in; CEL and METADATA are not.
        if !matches!(
            f.typed_config
                .as_ref()
                .map(|a| a.type_url.rsplit('/').next().unwrap_or_default()),
            Some("envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery")
        ) {
            return Err(format!(
                "access log formatter extension {:?} is not supported by ironmesh-proxy; remove it from the format",
                f.name
            ));
        }
    }
    let omit = s.omit_empty_values;
    let text = |t: &str| LogFormat::text(t, omit).map_err(|e| e.0);
    match &s.format {
        Some(Format::TextFormat(t)) => text(t),
        Some(Format::TextFormatSource(ds)) => match &ds.specifier {
            Some(data_source::Specifier::InlineString(t)) => text(t),
            Some(data_source::Specifier::InlineBytes(b)) => text(&String::from_utf8_lossy(b)),
            Some(data_source::Specifier::Filename(f)) => {
                let t = std::fs::read_to_string(f).map_err(|e| format!("access log format file {f:?}: {e}"))?;
                text(&t)
            }
            _ => Err("access log text_format_source: only inline_string, inline_bytes and filename are supported".into()),
        },
        Some(Format::JsonFormat(j)) => LogFormat::json(&to_prost_struct(j), omit).map_err(|e| e.0),
        None => text(ENVOY_DEFAULT_FORMAT),
    }
}

fn to_prost_struct(s: &ironmesh_xds::pb::google::protobuf::Struct) -> prost_types::Struct {
    prost_types::Struct::decode(s.encode_to_vec().as_slice()).unwrap_or_default()
}

#[allow(deprecated)] // The legacy `format`/`json_format` fields are still valid xDS.
fn file_format(f: &FileAccessLog) -> Result<LogFormat, String> {
    use file_access_log::AccessLogFormat as F;
    match &f.access_log_format {
        None => LogFormat::text(ENVOY_DEFAULT_FORMAT, false).map_err(|e| e.0),
        Some(F::Format(t)) if t.is_empty() => {
            LogFormat::text(ENVOY_DEFAULT_FORMAT, false).map_err(|e| e.0)
        }
        Some(F::Format(t)) => LogFormat::text(t, false).map_err(|e| e.0),
        Some(F::JsonFormat(j) | F::TypedJsonFormat(j)) => {
            LogFormat::json(&to_prost_struct(j), false).map_err(|e| e.0)
        }
        Some(F::LogFormat(s)) => compile_sfs(s),
    }
}

fn decode<M: Message + Name + Default>(
    any: &ironmesh_xds::pb::google::protobuf::Any,
) -> Result<M, String> {
    M::decode(any.value.as_slice())
        .map_err(|e| format!("access log {}: cannot decode: {e}", M::full_name()))
}

impl AccessLogs {
    /// Compiles the xDS access-log list; `Err` names the unsupported part (the proxy
    /// NACKs the listener with that text).
    pub fn from_xds(logs: &[AccessLog]) -> Result<AccessLogs, String> {
        let mut loggers = Vec::with_capacity(logs.len());
        for log in logs {
            if log.filter.is_some() {
                return Err(format!(
                    "access log {:?}: access log filters are not supported by ironmesh-proxy",
                    log.name
                ));
            }
            let Some(access_log::ConfigType::TypedConfig(any)) = &log.config_type else {
                return Err(format!(
                    "access log {:?}: typed_config is required",
                    log.name
                ));
            };
            let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
            let (format, path) = if type_name == FileAccessLog::full_name() {
                let f: FileAccessLog = decode(any)?;
                if f.path.is_empty() {
                    return Err(format!(
                        "access log {:?}: FileAccessLog.path is empty",
                        log.name
                    ));
                }
                (file_format(&f)?, f.path)
            } else if type_name == StdoutAccessLog::full_name() {
                let f: StdoutAccessLog = decode(any)?;
                let format = match f.access_log_format {
                    Some(stdout_access_log::AccessLogFormat::LogFormat(s)) => compile_sfs(&s)?,
                    None => LogFormat::text(ENVOY_DEFAULT_FORMAT, false).map_err(|e| e.0)?,
                };
                (format, "/dev/stdout".to_string())
            } else if type_name == StderrAccessLog::full_name() {
                let f: StderrAccessLog = decode(any)?;
                let format = match f.access_log_format {
                    Some(stderr_access_log::AccessLogFormat::LogFormat(s)) => compile_sfs(&s)?,
                    None => LogFormat::text(ENVOY_DEFAULT_FORMAT, false).map_err(|e| e.0)?,
                };
                (format, "/dev/stderr".to_string())
            } else {
                return Err(format!(
                    "access log {:?}: logger type {type_name} is not supported by ironmesh-proxy (file, stdout and stderr are)",
                    log.name
                ));
            };
            loggers.push(Logger {
                format: Arc::new(format),
                sink: open_sink(&path)?,
            });
        }
        Ok(AccessLogs { loggers })
    }

    /// No logger configured.
    pub fn is_empty(&self) -> bool {
        self.loggers.is_empty()
    }

    /// Formats and queues one line per logger.
    pub fn log(&self, info: &StreamInfo) {
        for l in &self.loggers {
            l.sink.send(l.format.render(info));
        }
    }

    /// Waits until every queued line is on disk (tests, drain).
    pub fn flush(&self) {
        for l in &self.loggers {
            l.sink.flush();
        }
    }

    /// Destinations, for `/config_dump`-style introspection.
    pub fn paths(&self) -> Vec<&str> {
        self.loggers.iter().map(|l| l.sink.path.as_str()).collect()
    }
}
