//! The reconnect loop and what both protocol variants share per stream.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tonic::transport::{Channel, Endpoint};

use super::backoff::Backoff;
use super::state::Types;
use super::{delta, sotw, ClientConfig, ClientStatus, ConnectionState, Handler};
use crate::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use crate::pb::google::rpc::Status as RpcStatus;
use crate::Protocol;

/// Large configs (thousands of clusters) exceed tonic's 4 MiB default by far.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

pub(super) type Client = AggregatedDiscoveryServiceClient<Channel>;

/// The client's state while it runs; each stream borrows it.
pub(super) struct Ctx {
    pub(super) config: ClientConfig,
    pub(super) handler: Arc<dyn Handler>,
    pub(super) types: Types,
    status: watch::Sender<ClientStatus>,
    connected: bool,
    streams: u64,
    last_error: Option<String>,
    /// The current stream delivered at least one response: the next failure starts
    /// backing off from the beginning.
    progressed: bool,
}

impl Ctx {
    pub(super) fn publish(&self) {
        let status = self
            .types
            .status(self.connected, self.streams, self.last_error.clone());
        self.status.send_replace(status);
    }

    /// The stream is open.
    pub(super) fn connected(&mut self) {
        self.connected = true;
        self.streams += 1;
        tracing::info!(address = %self.config.address, protocol = ?self.config.protocol,
            "xDS stream open");
        self.handler.connection(ConnectionState::Connected);
        self.publish();
    }

    pub(super) fn progressed(&mut self) {
        self.progressed = true;
    }
}

/// `google.rpc.Status` for a NACK: INVALID_ARGUMENT with the handler's reason.
pub(super) fn nack_status(message: String) -> RpcStatus {
    RpcStatus {
        code: 3,
        message,
        details: Vec::new(),
    }
}

pub(super) async fn run(
    config: ClientConfig,
    handler: Arc<dyn Handler>,
    types: Types,
    status: watch::Sender<ClientStatus>,
    mut stop: watch::Receiver<bool>,
    refresh: Arc<Notify>,
) {
    let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max);
    let mut ctx = Ctx {
        config,
        handler,
        types,
        status,
        connected: false,
        streams: 0,
        last_error: None,
        progressed: false,
    };
    loop {
        ctx.handler.connection(ConnectionState::Connecting);
        ctx.progressed = false;
        let error = tokio::select! {
            error = stream(&mut ctx, &refresh) => error,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        if ctx.progressed {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::warn!(address = %ctx.config.address, %error, retry_in = ?delay,
            "xDS stream lost; keeping the last accepted config");
        ctx.connected = false;
        ctx.last_error = Some(error.clone());
        ctx.types.reset_stream();
        ctx.publish();
        ctx.handler
            .connection(ConnectionState::Disconnected { error });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    ctx.connected = false;
    ctx.types.reset_stream();
    ctx.publish();
}

/// Connects and serves one stream until it fails; returns why.
async fn stream(ctx: &mut Ctx, refresh: &Notify) -> String {
    let client = match connect(&ctx.config).await {
        Ok(channel) => AggregatedDiscoveryServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        Err(error) => return error,
    };
    ctx.types.reset_stream();
    match ctx.config.protocol {
        Protocol::Sotw => sotw::stream(ctx, client, refresh).await,
        Protocol::Delta => delta::stream(ctx, client, refresh).await,
    }
}

async fn connect(config: &ClientConfig) -> Result<Channel, String> {
    let uri = config.uri();
    let endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|e| format!("the xDS address {uri:?} is not a valid URI ({e}); use host:port"))?;
    endpoint
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect()
        .await
        .map_err(|e| {
            format!(
                "cannot connect to the control plane at {uri}: {}; is discovery running \
                 and reachable?",
                chain(&e)
            )
        })
}

/// An error with its causes, `a: b: c`.
pub(super) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Why a stream ended, for the operator.
pub(super) fn stream_error(result: Result<Option<()>, tonic::Status>) -> String {
    match result {
        Ok(_) => "the control plane closed the xDS stream".to_owned(),
        Err(status) => format!(
            "xDS stream failed: {} ({:?})",
            status.message(),
            status.code()
        ),
    }
}
