fn cached() -> Result<u8, std::io::Error> {
    Ok(0)
}

#[telemark::circuit_breaker(fallback = cached)]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
