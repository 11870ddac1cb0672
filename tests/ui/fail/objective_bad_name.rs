use telemark::metrics::ObjectivePercentile;
use telemark::Objective;

// Names go into label values that SLO tools show and select on.
const SEARCH: Objective = Objective::new("search/v2").success_rate(ObjectivePercentile::P99);

#[telemark::counted(objective = SEARCH)]
fn search() {}

fn main() {
    search();
}
