#[telemark::circuit_breaker(consecutive_failures = 4294967296)]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
