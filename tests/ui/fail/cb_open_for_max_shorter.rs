#[telemark::circuit_breaker(open_for = "1m", open_for_max = "30s")]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
