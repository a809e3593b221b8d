//! A minimal HTTP/1.x server for the metrics endpoint: one request per connection, `GET`
//! only, the reply built by the caller. Prometheus scrapes with plain GETs and copes with a
//! closed connection after each answer, so nothing more is needed.
//!
//! Limits: the request head may be at most [`HEAD_BYTES_MAX`]; a client must send it within
//! [`REQUEST_DEADLINE`], and the connection closes after the reply.

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::future::Future;
use std::time::Duration;

/// Longest request head (request line and headers) read.
pub const HEAD_BYTES_MAX: usize = 8 * 1024;
/// Time a client has to send its request.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// A reply: status code, content type, body.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// The method and path of a request head (`GET /metrics HTTP/1.1`), or why it is refused.
pub fn parse_request_line(head: &[u8]) -> Result<(&str, &str), u16> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| 400u16)?;
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") || words.next().is_some() {
        return Err(400);
    }
    // The query string is not used: `/metrics?x=y` is `/metrics`.
    let path = target.split('?').next().unwrap_or(target);
    Ok((method, path))
}

/// Reads one request from `stream`, answers it with `handle(path)` (for GETs), and closes.
pub async fn serve_one<F, Fut>(mut stream: TcpStream, handle: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Response>,
{
    let head = monoio::time::timeout(REQUEST_DEADLINE, read_head(&mut stream)).await;
    let response = match head {
        Err(_) => return,
        Ok(Err(status)) => Response::text(status, reason(status)),
        Ok(Ok(head)) => match parse_request_line(&head) {
            Err(status) => Response::text(status, reason(status)),
            Ok(("GET", path)) => handle(path.to_string()).await,
            Ok(_) => Response::text(405, "only GET is served\n"),
        },
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    )
    .into_bytes();
    out.extend_from_slice(&response.body);
    let (_, _) = stream.write_all(out).await;
    let _ = monoio::io::AsyncWriteRent::shutdown(&mut stream).await;
}

/// Reads until the blank line that ends the head; an error status when it is too long or
/// the peer leaves.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, u16> {
    let mut head: Vec<u8> = Vec::with_capacity(1024);
    // Bounded: every pass reads at least one byte or ends, and the head is capped.
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() >= HEAD_BYTES_MAX {
            return Err(431);
        }
        let buf = Vec::with_capacity(HEAD_BYTES_MAX - head.len());
        let (res, buf) = stream.read(buf).await;
        match res {
            Ok(0) | Err(_) => return Err(400),
            Ok(_) => head.extend_from_slice(&buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_request_line;

    /// Request lines are split into method and path; anything else is a bad request.
    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(("GET", "/metrics"))
        );
        assert_eq!(
            parse_request_line(b"GET /metrics?a=b HTTP/1.0\r\n\r\n"),
            Ok(("GET", "/metrics"))
        );
        assert_eq!(parse_request_line(b"GET /metrics\r\n\r\n"), Err(400));
        assert_eq!(parse_request_line(b"\xff\r\n\r\n"), Err(400));
        assert_eq!(parse_request_line(b"GET / SPDY/3\r\n\r\n"), Err(400));
    }
}
