//! The serving loop of `evl serve` and `evl witness serve` (docs/SERVER.md §"TLS" and
//! §"Limits"): plain HTTP/1.1 or HTTPS with rustls, a bound on every phase a client controls,
//! a cap on open connections, and graceful shutdown on SIGINT or SIGTERM.
//!
//! What a client controls, and how long it may take:
//! - the TLS handshake: `--tls-handshake-timeout`, then the connection is dropped;
//! - a request head (line and headers): `--header-timeout`, counted from the handshake's end
//!   or, on a kept-alive connection, from the previous response (hyper's header read timeout);
//!   then the connection is closed without an answer;
//! - a request body: `--body-timeout`, counted from the head; then 408 and the connection closes;
//! - idleness between requests: `--keep-alive-timeout`; then the connection closes;
//! - reading the response: `--write-timeout` without a byte written; then the connection closes.
//!
//! Beyond `--max-connections` open connections, new ones are not accepted: they wait in the
//! kernel's accept queue (the listen backlog) until a connection closes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use clap::Args;
use http_body::{Frame, SizeHint};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower_service::Service as _;

use crate::error::Error;
use crate::keys::KeyError;

/// Options of both servers: TLS and the slow-client limits.
#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    /// Serve HTTPS (HTTP/1.1 over TLS 1.2/1.3, rustls): the server's certificate chain, PEM,
    /// leaf first. Needs --tls-key.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert: PEM, PKCS#8, PKCS#1 (RSA) or SEC1 (EC). A secret: refused
    /// when readable by group or others (exit 3).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has to send a whole request head, from the connection's start (after
    /// the TLS handshake) or from the previous response; then the connection is closed.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub header_timeout: u64,
    /// Seconds a client has to send a whole request body, counted from its head; then 408 and
    /// the connection is closed.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub body_timeout: u64,
    /// Seconds a kept-alive connection may stay idle between requests; then it is closed.
    /// 0: no keep-alive (one request per connection).
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub keep_alive_timeout: u64,
    /// Seconds a response may wait for a client that does not read it (no byte written for
    /// that long); then the connection is closed.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub write_timeout: u64,
    /// Seconds a client has to complete the TLS handshake; then the connection is dropped.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub tls_handshake_timeout: u64,
    /// Most connections open at once. Beyond it new connections are not accepted: they wait in
    /// the kernel's accept queue until one closes.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: u32,
}

impl Default for ListenArgs {
    fn default() -> ListenArgs {
        ListenArgs {
            tls_cert: None,
            tls_key: None,
            header_timeout: 10,
            body_timeout: 60,
            keep_alive_timeout: 5,
            write_timeout: 60,
            tls_handshake_timeout: 10,
            max_connections: 1024,
        }
    }
}

/// The limits of one server, ready to serve.
#[derive(Clone)]
struct Limits {
    header: Duration,
    body: Duration,
    /// `None`: no keep-alive.
    keep_alive: Option<Duration>,
    write: Duration,
    handshake: Duration,
    max_connections: u32,
}

/// A server's TLS (if any) and limits, checked before anything is bound.
pub struct Listen {
    tls: Option<TlsAcceptor>,
    limits: Limits,
}

impl ListenArgs {
    /// Reads and checks the certificate and key (each error names its file) and the limits.
    /// Called before binding, so a bad file leaves the port free.
    pub fn prepare(&self) -> Result<Listen, Error> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
            (None, None) => None,
            _ => {
                return Err(Error::Invalid(
                    "--tls-cert and --tls-key are given together".into(),
                ));
            }
        };
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Ok(Listen {
            tls,
            limits: Limits {
                header: secs(self.header_timeout),
                body: secs(self.body_timeout),
                keep_alive: (self.keep_alive_timeout > 0)
                    .then(|| Duration::from_secs(self.keep_alive_timeout)),
                write: secs(self.write_timeout),
                handshake: secs(self.tls_handshake_timeout),
                max_connections: self.max_connections.max(1),
            },
        })
    }
}

