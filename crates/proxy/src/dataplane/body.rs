//! Body types of the HTTP path: the request body forwarded upstream (counted) and the
//! response body sent downstream, which finishes the stream's telemetry when it ends.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// The downstream request body, passed through frame by frame (trailers included).
pub struct ReqBody {
    inner: Option<Incoming>,
    counter: Arc<AtomicU64>,
}

impl ReqBody {
    pub fn new(inner: Option<Incoming>, counter: Arc<AtomicU64>) -> Self {
        ReqBody { inner, counter }
    }

    pub fn empty() -> Self {
        ReqBody {
            inner: None,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let r = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            if let Some(d) = f.data_ref() {
                this.counter.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|i| i.size_hint())
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

/// Runs once when a response body ends (`complete` = fully sent) or is dropped.
pub trait Finish: Send + 'static {
    fn finish(self: Box<Self>, bytes_sent: u64, complete: bool, trailers: Option<&http::HeaderMap>);
}

// Boxing the inline body would cost an allocation per request; the response future
// holds the body either way.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Full(Option<Bytes>),
    Upstream(Incoming),
    Inline(super::h1client::H1Body),
}

/// A response body's error: the upstream's connection failed mid-body.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The response body sent downstream.
pub struct RespBody {
    inner: Inner,
    sent: u64,
    finish: Option<Box<dyn Finish>>,
}

impl RespBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        RespBody {
            inner: Inner::Full((!b.is_empty()).then_some(b)),
            sent: 0,
            finish: None,
        }
    }

    pub fn empty() -> Self {
        RespBody {
            inner: Inner::Full(None),
            sent: 0,
            finish: None,
        }
    }

    pub fn upstream(b: Incoming) -> Self {
        RespBody {
            inner: Inner::Upstream(b),
            sent: 0,
            finish: None,
        }
    }

    pub fn inline(b: super::h1client::H1Body) -> Self {
        RespBody {
            inner: Inner::Inline(b),
            sent: 0,
            finish: None,
        }
    }

    /// The upstream head's fields that the response's header map left out, if it did
    /// (see [`super::h1client::Answer::into_passthrough_response`]).
    pub fn take_head(&mut self) -> Option<super::h1client::RawHead> {
        match &mut self.inner {
            Inner::Inline(b) => b.take_head(),
            _ => None,
        }
    }

    pub fn on_finish(&mut self, f: Box<dyn Finish>) {
        self.finish = Some(f);
    }

    fn done(&mut self, complete: bool, trailers: Option<&http::HeaderMap>) {
        if let Some(f) = self.finish.take() {
            f.finish(self.sent, complete, trailers);
        }
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let r: Poll<Option<Result<Frame<Bytes>, BodyError>>> = match &mut this.inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Upstream(i) => Pin::new(i).poll_frame(cx).map_err(Into::into),
            Inner::Inline(i) => Pin::new(i).poll_frame(cx).map_err(Into::into),
        };
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.sent += d.len() as u64;
                }
                if let Some(t) = f.trailers_ref() {
                    let t = t.clone();
                    this.done(true, Some(&t));
                }
            }
            Poll::Ready(None) => this.done(true, None),
            Poll::Ready(Some(Err(_))) => this.done(false, None),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(b) => b.is_none(),
            Inner::Upstream(i) => i.is_end_stream(),
            Inner::Inline(i) => i.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Upstream(i) => i.size_hint(),
            Inner::Inline(i) => i.size_hint(),
        }
    }
}

impl Drop for RespBody {
    fn drop(&mut self) {
        let complete = self.is_end_stream();
        self.done(complete, None);
    }
}
