//! An async HTTP server (hyper on Tokio) that answers each request by
//! running a plugin (`guests/plugin`, the WIT world
//! `guests/plugin/wit/plugin.wit`) with the request's data in the
//! embedder's state: the request's id, method, path and body are the data
//! (`Sandbox::data`) of an instance of its own, and the world's
//! `host.lookup` import reads them. The path's segments are the words the
//! plugin's `process` export is given: each that names a field (`id`,
//! `method`, `path`, `body`) comes back as its value. Its typed result is
//! the response: 200 with its text, or 400 with the plugin's own error;
//! 500 for a run that failed (a trap, the 2 s timeout). Instantiation and
//! call are awaited (`instantiate_component_async`,
//! `call_bindings_async`); a client that hangs up drops their future,
//! which stops the guest.
//!
//! Usage: `cargo run -p host --example http_server -- [ADDRESS]` (ADDRESS
//! defaults to 127.0.0.1:8080; the plugin is built first, as the tests do).
//! `curl --data hello http://127.0.0.1:8080/id/method/body` prints
//! `#1: 1 POST hello`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use host::wasmtime::component::{HasSelf, bindgen};
use host::{GuestModule, Limits, Runtime, Sandbox};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
// hyper-util's adapter from Tokio's I/O traits to hyper's, as
// wasmtime-wasi-http re-exports it.
use wasmtime_wasi_http::io::TokioIo;

bindgen!({ path: "../guests/plugin/wit", world: "plugin", exports: { default: async } });

/// The largest request body passed on to a guest.
const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a guest may take to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The embedder's data for one request, which the plugin's imports read.
#[derive(Clone, Debug)]
struct RequestData {
    id: u64,
    method: String,
    path: String,
    body: String,
    /// How often the plugin used the host for this request.
    uses: u32,
}

impl example::plugin::host::Host for RequestData {
    fn lookup(&mut self, key: String) -> Option<String> {
        match key.as_str() {
            "id" => Some(self.id.to_string()),
            "method" => Some(self.method.clone()),
            "path" => Some(self.path.clone()),
            "body" => Some(self.body.clone()),
            _ => None,
        }
    }

    fn bump(&mut self) -> u32 {
        self.uses += 1;
        self.uses
    }
}

/// What every request's run shares.
struct Server {
    plugin: GuestModule,
    /// The limits and the world's imports; each request adds its data.
    sandbox: Sandbox,
    /// How many requests came before: the next one's id, less one.
    requests: AtomicU64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let path = xtask::guests::component("plugin")?;
    let plugin = Runtime::shared().load_file(&path)?;
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    println!("serving {} on http://{}/", plugin.name(), listener.local_addr()?);
    serve(listener, plugin).await
}

/// Serves `plugin` on `listener`, a task per connection.
async fn serve(listener: TcpListener, plugin: GuestModule) -> Result<()> {
    let server = Arc::new(Server {
        plugin,
        sandbox: Sandbox::new()
            .limits(Limits::default().timeout(Some(TIMEOUT)))
            .component_bindings(|linker, data| Plugin::add_to_linker::<_, HasSelf<RequestData>>(linker, data)),
        requests: AtomicU64::new(0),
    });
    loop {
        let (stream, _) = listener.accept().await.context("cannot accept a connection")?;
        let server = server.clone();
        tokio::spawn(async move {
            let respond = hyper::service::service_fn(move |request| respond(server.clone(), request));
            // A connection's failure (a client gone mid-request) ends it alone.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), respond)
                .await;
        });
    }
}

/// Runs the plugin with `request`'s data, and answers with its result.
async fn respond(server: Arc<Server>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY_BYTES).collect().await else {
        return Ok(reply(
            StatusCode::BAD_REQUEST,
            "cannot read the request's body (at most 1 MiB)\n",
        ));
    };
    let data = RequestData {
        id: server.requests.fetch_add(1, Ordering::Relaxed) + 1,
        method: head.method.to_string(),
        path: head.uri.path().to_owned(),
        body: String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        uses: 0,
    };
    // The path's segments are the words the plugin processes.
    let words = data.path.replace('/', " ");
    Ok(match process(&server, data, words).await {
        Ok(Ok(text)) => reply(StatusCode::OK, text + "\n"),
        Ok(Err(refusal)) => reply(StatusCode::BAD_REQUEST, refusal + "\n"),
        Err(error) => reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    })
}

/// The plugin's `process` of `words`, in an instance of its own that holds
/// `data`. Awaited: the guest runs on a thread of its own while this
/// task's worker serves other connections.
async fn process(server: &Server, data: RequestData, words: String) -> Result<Result<String, String>, host::Error> {
    let sandbox = server.sandbox.clone().data(data);
    let mut guest = sandbox.instantiate_component_async(&server.plugin).await?;
    let plugin = guest.bindings(|store, instance| Plugin::new(store, instance))?;
    guest
        .call_bindings_async(async move |store| plugin.call_process(store, &words).await)
        .await
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `body` to `path` on the server at `address` and returns the
    /// status and the body of its answer.
    async fn post(address: std::net::SocketAddr, path: &str, body: &'static str) -> (StatusCode, String) {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = Request::post(path)
            .header(hyper::header::HOST, address.to_string())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The server on a loopback port of the system's choosing, on a
    /// current-thread runtime: each request's plugin sees that request's
    /// data, and its own error is a response too.
    #[tokio::test]
    async fn each_request_is_answered_by_the_plugin_with_its_own_data() {
        let plugin = Runtime::shared()
            .load_file(xtask::guests::component("plugin").unwrap())
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, plugin));

        assert_eq!(
            post(address, "/id/method/path/body/other", "hello").await,
            (
                StatusCode::OK,
                "#1: 1 POST /id/method/path/body/other hello other\n".to_owned()
            )
        );
        assert_eq!(
            post(address, "/", "hello").await,
            (StatusCode::BAD_REQUEST, "no word to process\n".to_owned())
        );

        // Two requests in flight at once, each answered with its own data.
        let (first, second) = tokio::join!(post(address, "/id/body", "first"), post(address, "/id/body", "second"));
        let [(first_id, first_body), (second_id, second_body)] = [first, second].map(|(status, text)| {
            assert_eq!(status, StatusCode::OK, "{text}");
            let (id, body) = text.strip_prefix("#1: ").unwrap().trim_end().split_once(' ').unwrap();
            (id.to_owned(), body.to_owned())
        });
        assert_eq!([first_body, second_body], ["first", "second"]);
        let mut ids = [first_id, second_id];
        ids.sort();
        assert_eq!(ids, ["3", "4"], "each request its own id");
        server.abort();
    }
}
