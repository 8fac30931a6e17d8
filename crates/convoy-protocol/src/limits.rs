//! How large a published version may make the index.
//!
//! Every resolving client downloads a crate's whole index file, so one
//! publisher with large feature maps could otherwise make every user fetch
//! megabytes per crate, and the server hold them in memory. The numbers are
//! crates.io's (`publish_limits.rs`, `crates_io_validation`), plus a cap on
//! the rendered line itself, which crates.io bounds only through its 1 MiB
//! metadata limit. These rules do not depend on where versions are stored,
//! so every backend applies the same ones.

use crate::index::IndexPackage;
use crate::publish::NewCrate;
use crate::text::quote;

/// Limits on what one version adds to the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLimits {
    /// Most features a version may declare (crates.io: 300).
    pub max_features: usize,
    /// Most values one feature may list (crates.io: 300).
    pub max_feature_values: usize,
    /// Most dependencies, of every kind together (crates.io: 500).
    pub max_dependencies: usize,
    /// Largest rendered index line, in bytes.
    pub max_line_bytes: usize,
}

impl IndexLimits {
    /// crates.io's feature and dependency counts; 256 KiB a line, which is
    /// several times the longest line on crates.io's index and still keeps
    /// 30 hostile publishes under 8 MiB instead of the 26 MB seen.
    pub const DEFAULT: Self = Self {
        max_features: 300,
        max_feature_values: 300,
        max_dependencies: 500,
        max_line_bytes: 256 * 1024,
    };
}

impl Default for IndexLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a version would bloat the index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexLimitError {
    /// Over [`IndexLimits::max_features`].
    #[error("crate has {count} features, the maximum is {max}")]
    TooManyFeatures {
        /// Features declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Over [`IndexLimits::max_feature_values`].
    #[error("feature `{feature}` lists {count} values, the maximum is {max}")]
    TooManyFeatureValues {
        /// The feature, shortened to a safe length.
        feature: String,
        /// Values listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Over [`IndexLimits::max_dependencies`].
    #[error("crate has {count} dependencies, the maximum is {max}")]
    TooManyDependencies {
        /// Dependencies declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Over [`IndexLimits::max_line_bytes`].
    #[error("the version's index entry would be {size} bytes, the maximum is {max}")]
    LineTooLarge {
        /// Rendered size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

impl IndexLimits {
    /// Checks the counts in the publish metadata, before anything is built
    /// from it.
    pub fn check_metadata(&self, meta: &NewCrate) -> Result<(), IndexLimitError> {
        if meta.features.len() > self.max_features {
            return Err(IndexLimitError::TooManyFeatures {
                count: meta.features.len(),
                max: self.max_features,
            });
        }
        if let Some((feature, values)) = meta
            .features
            .iter()
            .find(|(_, values)| values.len() > self.max_feature_values)
        {
            return Err(IndexLimitError::TooManyFeatureValues {
                feature: quote(feature),
                count: values.len(),
                max: self.max_feature_values,
            });
        }
        if meta.deps.len() > self.max_dependencies {
            return Err(IndexLimitError::TooManyDependencies {
                count: meta.deps.len(),
                max: self.max_dependencies,
            });
        }
        Ok(())
    }

    /// Checks the line exactly as the index will hold it.
    pub fn check_line(&self, line: &IndexPackage) -> Result<(), IndexLimitError> {
        let size = serde_json::to_vec(line).map(|v| v.len()).unwrap_or(0);
        if size > self.max_line_bytes {
            return Err(IndexLimitError::LineTooLarge {
                size,
                max: self.max_line_bytes,
            });
        }
        Ok(())
    }
}
