//! Behind a reverse proxy (issue 15, point 8): the forwarding header is
//! believed only from `trusted_proxies`, and then the per-IP limits see
//! each client. Once with the header written by hand, once behind a real
//! nginx running `deploy/nginx.conf`, the configuration the README shows.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::hostile::{connect_from, exchange, is_error, Answer};
use super::*;

/// `POST /api/v1/conversations` from the loopback address `from`, with
/// `headers` (each line ends in CRLF).
async fn create_from(from: &str, to: SocketAddr, headers: &str) -> Answer {
    let body = r#"{"name":"V"}"#;
    let request = format!(
        "POST /api/v1/conversations HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    exchange(from, to, request.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let s = setup(
        "trusted_proxies = [\"127.0.0.5\"]\n[limits]\nconversations_per_ip_per_minute = 2\n",
        None,
    );
    // Request spans (debug) name the client.
    let srv = Server::start_with_log(&s, "warn,frontdesk::http=debug");
    let addr: SocketAddr = srv.addr.parse().unwrap();

    // An untrusted peer forging a new address each time: ignored, its own
    // address is limited.
    for i in 0..3 {
        let r = create_from(
            "127.0.0.6",
            addr,
            &format!("X-Forwarded-For: 198.51.100.{i}\r\n"),
        )
        .await;
        let expected = if i < 2 { 201 } else { 429 };
        assert_eq!(r.status, expected, "forged #{i}: {}", r.text);
    }
    assert!(is_error(
        &create_from("127.0.0.6", addr, "Forwarded: for=198.51.100.77\r\n").await,
        429,
        "rate_limited"
    ));

    // The trusted proxy speaks for two clients: each has its own limit.
    let via = |client: &str| format!("X-Forwarded-For: {client}\r\n");
    for _ in 0..2 {
        assert_eq!(
            create_from("127.0.0.5", addr, &via("203.0.113.1"))
                .await
                .status,
            201
        );
    }
    let r = create_from("127.0.0.5", addr, &via("203.0.113.1")).await;
    assert!(is_error(&r, 429, "rate_limited"), "{}", r.text);
    assert_eq!(
        create_from("127.0.0.5", addr, &via("203.0.113.2"))
            .await
            .status,
        201
    );
    // What the client wrote in front of the proxy's entry changes nothing.
    let r = create_from("127.0.0.5", addr, &via("192.0.2.99, 203.0.113.1")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    // Without a header, the proxy is the client.
    assert_eq!(create_from("127.0.0.5", addr, "").await.status, 201);
    let log = srv.stop();
    for client in ["client=203.0.113.2", "client=127.0.0.6", "client=127.0.0.5"] {
        assert!(log.contains(client), "{client} in the log:\n{log}");
    }
    for forged in ["client=198.51.100.", "client=192.0.2.99"] {
        assert!(!log.contains(forged), "a forged address logged: {forged}");
    }
}

/// nginx from the system, if there is one.
fn nginx() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/sbin".into()])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// `deploy/nginx.conf` with its placeholders filled in.
fn deploy_conf(listen: &str, frontdesk: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf");
    std::fs::read_to_string(path)
        .expect("deploy/nginx.conf")
        .replace("@LISTEN@", listen)
        .replace("@FRONTDESK@", frontdesk)
}

/// A running nginx, stopped (TERM, so its workers go too) when dropped.
struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Runs `deploy/nginx.conf` inside a throwaway main configuration with
    /// its own prefix, pid file and temp paths; returns once nginx listens
    /// (it says so on stderr).
    fn start(bin: &Path, listen: &str, frontdesk: &str) -> Nginx {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("frontdesk.conf"), deploy_conf(listen, frontdesk)).unwrap();
        let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|t| format!("    {t}_temp_path {};\n", d.join(t).display()))
            .collect();
        // `user root`: as root, workers would otherwise run as nobody and
        // could not enter the private temp dir (not root: ignored).
        let main = format!(
            "user root;\nworker_processes 1;\npid {pid};\nerror_log stderr notice;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    access_log off;\n{temp}    include {conf};\n}}\n",
            pid = d.join("nginx.pid").display(),
            conf = d.join("frontdesk.conf").display(),
        );
        std::fs::write(d.join("nginx.conf"), main).unwrap();
        let mut child = Command::new(bin)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nginx");
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if std::env::var("TEST_LOG").is_ok() {
                    eprintln!("nginx: {line}");
                }
                let _ = tx.send(line);
            }
        });
        let mut seen = String::new();
        loop {
            match rx.recv_timeout(PATIENCE) {
                // Logged once the listening sockets are open.
                Ok(l) if l.contains("start worker process") => break,
                Ok(l) => seen.push_str(&format!("{l}\n")),
                Err(_) => {
                    let _ = child.kill();
                    panic!("nginx did not start:\n{seen}");
                }
            }
        }
        Nginx { child, _dir: dir }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A visitor WebSocket through nginx from the loopback address `from`:
