#[telemark::counted]
#[track_caller]
fn f() -> u8 {
    1
}

fn main() {}
