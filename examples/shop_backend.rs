//! A tiny shop backend to try actions with (README, "Actions";
//! examples/README.md): `cargo run --example shop_backend [addr]`
//! (default 127.0.0.1:8787). Standard library only, plus the HMAC crates
//! frontdesk already uses.
//!
//! It serves two made-up orders in two shapes:
//! - `GET /orders/{id}`: a generic JSON endpoint (intents/order_status.toml);
//! - `GET /wp-json/wc/v3/orders/{id}`: WooCommerce's REST shape
//!   (examples/intents/order_status_woocommerce.toml).
//!
//! Every request must carry a valid frontdesk signature: the HMAC-SHA256,
//! with `FRONTDESK_ACTIONS__SIGNING_SECRET`, of
//! `{X-Frontdesk-Timestamp}\n{METHOD}\n{path?query}\n{body}`, sent as
//! `X-Frontdesk-Signature: sha256=<hex>`, with a timestamp within five
//! minutes of this clock. When `FRONTDESK_SECRET_SHOP_API_KEY` is set, the
//! generic endpoint also wants it in `X-Api-Key` (and the WooCommerce one
//! `Authorization: Basic …` equal to `FRONTDESK_SECRET_WOO_AUTH`, if set).
//! Anything else is answered 401; an unknown order 404.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// (id, status, email, postcode, tracking, expected, items)
type Order = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, u32)],
);

const ORDERS: &[Order] = &[
    (
        "123456",
        "shipped",
        "ann@example.com",
        "SW1A 1AA",
        "https://track.example/123456",
        "Thursday",
        &[("Rain jacket", 1), ("Wool socks", 2)],
    ),
    (
        "654321",
        "processing",
        "bob@example.com",
        "10115",
        "",
        "",
        &[("Hiking boots", 1)],
    ),
];

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8787".into());
    let secret = std::env::var("FRONTDESK_ACTIONS__SIGNING_SECRET").unwrap_or_default();
    if secret.len() < 16 {
        eprintln!("set FRONTDESK_ACTIONS__SIGNING_SECRET (at least 16 characters), the same as frontdesk's");
        std::process::exit(2);
    }
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    println!("shop backend on http://{addr} (orders 123456, 654321)");
    for conn in listener.incoming().flatten() {
        let secret = secret.clone();
        std::thread::spawn(move || {
            let _ = serve(conn, &secret);
        });
    }
}

fn serve(mut conn: TcpStream, secret: &str) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(64 * 1024);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let (status, reply) = answer(&method, &target, &body, &header, secret);
    let out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
    conn.write_all(out.as_bytes())
}

fn answer<'a>(
    method: &str,
    target: &str,
    body: &[u8],
    header: &dyn Fn(&str) -> Option<&'a str>,
    secret: &str,
) -> (&'static str, String) {
    let unauthorized = (
        "401 Unauthorized",
        r#"{"error":"unauthorized"}"#.to_string(),
    );
    if !signed(method, target, body, header, secret) {
        return unauthorized;
    }
    let (woo, id) = if let Some(id) = target.strip_prefix("/wp-json/wc/v3/orders/") {
        (true, id)
    } else if let Some(id) = target.strip_prefix("/orders/") {
        (false, id)
    } else {
        return ("404 Not Found", r#"{"error":"no such route"}"#.to_string());
    };
    let wanted = if woo {
        std::env::var("FRONTDESK_SECRET_WOO_AUTH").ok()
    } else {
        std::env::var("FRONTDESK_SECRET_SHOP_API_KEY").ok()
    };
    let given = header(if woo { "authorization" } else { "x-api-key" });
    if wanted.is_some_and(|w| given != Some(w.as_str())) {
        return unauthorized;
    }
    let Some(o) = ORDERS.iter().find(|o| o.0 == id) else {
        return ("404 Not Found", r#"{"error":"no such order"}"#.to_string());
    };
    let (id, status, email, postcode, tracking, expected, items) = *o;
    let json = if woo {
        // The fields WooCommerce's GET /wp-json/wc/v3/orders/{id} returns
        // that the example reads (the real reply has many more).
        let lines: Vec<serde_json::Value> = items
            .iter()
            .map(|(n, q)| serde_json::json!({"name": n, "quantity": q}))
            .collect();
        serde_json::json!({
            "id": id.parse::<u64>().unwrap_or(0),
            "status": status,
            "currency": "EUR",
            "billing": {"email": email},
            "shipping": {"postcode": postcode},
            "line_items": lines,
        })
    } else {
        let lines: Vec<serde_json::Value> = items
            .iter()
            .map(|(n, q)| serde_json::json!({"name": n, "quantity": q}))
            .collect();
        serde_json::json!({
            "id": id,
            "status": status,
            "email": email,
            "postcode": postcode,
            "tracking_url": tracking,
            "expected_delivery": expected,
            "items": lines,
        })
    };
    ("200 OK", json.to_string())
}

/// Checks frontdesk's signature and the timestamp's freshness.
fn signed<'a>(
    method: &str,
    target: &str,
    body: &[u8],
    header: &dyn Fn(&str) -> Option<&'a str>,
    secret: &str,
) -> bool {
    let (Some(ts), Some(sig)) = (
        header("x-frontdesk-timestamp"),
        header("x-frontdesk-signature"),
    ) else {
        return false;
    };
    let Ok(t) = ts.parse::<i64>() else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if (now - t).abs() > 300 {
        return false;
    }
    let Some(hex) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let Some(given) = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{ts}\n{method}\n{target}\n").as_bytes());
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&given).is_ok()
}
