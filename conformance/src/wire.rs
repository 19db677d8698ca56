//! HTTP/1.1 requests on the wire, as much as the runner's test servers
//! need ([`super::servers`] says why they are not hyper's): a request's
//! head, and its body framed by `Content-Length` or chunks (with
//! trailers). What a guest sends is bounded, so it cannot make the runner
//! buffer without end.

use std::io::{self, BufRead, Read};

/// Header or trailer fields, names as sent, in order.
pub type Fields = Vec<(String, String)>;

/// The most a head (start line and fields) may take.
const MAX_HEAD: u64 = 64 * 1024;
/// The most a body may take.
const MAX_BODY: u64 = 16 << 20;

/// A message's start line and header fields.
pub struct Head {
    pub start: String,
    pub fields: Fields,
}

/// How a message's body is delimited.
#[derive(Debug, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

/// The first value of the field `name` (any case).
pub fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads a head; `None` when the stream ends before it starts.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut budget = MAX_HEAD;
    let Some(start) = read_line(reader, &mut budget)? else {
        return Ok(None);
    };
    let fields = read_fields(reader, &mut budget)?;
    Ok(Some(Head { start, fields }))
}

/// Fields up to a blank line (or the end of the stream).
fn read_fields(reader: &mut impl BufRead, budget: &mut u64) -> io::Result<Fields> {
    let mut fields = Vec::new();
    while let Some(line) = read_line(reader, budget)? {
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("malformed field line {line:?}")))?;
        fields.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(fields)
}

/// A line without its `\r\n` or `\n`; `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead, budget: &mut u64) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let read = reader.take(*budget).read_until(b'\n', &mut line)?;
    *budget -= read as u64;
    if read == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") && *budget == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "an HTTP head too large"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// How a request's body is delimited, as Python's `http.server` handler
/// of the reference runner reads it: chunked when `Transfer-Encoding` says
/// so, else `Content-Length` bytes (none without it).
pub fn request_framing(fields: &Fields) -> io::Result<Framing> {
    if field(fields, "transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked")) {
        return Ok(Framing::Chunked);
    }
    let length = field(fields, "content-length").map_or(Ok(0), |length| {
        length
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("Content-Length {length:?}")))
    })?;
    Ok(Framing::Length(length))
}

/// Reads a body framed by `framing`, and its trailers (names lowercased)
/// when chunked. A stream that ends early gives what came, as the
/// reference runner's server reads it.
pub fn read_body(reader: &mut impl BufRead, framing: Framing) -> io::Result<(Vec<u8>, Fields)> {
    match framing {
        Framing::Length(length) if length > MAX_BODY => Err(too_large()),
        Framing::Length(length) => {
            let mut body = Vec::new();
            reader.take(length).read_to_end(&mut body)?;
            Ok((body, Vec::new()))
        }
        Framing::Chunked => read_chunks(reader),
    }
}

fn read_chunks(reader: &mut impl BufRead) -> io::Result<(Vec<u8>, Fields)> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD;
    loop {
        let Some(line) = read_line(reader, &mut budget)? else {
            return Ok((body, Vec::new()));
        };
        // A size may carry extensions: `4;name=value`.
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("chunk size {size:?}")))?;
        if size == 0 {
            break;
        }
        if body.len() as u64 + size > MAX_BODY {
            return Err(too_large());
        }
        reader.take(size).read_to_end(&mut body)?;
        // The CRLF that ends each chunk.
        reader.take(2).read_to_end(&mut Vec::new())?;
        budget = MAX_HEAD;
    }
    let trailers = read_fields(reader, &mut budget)?
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    Ok((body, trailers))
}

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "an HTTP body over 16 MiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_and_each_framing_of_a_body_are_read() {
        let mut input: &[u8] = b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
            3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 12 \r\n\r\n";
        let head = read_head(&mut input).unwrap().unwrap();
        assert_eq!(head.start, "POST /p?q=1 HTTP/1.1");
        assert_eq!(field(&head.fields, "HOST"), Some("h"));
        let framing = request_framing(&head.fields).unwrap();
        assert_eq!(framing, Framing::Chunked);
        let (body, trailers) = read_body(&mut input, framing).unwrap();
        assert_eq!(
            (&body[..], &trailers[..]),
            (&b"abcde"[..], &[("x-sum".into(), "12".into())][..])
        );

        let fields = vec![("Content-Length".to_owned(), "2".to_owned())];
        assert_eq!(request_framing(&fields).unwrap(), Framing::Length(2));
        assert_eq!(request_framing(&Vec::new()).unwrap(), Framing::Length(0));
        assert_eq!(read_head(&mut &b""[..]).unwrap().map(|h| h.start), None);
    }

    #[test]
    fn malformed_or_oversized_messages_are_errors() {
        assert!(read_head(&mut &b"GET / HTTP/1.1\r\nno colon\r\n\r\n"[..]).is_err());
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD as usize));
        assert!(read_head(&mut huge.as_bytes()).is_err());
        let fields = vec![("content-length".to_owned(), "x".to_owned())];
        assert!(request_framing(&fields).is_err());
        assert!(read_body(&mut &b"zz\r\n"[..], Framing::Chunked).is_err());
        assert!(read_body(&mut &b""[..], Framing::Length(MAX_BODY + 1)).is_err());
    }
}
