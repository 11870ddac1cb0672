#[telemark::circuit_breaker]
fn fetch() -> Result<u8, String> {
    Ok(1)
}

fn main() {}
