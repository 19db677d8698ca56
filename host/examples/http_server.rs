//! An async HTTP server (hyper on Tokio) that answers each request by
//! running a guest, a `wasm32-wasip1` command, in a sandbox of its own: the
//! request's body is the guest's stdin, its method and path are in the
//! guest's environment (`REQUEST_METHOD`, `REQUEST_PATH`), and its stdout is
//! the response: status 200 when it exits 0, else 500 with how it ended and
//! its stderr. Each run is awaited with `Sandbox::run_async` under a 2 s
//! timeout; a client that hangs up drops the run's future, which stops the
//! guest.
//!
//! Usage: http_server GUEST.wasm [ADDRESS]   (ADDRESS defaults to 127.0.0.1:8080)
//!
//! With the `csv_processor` guest (`cargo xtask build-guests`), which sums
//! the CSV it reads:
//! `curl --data-binary $'1,2\n3,4\n' http://127.0.0.1:8080/` prints `10`.

use std::convert::Infallible;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use host::{GuestModule, Limits, Runtime, Sandbox};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
// hyper-util's adapter from Tokio's I/O traits to hyper's, as
// wasmtime-wasi-http re-exports it.
use wasmtime_wasi_http::io::TokioIo;

/// The largest request body passed on to a guest.
const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a guest may take to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let guest = args.next().context("usage: http_server GUEST.wasm [ADDRESS]")?;
    let address = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let module = Runtime::shared().load_file(&guest)?;
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    println!("serving {} on http://{}/", module.name(), listener.local_addr()?);
    serve(listener, module).await
}

/// Serves `module` on `listener`, a task per connection.
async fn serve(listener: TcpListener, module: GuestModule) -> Result<()> {
    loop {
        let (stream, _) = listener.accept().await.context("cannot accept a connection")?;
        let module = module.clone();
        tokio::spawn(async move {
            let respond = hyper::service::service_fn(move |request| respond(module.clone(), request));
            // A connection's failure (a client gone mid-request) ends it alone.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), respond)
                .await;
        });
    }
}

/// Runs the guest with `request`'s data, and answers with what it wrote.
async fn respond(module: GuestModule, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY_BYTES).collect().await else {
        return Ok(reply(
            StatusCode::BAD_REQUEST,
            "cannot read the request's body (at most 1 MiB)\n",
        ));
    };
    let sandbox = Sandbox::new()
        .stdin(body.to_bytes())
        .env("REQUEST_METHOD", head.method.as_str())
        .env("REQUEST_PATH", head.uri.path())
        .limits(Limits::default().timeout(Some(TIMEOUT)));
    // Awaited: the guest runs on a thread of its own while this task's
    // worker serves other connections.
    Ok(match sandbox.run_async(&module).await {
        Ok(outcome) if outcome.success() => reply(StatusCode::OK, outcome.stdout),
        Ok(outcome) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the guest {outcome}\n{}", outcome.stderr_text()),
        ),
        Err(error) => reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    })
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `body` to the server at `address` and returns the status and
    /// the body of its answer.
    async fn post(address: std::net::SocketAddr, body: &'static str) -> (StatusCode, String) {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = Request::post("/sum")
            .header(hyper::header::HOST, address.to_string())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The server on a loopback port of the system's choosing, answering
    /// with the `csv_processor` guest, on a current-thread runtime.
    #[tokio::test]
    async fn each_request_is_answered_by_a_run_of_the_guest() {
        let guest = xtask::guests::artifact("csv_processor").unwrap();
        let module = Runtime::shared().load_file(guest).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, module));

        assert_eq!(post(address, "1,2\n3,4\n").await, (StatusCode::OK, "10\n".to_owned()));
        let (status, body) = post(address, "1,x\n").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.starts_with("the guest exited with code 1\n"), "{body}");
        assert!(body.contains("error: "), "the guest's stderr: {body}");
        server.abort();
    }
}
