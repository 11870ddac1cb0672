#[telemark::timed]
struct Config {
    port: u16,
}

fn main() {}
