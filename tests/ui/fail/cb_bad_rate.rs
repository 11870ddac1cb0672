#[telemark::circuit_breaker(failure_rate = 150)]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
