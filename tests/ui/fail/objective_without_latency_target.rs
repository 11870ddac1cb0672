use telemark::metrics::ObjectivePercentile;
use telemark::Objective;

const SEARCH: Objective = Objective::new("search").success_rate(ObjectivePercentile::P99);

#[telemark::timed(objective = SEARCH)]
fn search() {}

fn main() {
    search();
}
