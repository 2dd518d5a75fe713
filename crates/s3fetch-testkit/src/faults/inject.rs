//! How a decided fault reaches the client, in the server's hyper gateway (before `s3s`,
//! so before the signature check): error answers and connection resets replace the
//! response; `cut_body_after`, `stall_body` and `corrupt` wrap the body `s3s` produced;
//! `etag_change` rewrites a header. Works on any transport (TCP, TLS, the bandwidth cap):
//! an aborted body makes hyper drop the connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use hyper::http::{header, HeaderValue, StatusCode};
use md5::{Digest, Md5};
use s3s::service::S3Service;
use s3s::{Body, HttpError, HttpResponse, S3Error, S3ErrorCode, StdError};

use super::decide::{Op, Target};
use super::plan::FaultKind;
use crate::state::Shared;

type ServeFuture = BoxFuture<'static, Result<HttpResponse, HttpError>>;

/// The fault-injecting front of the `Gateway`: decides whether a fault hits `req` and
/// either answers it, hands it to `s3` and alters the response, or just hands it on.
pub(crate) fn serve(
    shared: &Arc<Shared>,
    s3: &S3Service,
    req: hyper::Request<hyper::body::Incoming>,
) -> ServeFuture {
    let state = &shared.faults;
    if !state.is_active() {
        return hyper::service::Service::call(s3, req);
    }
    let Some(target) = Target::of(&req) else {
        return hyper::service::Service::call(s3, req);
    };
    let Some(kind) = state.decide(&target) else {
        return hyper::service::Service::call(s3, req);
    };
    let head = target.op == Op::HeadObject;
    let answer = |code: S3ErrorCode, msg: &'static str| -> ServeFuture {
        shared.counters.record(target.op.name());
        state.count(&kind);
        let res = error_response(code, msg, head);
        Box::pin(async move { res })
    };
    match &kind {
        FaultKind::SlowDown | FaultKind::ListSlowDown => {
            answer(S3ErrorCode::SlowDown, "Please reduce your request rate.")
        }
        FaultKind::InternalError => answer(
            S3ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        ),
        FaultKind::Forbidden => answer(S3ErrorCode::AccessDenied, "Access Denied"),
        FaultKind::NotFound => answer(S3ErrorCode::NoSuchKey, "The specified key does not exist."),
        FaultKind::EtagChange if target.if_match => answer(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ),
        FaultKind::ResetBeforeHead => {
            shared.counters.record(target.op.name());
            state.count(&kind);
            Box::pin(async {
                Err(HttpError::new(
                    "injected fault: reset_before_head (connection closed without a response)"
                        .into(),
                ))
            })
        }
        FaultKind::EtagChange
        | FaultKind::CutBodyAfter { .. }
        | FaultKind::StallBody { .. }
        | FaultKind::Corrupt => {
            let fut = hyper::service::Service::call(s3, req);
            let shared = shared.clone();
            let kind = kind.clone();
            Box::pin(async move {
                let mut res = fut.await?;
                alter_response(&shared, &kind, &mut res);
                Ok(res)
            })
        }
    }
}

fn error_response(
    code: S3ErrorCode,
    msg: &'static str,
    head: bool,
) -> Result<HttpResponse, HttpError> {
    let mut res = S3Error::with_message(code, msg)
        .to_http_response()
        .map_err(|e| HttpError::new(Box::new(e)))?;
    if head {
        // Like S3: HEAD errors have no body.
        *res.body_mut() = Body::empty();
        res.headers_mut().remove(header::CONTENT_LENGTH);
    }
    Ok(res)
}

