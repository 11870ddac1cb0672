#[telemark::circuit_breaker(open_for = "10 parsecs")]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
