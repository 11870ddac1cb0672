#[telemark::circuit_breaker(timeout = "2s")]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
