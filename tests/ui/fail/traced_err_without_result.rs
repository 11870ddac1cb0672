#[telemark::traced(err)]
fn f() -> u32 {
    1
}

fn main() {}
