type Result<T> = std::result::Result<T, String>;

#[telemark::circuit_breaker]
fn fetch() -> Result<u8> {
    Ok(1)
}

fn main() {}
