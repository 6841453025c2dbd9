//! How a WebSocket ends when the client misbehaves: the documented close
//! code reaches the client (README: "WebSocket message … rate (close
//! 1008)") and the connection ends with the closing handshake, not a reset.
//! The client here speaks the protocol by hand over a plain TCP socket, so
//! it sees exactly what the server did to the connection.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::*;

/// A masked client frame (a zero mask: the payload goes as it is).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126, "short frames only");
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    f
}

/// The next frame from the server: (opcode, payload).
async fn server_frame(r: &mut BufReader<TcpStream>) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await?;
    let len = match head[1] & 0x7f {
        126 => r.read_u16().await? as u64,
        127 => r.read_u64().await?,
        n => n as u64,
    };
    let mut payload = vec![0; len as usize];
    r.read_exact(&mut payload).await?;
    Ok((head[0] & 0x0f, payload))
}

/// Issue 15, defect 7: a client that keeps sending past the rate limit saw
/// 1006 instead of 1008. The server sent its Close and at once dropped the
/// connection with the client's frames unread, and closing a TCP socket
/// with unread data sends a reset instead of the end of the stream: the
/// client's sends fail, its answering Close cannot be sent, and a browser
/// reports 1006.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blasting_past_the_rate_limit_closes_with_1008_and_no_reset() {
    let s = setup("[limits]\nwebsocket_messages_per_minute = 5\n", None);
    let srv = Server::start(&s);
    let v = srv.new_visitor("A").await;
    let stream = TcpStream::connect(&srv.addr).await.expect("connect");
    let mut r = BufReader::new(stream);
    let upgrade = format!(
        "GET /api/v1/conversations/{}/ws?token={} HTTP/1.1\r\nHost: {}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        v.id, v.token, srv.addr
    );
    r.get_mut()
        .write_all(upgrade.as_bytes())
        .await
        .expect("send upgrade");
    let mut line = String::new();
    r.read_line(&mut line).await.expect("status line");
    assert!(line.starts_with("HTTP/1.1 101"), "{line}");
    while line != "\r\n" {
        line.clear();
        r.read_line(&mut line).await.expect("header");
    }

    // Far more than the server reads at once, in one write: the limit is
    // passed at the 6th frame and the rest is still on its way.
    let typing = client_frame(0x1, br#"{"kind":"typing"}"#);
    let blast = typing.repeat(20_000);
    let sent = tokio::time::timeout(PATIENCE, r.get_mut().write_all(&blast)).await;
    assert!(
        matches!(sent, Ok(Ok(()))),
        "the server reset the connection while the client sent: {sent:?}"
    );

    let code = loop {
        let (op, payload) = tokio::time::timeout(PATIENCE, server_frame(&mut r))
            .await
            .expect("a frame in time")
            .expect("a close frame before the connection ends (1006 otherwise)");
        if op == 0x8 {
            assert!(payload.len() >= 2, "a close code");
            break u16::from_be_bytes([payload[0], payload[1]]);
        }
    };
    assert_eq!(code, 1008);

    // The client answers the Close; the server then ends the connection
    // cleanly (end of stream), not with a reset.
    r.get_mut()
        .write_all(&client_frame(0x8, &1008u16.to_be_bytes()))
        .await
        .expect("the client can answer the Close");
    let mut rest = Vec::new();
    let end = tokio::time::timeout(PATIENCE, r.read_to_end(&mut rest))
        .await
        .expect("the server ends the connection in time");
    assert!(end.is_ok(), "the connection was reset: {end:?}");
}
