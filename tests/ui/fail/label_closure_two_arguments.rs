#[telemark::counted(labels(reason = |value, extra| value))]
fn pick() -> bool {
    true
}

fn main() {}
