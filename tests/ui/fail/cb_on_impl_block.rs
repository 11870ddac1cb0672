struct Client;

#[telemark::circuit_breaker]
impl Client {
    fn fetch(&self) -> Result<u8, std::io::Error> {
        Ok(1)
    }
}

fn main() {}
