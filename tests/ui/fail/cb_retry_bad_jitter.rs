#[telemark::circuit_breaker(retry(jitter = "some"))]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
