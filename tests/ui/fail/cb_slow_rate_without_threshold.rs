#[telemark::circuit_breaker(slow_call_rate = 50)]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
