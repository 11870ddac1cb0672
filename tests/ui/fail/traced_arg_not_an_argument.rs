#[telemark::traced(args(user = display))]
fn f(id: u32) {
    let _ = id;
}

fn main() {}
