#[telemark::circuit_breaker(failure_rate = 50, window = 20, min_calls = 50)]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
