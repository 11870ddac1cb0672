#[telemark::traced(ret = pretty)]
fn f() -> u32 {
    1
}

fn main() {}
