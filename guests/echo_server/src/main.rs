//! A TCP echo server, as the WASI test suite's `sockets-echo` guest: binds
//! the address given as its argument (default `127.0.0.1:0`), prints the
//! address it got as `HOST:PORT` on a line of its own, accepts one
//! connection, sends back what one read of it returns, and exits 0.
//! Errors go to stderr, with exit code 1.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::ExitCode;

fn main() -> ExitCode {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    match serve(&addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo_server {addr}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", listener.local_addr()?)?;
    // The client learns the address from this line before it connects.
    stdout.flush()?;
    let (mut client, _) = listener.accept()?;
    let mut buffer = [0; 4096];
    let read = client.read(&mut buffer)?;
    client.write_all(&buffer[..read])
}