/// the handshake's status.
async fn visitor_socket_from(from: &str, nginx: SocketAddr, v: &Visitor) -> Result<Ws, u16> {
    let stream = connect_from(from, nginx).await;
    let url = format!(
        "ws://{nginx}/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    );
    let req = url.into_client_request().unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    match tokio::time::timeout(PATIENCE, tokio_tungstenite::client_async(req, stream))
        .await
        .expect("handshake in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("handshake: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_real_nginx() {
    let Some(bin) = nginx() else {
        let required = ["CI", "FRONTDESK_REQUIRE_NGINX"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty() && v != "false"));
        assert!(
            !required,
            "nginx is not installed (apt-get install nginx-light)"
        );
        eprintln!("SKIPPED behind_a_real_nginx: nginx is not installed (apt-get install nginx-light; CI requires it)");
        return;
    };
    let s = setup(
        "trusted_proxies = [\"127.0.0.1\"]\n[limits]\nconversations_per_ip_per_minute = 2\nwebsockets_per_ip = 1\n",
        None,
    );
    let srv = Server::start(&s);
    // A free port for nginx: the kernel picks one, nginx takes it over.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _nginx = Nginx::start(&bin, &listen.to_string(), &srv.addr);

    // Two visitors behind nginx, one limit each; a forged header in front
    // of nginx's entry changes nothing.
    let mut visitors = Vec::new();
    for _ in 0..2 {
        let r = create_from("127.0.0.2", listen, "").await;
        assert_eq!(r.status, 201, "{}", r.text);
        visitors.push(Visitor {
            id: r.body["id"].as_str().unwrap().into(),
            token: r.body["token"].as_str().unwrap().into(),
        });
    }
    let r = create_from("127.0.0.2", listen, "X-Forwarded-For: 198.51.100.1\r\n").await;
    assert!(is_error(&r, 429, "rate_limited"), "{}", r.text);
    let r = create_from("127.0.0.3", listen, "").await;
    assert_eq!(r.status, 201, "another visitor: {}", r.text);

    // The widget's WebSocket passes through, and its cap is per visitor.
    let a = &visitors[0];
    let mut sock = visitor_socket_from("127.0.0.2", listen, a)
        .await
        .expect("the socket opens through nginx");
    assert_eq!(
        visitor_socket_from("127.0.0.2", listen, &visitors[1])
            .await
            .err(),
        Some(429),
        "one socket per address"
    );
    let b = Visitor {
        id: r.body["id"].as_str().unwrap().into(),
        token: r.body["token"].as_str().unwrap().into(),
    };
    let mut other = visitor_socket_from("127.0.0.3", listen, &b)
        .await
        .expect("another visitor's socket opens");
    let said = call(
        "POST",
        &format!("http://{listen}/api/v1/conversations/{}/messages", a.id),
        Some(&a.token),
        Some(serde_json::json!({"text": "how much is shipping?", "client_id": "m1"})),
    )
    .await;
    assert_eq!(said.status, 200, "{}", said.text);
    let (m, _) = until_event(&mut sock, "visitor_message").await;
    assert_eq!(m["record"]["event"]["text"], "how much is shipping?");
    let _ = other.close(None).await;
}

/// The README shows `deploy/nginx.conf` as it is, so the two cannot drift.
#[test]
fn the_readme_shows_the_tested_nginx_configuration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let conf = std::fs::read_to_string(root.join("deploy/nginx.conf")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```nginx\n{conf}```\n")),
        "README.md must show deploy/nginx.conf verbatim in a ```nginx block"
    );
}
