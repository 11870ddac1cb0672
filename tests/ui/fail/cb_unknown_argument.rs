#[telemark::circuit_breaker(threshold = 5)]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
