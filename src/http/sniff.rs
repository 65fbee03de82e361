//! What a client's first bytes say about the protocol it speaks, and answers it can read when
//! it speaks the wrong one: plain HTTP on the TLS port gets a plain `400` that says to use
//! `https://`; TLS on the plain-HTTP admin port gets a TLS alert (`protocol_version`), a source
//! address no operator may use gets `access_denied` before any handshake; and a
//! refused TLS handshake leaves the connection open long enough for the client to read the
//! alert that says why (otherwise it sees only a reset: curl's `(55) getpeername() failed`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a refused client gets to read our last words before the connection closes.
const LINGER: Duration = Duration::from_secs(2);

/// What the first bytes of a connection look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// A TLS record (a ClientHello starts with the handshake content type, 22).
    Tls,
    /// An HTTP/1.x request line or the HTTP/2 preface: letters, then a space.
    PlainHttp,
    /// Anything else, or nothing yet.
    Other,
}

/// Looks at the first bytes without consuming them, waiting up to `wait` for them.
pub(crate) async fn opening(tcp: &TcpStream, wait: Duration) -> Opening {
    let mut buf = [0u8; 8];
    let Ok(Ok(n)) = tokio::time::timeout(wait, tcp.peek(&mut buf)).await else {
        return Opening::Other;
    };
    classify(&buf[..n])
}

fn classify(first: &[u8]) -> Opening {
    match first {
        [0x16, ..] => Opening::Tls,
        [first, rest @ ..] if first.is_ascii_uppercase() => {
            let word: Vec<u8> = rest
                .iter()
                .copied()
                .take_while(u8::is_ascii_uppercase)
                .collect();
            match rest.get(word.len()) {
                Some(b' ') => Opening::PlainHttp,
                // Not all of the method has arrived yet: it still reads as HTTP.
                None => Opening::PlainHttp,
                Some(_) => Opening::Other,
            }
        }
        _ => Opening::Other,
    }
}

/// Answers plain HTTP on a TLS port with a `400` that says what to do, then closes.
pub(crate) async fn refuse_plain_http(mut tcp: TcpStream, port: u16) {
    let body = format!(
        "This port speaks HTTPS only (TLS with a client certificate): use https://<host>:{port}/ \
         with the CA and your operator certificate, e.g. curl --cacert certs/ca.pem \
         --cert certs/<operator>.pem --key certs/<operator>.key https://localhost:{port}/...\n"
    );
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(answer.as_bytes()).await;
    linger(tcp).await;
}

/// A fatal TLS alert to answer a ClientHello with, instead of a handshake.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Alert {
    /// `access_denied` (49): the source address may not connect.
    AccessDenied = 49,
    /// `protocol_version` (70): the port does not speak TLS at all.
    ProtocolVersion = 70,
}

/// Answers a TLS ClientHello with a fatal `alert` and closes.
pub(crate) async fn refuse_tls(mut tcp: TcpStream, alert: Alert) {
    // Alert record: content type 21, TLS 1.0 record version, length 2, fatal (2), description.
    let _ = tcp
        .write_all(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, alert as u8])
        .await;
    linger(tcp).await;
}

/// Stops sending and reads what the client still sends, until it closes or [`LINGER`] is
/// over, so that our last words are read instead of lost to a reset.
pub(crate) async fn linger(mut tcp: TcpStream) {
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = tcp.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings() {
        assert_eq!(classify(&[0x16, 3, 1]), Opening::Tls);
        assert_eq!(classify(b"GET / HT"), Opening::PlainHttp);
        assert_eq!(classify(b"PRI * HT"), Opening::PlainHttp);
        assert_eq!(classify(b"POS"), Opening::PlainHttp);
        assert_eq!(classify(b"get / "), Opening::Other);
        assert_eq!(classify(b"G3T / "), Opening::Other);
        assert_eq!(classify(b""), Opening::Other);
    }
}
