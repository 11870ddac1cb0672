//! Clients that connect and send nothing, or send a byte at a time, cannot
//! take the endpoints over, nor use the descriptors the host process needs.
//! The server half runs in a child process with a lowered descriptor limit.
#![cfg(feature = "server")]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use telemark::telemetry::EndpointLimits;

const DESCRIPTORS: u32 = 128;

/// The server half, run in a child process by the test below (not a test
/// of its own): serves the endpoints, and reports every 50 ms whether this
/// process can still open a file, until its standard input closes.
#[test]
#[ignore = "the server half of idle_and_slow_clients_cannot_take_the_endpoints_or_the_descriptors"]
fn server_in_a_child_process() {
    let mut limits = EndpointLimits::default();
    limits.max_connections = 32;
    limits.header_read_timeout = Duration::from_secs(1);
    let telemetry = telemark::builder!()
        .listen("127.0.0.1:0")
        .metrics_recorder(false)
        .endpoint_limits(limits)
        .start()
        .expect("telemetry starts");
    println!("listening {}", telemetry.local_addr().unwrap());
    let stdin_closed = std::thread::spawn(|| {
        let mut rest = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut rest);
    });
    while !stdin_closed.is_finished() {
        if let Err(error) = File::open("/dev/null") {
            println!("cannot open a file: {error}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("done");
}

fn get_within(address: SocketAddr, path: &str, limit: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&address, limit).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the server closed `stream` (read gives end of file or an error)
/// within `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn idle_and_slow_clients_cannot_take_the_endpoints_or_the_descriptors() {
    let test_binary = std::env::current_exe().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {DESCRIPTORS} && exec \"$0\" --ignored --exact server_in_a_child_process --nocapture --test-threads 1"
        ))
        .arg(test_binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address: SocketAddr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            // libtest may print the test's name on the same line first.
            let (_, address) = line.split_once("listening ")?;
            address.trim().parse().ok()
        })
        .expect("the child listens");

    // More idle connections than the child has descriptors, never sending
    // a byte.
    let mut idle: Vec<TcpStream> = (0..3 * DESCRIPTORS)
        .filter_map(|_| TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok())
        .collect();
    assert!(
        idle.len() > DESCRIPTORS as usize,
        "{} connections",
        idle.len()
    );
    let asked = Instant::now();
    assert_eq!(
        get_within(address, "/metrics", Duration::from_secs(2)),
        Some(200)
    );
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "/metrics took {:?}",
        asked.elapsed()
    );

    // Slow clients: a byte of a request every 200 ms.
    let mut slow: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    let started = Instant::now();
    let mut closed = vec![false; slow.len()];
    while started.elapsed() < Duration::from_secs(3) && closed.iter().any(|c| !c) {
        for (stream, closed) in slow.iter_mut().zip(&mut closed) {
            if !*closed && stream.write_all(b"G").is_err() {
                *closed = true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for (stream, closed) in slow.iter_mut().zip(&closed) {
        assert!(
            *closed || closed_within(stream, Duration::from_millis(500)),
            "a slow client outlived the header-read timeout"
        );
    }
    // The idle ones were closed too, by the cap or by the timeout.
    for stream in &mut idle {
        assert!(
            closed_within(stream, Duration::from_secs(2)),
            "an idle connection stayed open"
        );
    }
    assert_eq!(
        get_within(address, "/health", Duration::from_secs(2)),
        Some(200)
    );

    drop(child.stdin.take());
    let report: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = child.wait();
    assert!(
        report.iter().any(|line| line.contains("done")),
        "{report:?}"
    );
    assert!(
        !report
            .iter()
            .any(|line| line.contains("cannot open a file")),
        "the host process ran out of descriptors: {report:?}"
    );
}
