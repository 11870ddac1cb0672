#[telemark::circuit_breaker]
fn notify() {}

fn main() {}