/// The server's certificate chain and key as a rustls acceptor (HTTP/1.1 by ALPN), with the
/// crypto provider all of evl's TLS uses (ring: Cargo.toml says why not aws-lc-rs).
fn load_tls(cert: &Path, key: &Path) -> Result<TlsAcceptor, Error> {
    let bad = |p: &Path, why: String| Error::Invalid(format!("{}: {why}", p.display()));
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(cert, pem_error(e, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(bad(cert, "no PEM CERTIFICATE block".into()));
    }
    check_secret_mode(key)?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, pem_error(e, "PRIVATE KEY")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Invalid(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            Error::Invalid(format!(
                "{} with {}: {}",
                cert.display(),
                key.display(),
                match e {
                    rustls::Error::InconsistentKeys(_) =>
                        "the key is not the certificate's (its public key differs)".to_string(),
                    other => other.to_string(),
                }
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn pem_error(e: rustls_pki_types::pem::Error, what: &str) -> String {
    use rustls_pki_types::pem::Error as P;
    match e {
        P::Io(e) => e.to_string(),
        P::NoItemsFound => format!("no PEM {what} block"),
        other => format!("not PEM: {other:?}"),
    }
}

/// The house rule for secret files: refused when group or others may read it.
fn check_secret_mode(path: &Path) -> Result<(), Error> {
    let meta =
        std::fs::metadata(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Key(KeyError::OpenPermissions {
                path: path.to_path_buf(),
                mode,
            }));
        }
    }
    let _ = meta;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Listen {
    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Binds `addr` (within a tokio runtime).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    /// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets every
    /// request in flight finish (each is bounded by the limits above and by the app's own
    /// timeouts), closes idle connections and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        app: Router,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let Listen { tls, limits } = self;
        let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
        let (stop_tx, stop_rx) = watch::channel(false);
        let limits = Arc::new(limits);
        tokio::pin!(shutdown);
        loop {
            // A slot first: beyond the cap, connections stay in the accept queue.
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = &mut shutdown => break,
            };
            let stream = tokio::select! {
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(_) => {
                        // Out of file descriptors or an aborted connection: wait a little
                        // rather than spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let (tls, app, limits, stop) =
                (tls.clone(), app.clone(), limits.clone(), stop_rx.clone());
            tokio::spawn(async move {
                match tls {
                    None => http(TokioIo::new(stream), app, &limits, stop).await,
                    Some(acceptor) => {
                        if let Ok(Ok(s)) =
                            tokio::time::timeout(limits.handshake, acceptor.accept(stream)).await
                        {
                            http(TokioIo::new(s), app, &limits, stop).await
                        }
                    }
                }
                drop(permit);
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        // Every connection holds a slot until it ends: all slots back means all drained.
        let _ = slots.acquire_many(limits.max_connections).await;
        Ok(())
    }
}

/// Counts requests in flight on one connection while it lives.
struct InFlight(watch::Sender<usize>);

impl InFlight {
    fn new(tx: &watch::Sender<usize>) -> InFlight {
        tx.send_modify(|n| *n += 1);
        InFlight(tx.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Resolves once the connection has served a request and then had none in flight for `idle`.
async fn idle_for(rx: &mut watch::Receiver<usize>, idle: Duration) {
    // Before the first request, the header timeout bounds the wait.
    if rx.changed().await.is_err() {
        return std::future::pending().await;
    }
    loop {
        while *rx.borrow_and_update() > 0 {
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(idle) => return,
            r = rx.changed() => if r.is_err() {
                return std::future::pending().await;
            },
        }
    }
}

/// One HTTP/1.1 connection: hyper with the header timeout, each request's body behind the
/// body deadline, closed when idle for the keep-alive timeout or when the server stops.
async fn http<I>(io: I, app: Router, limits: &Limits, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (count, mut counted) = watch::channel(0usize);
    let body_limit = limits.body;
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::new(&count);
        let late = Arc::new(AtomicBool::new(false));
        let req = req.map(|b| {
            axum::body::Body::new(Deadline {
                inner: b,
                sleep: Box::pin(tokio::time::sleep(body_limit)),
                late: late.clone(),
            })
        });
        let mut router = app.clone();
        async move {
            let resp = router.call(req).await;
            drop(guard);
            if late.load(Ordering::Relaxed) {
                return Ok(too_slow(body_limit));
            }
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .keep_alive(limits.keep_alive.is_some());
    let io = WriteDeadline {
        inner: io,
        limit: limits.write,
        stalled: None,
    };
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let keep_alive = limits.keep_alive.unwrap_or(Duration::from_secs(86_400));
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = idle_for(&mut counted, keep_alive), if !closing && limits.keep_alive.is_some() => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// 408, and the connection closes: the body did not arrive in time.
fn too_slow(limit: Duration) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    let mut r = axum::response::Response::new(axum::body::Body::from(format!(
        "the request body did not arrive within {} s\n",
        limit.as_secs()
    )));
    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A request body that fails once its deadline passes, and says so in `late`.
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    late: Arc<AtomicBool>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|r| r.map_err(Into::into))),
            Poll::Pending => {
                if this.sleep.as_mut().poll(cx).is_ready() {
                    this.late.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err("the request body did not arrive in time".into())))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection whose writes fail once they have made no progress for `limit`: a client that
/// stops reading its response (a slow reader) cannot hold the connection forever.
struct WriteDeadline<I> {
    inner: I,
    limit: Duration,
    /// Since when writing has been blocked, as a timer.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> WriteDeadline<I> {
    fn check<T>(
        &mut self,
        r: Poll<std::io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<T>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not read its response in time",
            )));
        }
        Poll::Pending
    }
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for WriteDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for WriteDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(r, cx)
    }
}
