//! The tour's stops, for consumers that want them without running the binary.

/// The stops of the tour.
pub fn stops() -> Vec<tour_core::Stop> {
    vec![tour_core::Stop { name: "registry" }, tour_core::Stop { name: "release" }]
}
