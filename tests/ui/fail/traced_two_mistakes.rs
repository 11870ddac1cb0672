#[telemark::traced(args(user = display), ret = pretty)]
fn f(id: u32) -> u32 {
    id
}

fn main() {}
