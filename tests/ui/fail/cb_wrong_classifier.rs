fn is_not_found(status: &u16) -> bool {
    *status == 404
}

#[telemark::circuit_breaker(ignore_if = is_not_found)]
fn fetch() -> Result<u8, std::io::Error> {
    Ok(1)
}

fn main() {}
