#[telemark::counted(objective = "api")]
fn search() {}

fn main() {
    search();
}
