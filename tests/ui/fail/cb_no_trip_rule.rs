#[telemark::circuit_breaker(consecutive_failures = 0)]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
