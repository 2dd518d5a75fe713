//! The HTTP client under the SDK: hyper over rustls, with a read buffer under TLS
//! ([`Buffered`]).
//!
//! The SDK's own client offers no place for such a stream, so this module builds the client
//! from the same parts (hyper-util's pool, hyper-rustls, rustls on aws-lc, the system's roots
//! and a CA bundle) and adapts it to the SDK's `HttpConnector`.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::ErrorKind;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use http::Uri;
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{
    capture_connection, CaptureConnection, Connected, Connection, HttpConnector as Tcp,
};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes read from a TLS connection's socket at a time.
const READ_BUFFER: usize = 256 * 1024;

/// The connection pool itself, for requests sent without the SDK (see [`crate::s3::lean`]).
pub(crate) type Pool = Client<HttpsConnector<BufferedTcp>, SdkBody>;

/// The client: HTTPS (and HTTP) with idle connections dropped after `idle`, trusting the
/// system's roots and the PEM certificates of `ca`; as the SDK's client and as the pool it
/// draws from.
pub(crate) fn client(
    ca: Option<&[u8]>,
    idle: Duration,
    connect: Duration,
) -> (SharedHttpClient, Pool) {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(pem) = ca {
        roots.add_parsable_certificates(CertificateDer::pem_slice_iter(pem).flatten());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = Tcp::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(connect));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(BufferedTcp(tcp));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(idle)
        .pool_timer(TokioTimer::new())
        .build(https);
    let sdk = SharedHttpClient::new(Https {
        connector: SharedHttpConnector::new(Connector {
            client: client.clone(),
        }),
    });
    (sdk, client)
}

#[derive(Debug)]
struct Https {
    connector: SharedHttpConnector,
}

impl HttpClient for Https {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.connector.clone()
    }
}

#[derive(Clone)]
struct Connector {
    client: Pool,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connector(hyper over rustls, buffered)")
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(error) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::user(error.into())))
            }
        };
        // The SDK closes ("poisons") a connection after a retryable error through this.
        let captured = capture_connection(&mut request);
        if let Some(capture) = request.extensions().get::<CaptureSmithyConnection>() {
            capture.set_connection_retriever(move || poisonable(&captured));
        }
        let response = self.client.request(request);
        HttpConnectorFuture::new(async move {
            match response.await {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|error| ConnectorError::other(error.into(), None)),
                Err(error) => Err(connector_error(error)),
            }
        })
    }
}

/// The connection a request went out on, as the SDK wants it: something it can poison.
fn poisonable(captured: &CaptureConnection) -> Option<ConnectionMetadata> {
    captured.connection_metadata().as_ref()?;
    let captured = captured.clone();
    Some(
        ConnectionMetadata::builder()
            .proxied(false)
            .poison_fn(move || {
                if let Some(connected) = captured.connection_metadata().as_ref() {
                    connected.poison();
                }
            })
            .build(),
    )
}

/// The SDK's kind of a failed request: connection and I/O errors are retried as such.
fn connector_error(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let connect = error.is_connect();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let (mut io, mut incomplete) = (false, false);
    while let Some(e) = source {
        io |= e.is::<io::Error>();
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            io |= h.is_closed() || h.is_canceled();
            incomplete |= h.is_incomplete_message();
        }
        source = e.source();
    }
    let error: BoxError = Box::new(error);
    match (connect || io, incomplete) {
        (true, _) => ConnectorError::io(error),
        (false, true) => ConnectorError::other(error, Some(ErrorKind::TransientError)),
        (false, false) => ConnectorError::other(error, None),
    }
}

/// hyper-util's TCP connector, its streams read through a buffer when they carry TLS.
#[derive(Clone)]
pub(crate) struct BufferedTcp(Tcp);

impl tower_service::Service<Uri> for BufferedTcp {
    type Response = Buffered;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Buffered, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = uri.scheme_str() == Some("https");
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let stream = connecting.await?;
            Ok(Buffered {
                inner: stream,
                buf: tls.then(|| vec![0; READ_BUFFER].into_boxed_slice()),
                start: 0,
                end: 0,
            })
        })
    }
}

/// A TCP stream whose reads go through `buf` (TLS), or straight through (plain HTTP, where
/// hyper's own buffer is the right size already).
///
/// rustls reads one TLS record (16 KiB) per `recv` from its socket; a large download then
/// makes twice the reads of other tools, and on a fast link each read is a system call plus
/// the ACK work the kernel does in the reader's context. `Buffered` sits between the TCP
/// stream and rustls and reads up to [`READ_BUFFER`] bytes at a time, handing rustls its
/// records from memory.
pub(crate) struct Buffered {
    inner: TokioIo<TcpStream>,
    buf: Option<Box<[u8]>>,
    start: usize,
    end: usize,
}

impl Read for Buffered {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut out: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(buf) = this.buf.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        };
        if this.start == this.end {
            let mut read = ReadBuf::new(buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, read.unfilled()))?;
            (this.start, this.end) = (0, read.filled().len());
        }
        let n = out.remaining().min(this.end - this.start);
        out.put_slice(&buf[this.start..this.start + n]);
        this.start += n;
        Poll::Ready(Ok(()))
    }
}

impl Write for Buffered {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, data)
    }
}

impl Connection for Buffered {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}
