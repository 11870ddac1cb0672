#[telemark::circuit_breaker(retry(attempts = 3, backoff = "2s..100ms"))]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
