#[telemark::circuit_breaker(name = " ")]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
