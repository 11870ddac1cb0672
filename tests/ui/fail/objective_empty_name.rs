use telemark::metrics::ObjectivePercentile;
use telemark::Objective;

const SEARCH: Objective = Objective::new("").success_rate(ObjectivePercentile::P99);

#[telemark::counted(objective = SEARCH)]
fn search() {}

fn main() {
    search();
}