/// Applies a body / header fault to a successful GetObject response (and counts it).
fn alter_response(shared: &Shared, kind: &FaultKind, res: &mut HttpResponse) {
    if !matches!(res.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
        return;
    }
    let len = res
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mode = match kind {
        FaultKind::EtagChange => {
            let Some(old) = res.headers().get(header::ETAG) else {
                return;
            };
            let mut h = Md5::new();
            h.update(old.as_bytes());
            h.update(b"replaced by etag_change");
            let new = format!("\"{}\"", hex::encode(h.finalize()));
            if let Ok(v) = HeaderValue::from_str(&new) {
                res.headers_mut().insert(header::ETAG, v);
            }
            shared.faults.count(kind);
            return;
        }
        _ if len == Some(0) => return,
        FaultKind::Corrupt => BodyMode::Corrupt,
        FaultKind::CutBodyAfter { bytes } => {
            let n = len.map_or(*bytes, |l| (*bytes).min(l - 1));
            // Let hyper flush the head and the N bytes before the abort: sleep long enough
            // to send them even through the bandwidth cap.
            let rate = shared.options.bandwidth_bytes_per_sec.filter(|&r| r > 0);
            let send = rate.map_or(Duration::ZERO, |r| {
                Duration::from_secs_f64(n as f64 * 1.25 / r as f64)
            });
            BodyMode::Cut {
                remaining: n,
                flush_delay: Duration::from_millis(100) + send,
            }
        }
        FaultKind::StallBody {
            after_bytes,
            duration,
            abort,
        } => BodyMode::Stall {
            remaining: len.map_or(*after_bytes, |l| (*after_bytes).min(l - 1)),
            duration: *duration,
            abort: *abort,
        },
        _ => return,
    };
    shared.faults.count(kind);
    let body = std::mem::take(res.body_mut());
    let stream = faulty_body(body, mode);
    *res.body_mut() = Body::from(Box::pin(FaultStream(stream)) as s3s::stream::DynByteStream);
}

enum BodyMode {
    /// Pass `remaining` bytes, sleep `flush_delay`, then fail.
    Cut {
        remaining: u64,
        flush_delay: Duration,
    },
    /// Pass `remaining` bytes, sleep `duration`, then pass the rest or fail.
    Stall {
        remaining: u64,
        duration: Duration,
        abort: bool,
    },
    /// Flip the first byte of every chunk.
    Corrupt,
    /// Pass everything.
    Pass,
    /// Fail once, then end.
    Fail(&'static str),
    Done,
}

type ByteResult = Result<Bytes, StdError>;
type BoxStream = Pin<Box<dyn Stream<Item = ByteResult> + Send + Sync>>;

fn faulty_body(body: Body, mode: BodyMode) -> BoxStream {
    let state = (body, mode, None::<Bytes>);
    Box::pin(futures::stream::unfold(
        state,
        |(mut body, mut mode, mut held)| async move {
            loop {
                match mode {
                    BodyMode::Done => return None,
                    BodyMode::Fail(msg) => {
                        let err: StdError = Box::new(std::io::Error::other(msg));
                        return Some((Err(err), (body, BodyMode::Done, None)));
                    }
                    BodyMode::Cut {
                        remaining: 0,
                        flush_delay,
                    } => {
                        tokio::time::sleep(flush_delay).await;
                        mode = BodyMode::Fail("injected fault: cut_body_after");
                        continue;
                    }
                    BodyMode::Stall {
                        remaining: 0,
                        duration,
                        abort,
                    } => {
                        tokio::time::sleep(duration).await;
                        if abort {
                            mode = BodyMode::Fail("injected fault: stall_body (abort)");
                            continue;
                        }
                        mode = BodyMode::Pass;
                        if let Some(rest) = held.take() {
                            return Some((Ok(rest), (body, mode, None)));
                        }
                        continue;
                    }
                    _ => {}
                }
                let chunk = match body.next().await {
                    None => return None,
                    Some(Err(e)) => return Some((Err(e), (body, BodyMode::Done, None))),
                    Some(Ok(c)) if c.is_empty() => continue,
                    Some(Ok(c)) => c,
                };
                match &mut mode {
                    BodyMode::Cut { remaining, .. } | BodyMode::Stall { remaining, .. } => {
                        let n = usize::try_from(*remaining).unwrap_or(usize::MAX);
                        let mut chunk = chunk;
                        if chunk.len() > n {
                            let rest = chunk.split_off(n);
                            if matches!(mode, BodyMode::Stall { .. }) {
                                held = Some(rest);
                            }
                        }
                        if let BodyMode::Cut { remaining, .. } | BodyMode::Stall { remaining, .. } =
                            &mut mode
                        {
                            *remaining -= chunk.len() as u64;
                        }
                        return Some((Ok(chunk), (body, mode, held)));
                    }
                    BodyMode::Corrupt => {
                        let mut c = BytesMut::from(&chunk[..]);
                        c[0] ^= 0xff;
                        return Some((Ok(c.freeze()), (body, mode, held)));
                    }
                    _ => return Some((Ok(chunk), (body, mode, held))),
                }
            }
        },
    ))
}

/// A boxed stream as an `s3s` byte stream.
struct FaultStream(BoxStream);

impl Stream for FaultStream {
    type Item = ByteResult;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

impl s3s::stream::ByteStream for FaultStream {}
