//! Renders a tour.

/// The whole tour, one line per stop.
pub fn render(stops: &[tour_core::Stop]) -> String {
    stops
        .iter()
        .map(|s| format!("{} ({})", tour_core::greeting(s), tour_derive::describe(s)))
        .collect::<Vec<_>>()
        .join("\n")
}
