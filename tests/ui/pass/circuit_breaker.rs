#![deny(warnings)]
use std::fmt::Display;

use telemark::{circuit_breaker, counted, timed, traced, BreakerError};

mod vendored {
    pub use telemark;
}

#[derive(Debug)]
enum AppError {
    Breaker(BreakerError),
    Parse(std::num::ParseIntError),
    Missing,
}

impl From<BreakerError> for AppError {
    fn from(error: BreakerError) -> Self {
        AppError::Breaker(error)
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(error: std::num::ParseIntError) -> Self {
        AppError::Parse(error)
    }
}

fn is_missing(error: &AppError) -> bool {
    matches!(error, AppError::Missing)
}

fn is_breaker(error: &AppError) -> bool {
    matches!(error, AppError::Breaker(_))
}

fn default_answer(_: BreakerError) -> Result<u32, AppError> {
    Ok(0)
}

// Every option at once, `?` and an early return in the body.
#[circuit_breaker(
    name = "everything",
    consecutive_failures = 4,
    failure_rate = 50,
    window = 20,
    min_calls = 5,
    slow_call = "1.5s",
    slow_call_rate = 80,
    open_for = "10s",
    open_for_max = "5m",
    half_open_calls = 2,
    ignore_if = is_missing,
    failure_if = is_breaker,
    fallback = default_answer,
    retry(attempts = 3, backoff = "1ms..2ms", jitter = "equal"),
    crate = crate::vendored::telemark
)]
fn parse(text: &str) -> Result<u32, AppError> {
    if text.is_empty() {
        return Err(AppError::Missing);
    }
    Ok(text.trim().parse::<u32>()?)
}

// Error types that already carry refusals.
#[circuit_breaker]
fn io_error() -> std::io::Result<u8> {
    Ok(1)
}

#[circuit_breaker]
fn boxed_error() -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    Err("no".into())
}

// `impl Trait` and generics in the returned value.
#[circuit_breaker(name = "generic")]
fn show<T: Display + Clone>(value: &T) -> Result<impl Display, AppError> {
    Ok(value.clone())
}

// Stacked with instrumentation, written above and below the breaker.
#[traced]
#[counted]
#[circuit_breaker(name = "stacked", timeout = "1s", retry(attempts = 2))]
#[timed]
async fn stacked(n: u32) -> Result<u32, AppError> {
    Ok(n + 1)
}

struct Store {
    items: Vec<String>,
}

impl Store {
    #[circuit_breaker(name = "store")]
    fn first(&mut self) -> Result<&mut String, AppError> {
        self.items.first_mut().ok_or(AppError::Missing)
    }

    #[circuit_breaker(name = "store")]
    async fn count(&self) -> Result<usize, AppError> {
        Ok(self.items.len())
    }

    #[circuit_breaker(name = "store", retry(attempts = 2))]
    fn by_value(self) -> Result<usize, AppError> {
        Ok(self.items.len())
    }
}

#[counted]
impl Store {
    #[circuit_breaker(name = "store-annotated")]
    fn last(&self) -> Result<&String, AppError> {
        self.items.last().ok_or(AppError::Missing)
    }
}

trait Fetch {
    async fn fetch(&self) -> Result<u8, AppError>;
}

impl Fetch for Store {
    #[circuit_breaker(name = "fetch", timeout = "100ms")]
    async fn fetch(&self) -> Result<u8, AppError> {
        Ok(7)
    }
}

fn main() {
    assert_eq!(parse(" 41 ").unwrap(), 41);
    assert!(matches!(parse(""), Err(AppError::Missing)));
    assert!(matches!(parse("x"), Err(AppError::Parse(_))));
    assert_eq!(io_error().unwrap(), 1);
    assert!(boxed_error().is_err());
    assert_eq!(show(&"shown").unwrap().to_string(), "shown");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut store = Store {
        items: vec!["a".to_owned(), "b".to_owned()],
    };
    store.first().unwrap().push('!');
    assert_eq!(store.items[0], "a!");
    assert_eq!(store.last().unwrap(), "b");
    runtime.block_on(async {
        assert_eq!(stacked(1).await.unwrap(), 2);
        assert_eq!(store.count().await.unwrap(), 2);
        assert_eq!(store.fetch().await.unwrap(), 7);
    });
    assert_eq!(store.by_value().unwrap(), 2);
    let names: Vec<String> = telemark::CircuitBreaker::all()
        .iter()
        .map(|breaker| breaker.name().to_owned())
        .collect();
    for expected in ["everything", "generic", "stacked", "store", "store-annotated", "fetch"] {
        assert!(names.iter().any(|name| name == expected), "{expected} in {names:?}");
    }
}
