use std::time::Duration;
use telemark::metrics::ObjectivePercentile;
use telemark::Objective;

const SEARCH: Objective =
    Objective::new("search").latency(Duration::from_millis(250), ObjectivePercentile::P99);

// The counter carries success-rate targets; this objective has only latency.
#[telemark::counted(objective = SEARCH)]
fn search() -> Result<(), ()> {
    Ok(())
}

fn main() {
    let _ = search();
}
