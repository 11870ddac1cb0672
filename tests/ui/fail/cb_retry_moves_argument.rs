#[telemark::circuit_breaker(retry(attempts = 3))]
fn send(message: String) -> Result<usize, std::io::Error> {
    let owned: String = message;
    Ok(owned.len())
}

fn main() {}
