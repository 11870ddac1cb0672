use std::future::Future;

#[telemark::circuit_breaker]
fn fetch() -> impl Future<Output = Result<u8, std::io::Error>> {
    async { Ok(1) }
}

fn main() {}
