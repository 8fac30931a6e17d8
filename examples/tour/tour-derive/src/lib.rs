//! Describes stops.

/// A short description of a stop.
pub fn describe(stop: &tour_core::Stop) -> String {
    format!("stop {}", stop.name)
}
