#[telemark::circuit_breaker(window = 50)]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
