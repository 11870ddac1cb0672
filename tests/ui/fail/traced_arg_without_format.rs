#[telemark::traced(args(id))]
fn f(id: u32) {
    let _ = id;
}

fn main() {}
