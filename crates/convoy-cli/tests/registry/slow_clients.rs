//! Slow and silent clients cannot hold the registry: half-open connections
//! do not starve real requests, and every kind of stall is cut off.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use convoy_test_support::{Server, http};

use crate::validation::stored_blobs;
use crate::{index_lines, server};

fn addr(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; how long that took, and
/// what it sent first.
fn wait_for_close(mut stream: TcpStream, limit: Duration) -> (Duration, String) {
    let start = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("connection still open after {limit:?}: {e}"),
        }
    }
    (start.elapsed(), String::from_utf8_lossy(&seen).into_owned())
}

#[test]
fn five_hundred_half_open_connections_do_not_block_real_requests() {
    // Long timeouts, so it is the server's design and not a timeout that
    // keeps the real request answering.
    let server = server(&["--header-timeout-secs", "300", "--idle-timeout-secs", "300"]);
    let mut held = Vec::new();
    for i in 0..500 {
        let mut s = TcpStream::connect(addr(&server)).unwrap();
        // Half a request head, never finished.
        write!(
            s,
            "GET /index/config.json HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: "
        )
        .unwrap();
        held.push(s);
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for _ in 0..5 {
        let resp = client
            .get(format!("{}/index/config.json", server.url))
            .send()
            .expect("a real request answers beside 500 half-open connections");
        assert_eq!(resp.status(), 200);
    }
    // The half-open connections are held, not dropped.
    let mut probe = held.pop().unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 16];
    let read = probe.read(&mut buf);
    assert!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "{read:?}"
    );
}

#[test]
fn a_half_sent_request_head_is_closed_within_a_minute() {
    let server = server(&["--header-timeout-secs", "2", "--idle-timeout-secs", "300"]);
    let mut s = TcpStream::connect(addr(&server)).unwrap();
    write!(s, "GET /index/config.json HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (elapsed, _) = wait_for_close(s, Duration::from_secs(60));
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");

    // Dribbling a byte at a time does not reset the clock.
    let mut s = TcpStream::connect(addr(&server)).unwrap();
    let start = Instant::now();
    let mut closed = false;
    for b in b"GET /index/config.json HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        if start.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    if !closed {
        let (_, _) = wait_for_close(s, Duration::from_secs(60));
    }
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn silent_connections_are_closed_and_excess_ones_wait_for_a_slot() {
    let server = server(&[
        "--max-connections",
        "4",
        "--idle-timeout-secs",
        "1",
        "--header-timeout-secs",
        "300",
    ]);
    // Four silent connections fill every slot.
    let silent: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(addr(&server)).unwrap())
        .collect();
    // A fifth waits in the backlog and is served once an idle one closes.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/index/config.json", server.url))
        .send()
        .expect("served once a slot frees");
    assert_eq!(resp.status(), 200);
    for s in silent {
        let (elapsed, _) = wait_for_close(s, Duration::from_secs(60));
        assert!(elapsed < Duration::from_secs(60));
    }
}

#[test]
fn a_stalled_upload_body_times_out_and_stores_nothing() {
    let server = server(&["--body-timeout-secs", "2"]);
    let token = server.token("alice", &[]);
    let mut s = TcpStream::connect(addr(&server)).unwrap();
    write!(
        s,
        "PUT /api/v1/crates/new HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    s.write_all(&[0u8; 100]).unwrap();
    let (elapsed, response) = wait_for_close(s, Duration::from_secs(60));
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert_eq!(stored_blobs(&server), 0);
    assert!(index_lines(&server, "foo").is_none());
    // The server is fine afterwards.
    assert_eq!(
        http()
            .get(format!("{}/index/config.json", server.url))
            .send()
            .unwrap()
            .status(),
        200
    );
}
