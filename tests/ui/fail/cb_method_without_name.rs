struct Client;

impl Client {
    #[telemark::circuit_breaker]
    fn fetch(&self) -> Result<u8, std::io::Error> {
        Ok(1)
    }
}

fn main() {}
