#[telemark::traced(args())]
fn f(id: u32) {
    let _ = id;
}

fn main() {}
