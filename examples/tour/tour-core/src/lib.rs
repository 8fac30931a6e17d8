//! A stop on the tour.

/// One stop.
pub struct Stop {
    /// Its name.
    pub name: &'static str,
}

/// A greeting, louder with the `fancy` feature.
pub fn greeting(stop: &Stop) -> String {
    if cfg!(feature = "fancy") {
        format!("*** welcome to {} ***", stop.name)
    } else {
        format!("welcome to {}", stop.name)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn derive_helper_agrees() {
        let stop = super::Stop { name: "core" };
        assert_eq!(tour_derive::describe(&stop), "stop core");
    }
}
