//! The error every subsystem returns for a setting it cannot use (a shared
//! leaf: imports nothing from the rest of the crate).

use std::borrow::Cow;
use std::fmt;

/// A setting that cannot be used: an environment variable such as
/// `OTEL_TRACES_SAMPLER`, or a value given to a builder. It names the
/// setting, shows the value and says what is wrong.
///
/// ```
/// use telemark_runtime::telemetry::ConfigError;
///
/// let error = ConfigError::new("OTEL_SDK_DISABLED", "perhaps", "expected true or false");
/// assert_eq!(error.setting(), "OTEL_SDK_DISABLED");
/// assert_eq!(error.to_string(), "OTEL_SDK_DISABLED=\"perhaps\" is not valid: expected true or false");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: Cow<'static, str>,
    value: String,
    reason: Cow<'static, str>,
}

impl ConfigError {
    /// `setting` was given `value`, which is not valid for `reason`.
    pub fn new(
        setting: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        ConfigError {
            setting: setting.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// The setting: an environment variable or a builder method's name.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// The value that was refused.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What is wrong with it, or what the setting expects.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is not valid: {}",
            self.setting, self.value, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}
