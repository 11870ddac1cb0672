#[telemark::circuit_breaker(retry(attempts = 0))]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
