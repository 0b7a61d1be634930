//! Which evaluation protocol a metric follows.
//!
//! - [`Protocol::Paper`] reproduces the published reference scripts, quirks included, so that numbers are
//!   comparable with the paper.
//! - [`Protocol::Sound`] fixes the flaws listed in reference_facts §9: items 11–13 in the evaluation, items 14–15
//!   in the rewards. Each module documents exactly what changes: [`crate::strict_eval`], [`crate::ag_sgdet`] and
//!   [`crate::rewards`] (selected there by [`crate::rewards::RewardConfig::protocol`]).

/// The evaluation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Protocol {
    /// The reference implementation's behaviour (the default).
    #[default]
    Paper,
    /// The corrected protocol.
    Sound,
}

impl Protocol {
    /// `"paper"` or `"sound"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Paper => "paper",
            Protocol::Sound => "sound",
        }
    }
}
