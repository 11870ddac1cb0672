//! telemark quickstart: annotate functions, run a short workload, serve
//! `/metrics`, `/health`, `/ready` and `/status`, and print spans to the
//! console.
//!
//! ```sh
//! cargo run --example quickstart                  # serves until Ctrl-C
//! cargo run --example quickstart -- --duration 5  # exits after 5 s
//! cargo run --example quickstart -- --listen 127.0.0.1:0
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use telemark::{counted, timed, traced, Traces};

/// A fallible function: `Err` is counted as `result="error"`.
#[counted]
#[timed]
fn parse_quantity(input: &str) -> Result<u32, std::num::ParseIntError> {
    input.trim().parse()
}

/// An async function: timed from its first poll to completion, with a span
/// that records the item and, on `Err`, the error.
#[counted]
#[traced(kind = client, args(item = display), err)]
#[timed(buckets = [0.001, 0.005, 0.01, 0.05])]
async fn fetch_price(item: u32) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(2 + u64::from(item % 4))).await;
    if item % 10 == 7 {
        Err(format!("no price for item {item}"))
    } else {
        Ok(u64::from(item) * 125)
    }
}

struct Cart {
    items: Vec<u32>,
}

/// On an impl block, every method is instrumented as `Cart::method`.
#[counted(labels(team = "checkout"))]
impl Cart {
    fn add(&mut self, item: u32) {
        self.items.push(item);
    }

    #[traced(fields(cart.items = self.items.len()), err)]
    async fn total(&self) -> Result<u64, String> {
        let mut total = 0;
        for &item in &self.items {
            total += fetch_price(item).await?;
        }
        Ok(total)
    }
}

struct Options {
    duration: Option<Duration>,
    listen: String,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        duration: None,
        listen: telemark::telemetry::DEFAULT_LISTEN_ADDRESS.to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--duration" => {
                let value = args.next().ok_or("--duration needs a number of seconds")?;
                let seconds: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| format!("--duration {value}: not a number of seconds"))?;
                options.duration = Some(Duration::from_secs_f64(seconds));
            }
            "--listen" => options.listen = args.next().ok_or("--listen needs host:port")?,
            other => {
                return Err(format!(
                    "unknown option {other}; use --duration S, --listen ADDR"
                ))
            }
        }
    }
    Ok(options)
}

/// A plain HTTP GET, to show what a Prometheus scrape sees.
fn http_get(address: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}

async fn workload(round: u32) {
    for input in ["3", "12", "seven", " 40 "] {
        let _ = parse_quantity(input);
    }
    let mut cart = Cart { items: Vec::new() };
    for item in round..round + 4 {
        cart.add(item);
    }
    let _ = cart.total().await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let telemetry = telemark::builder!()
        .listen(&options.listen)
        .readiness_check("price-service", || async { Ok(()) })
        .traces(Traces::from_env())
        .start()?;
    let address = telemetry.local_addr().expect("the endpoints are served");

    println!("Spans of a first workload, as the console exporter prints them:");
    for round in 0..2 {
        workload(round).await;
    }
    telemetry.flush_traces(Duration::from_secs(2));
    println!();

    println!(
        "telemark quickstart: service_name={}",
        telemetry.service_name()
    );
    println!("  metrics  http://{address}/metrics");
    println!("  health   http://{address}/health");
    println!("  ready    http://{address}/ready");
    println!("  status   http://{address}/status");
    println!();
    println!("An excerpt of /metrics after a short workload:");
    let metrics = tokio::task::spawn_blocking(move || http_get(address, "/metrics")).await??;
    for line in metrics.lines().filter(|line| {
        line.starts_with("function_calls_total{")
            || line.starts_with("function_calls_concurrent{")
            || line.starts_with("function_calls_duration_seconds_count{")
            || line.starts_with("build_info{")
    }) {
        println!("  {line}");
    }

    let started = Instant::now();
    match options.duration {
        Some(duration) => println!("\nServing for {duration:?} while the workload runs."),
        None => println!("\nServing until Ctrl-C while the workload runs."),
    }
    let mut round = 2;
    while options
        .duration
        .is_none_or(|duration| started.elapsed() < duration)
    {
        workload(round).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    telemetry.shutdown();
    Ok(())
}
