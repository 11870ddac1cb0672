#[telemark::circuit_breaker]
fn lookup() -> u32 {
    1
}

fn main() {}
