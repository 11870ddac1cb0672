#[telemark::traced(err)]
#[track_caller]
fn f() -> Result<(), String> {
    Ok(())
}

fn main() {}
