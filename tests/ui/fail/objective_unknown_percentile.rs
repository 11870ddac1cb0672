use telemark::metrics::ObjectivePercentile;
use telemark::Objective;

// The shipped rules know 90, 95, 99 and 99.9 only.
const SEARCH: Objective = Objective::new("search").success_rate(ObjectivePercentile::P98);

#[telemark::counted(objective = SEARCH)]
fn search() {}

fn main() {
    search();
}
