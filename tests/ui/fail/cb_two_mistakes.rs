#[telemark::circuit_breaker(failure_rate = 150, timeout = "2s")]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
