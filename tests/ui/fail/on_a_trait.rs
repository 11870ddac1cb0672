#[telemark::counted]
trait Store {
    fn get(&self) -> u8;
}

fn main() {}
