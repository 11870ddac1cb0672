#[telemark::counted(labels(team = "checkout"), cardinality_limit = 50)]
fn pay() {}

fn main() {}
