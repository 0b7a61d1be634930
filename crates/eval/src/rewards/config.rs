//! Reward settings: the reference's environment variables, their defaults, and a TOML form of the same keys.
//!
//! Precedence when resolving: defaults, then a TOML file, then the environment (`IMG_W`, `EDGE_IOU_THRESH`, …, the
//! names the reference plugin reads). TOML keys are the environment names in lower case (`img_w = 640`).

use crate::Protocol;
use sgvlm_graph::{Canvas, StrictConfig};
use std::collections::BTreeMap;

/// Every knob of the reward functions.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardConfig {
    /// Canvas, object/relation caps and the AG rules of the strict gate (and of the lenient parser).
    pub gate: StrictConfig,
    pub sem_weight: f64,
    pub iou_weight: f64,
    pub box_l1_weight: f64,
    pub format_reward_weight: f64,
    pub node_reward_weight: f64,
    pub edge_reward_weight: f64,
    pub edge_precision_reward_weight: f64,
    pub edge_f1_reward_weight: f64,
    pub edge_iou_thresh: f64,
    pub obj_iou_thresh: f64,
    pub edge_fp_penalty_weight: f64,
    pub edge_fp_penalty_power: f64,
    pub obj_halluc_penalty_weight: f64,
    /// `paper` (the reference's values, the default) or `sound` (see [`super`] for what changes); setting
    /// `REWARD_PROTOCOL`.
    pub protocol: Protocol,
}

impl Default for RewardConfig {
    fn default() -> Self {
        RewardConfig {
            gate: StrictConfig::default(),
            sem_weight: 1.0,
            iou_weight: 2.0,
            box_l1_weight: 5.0,
            format_reward_weight: 0.5,
            node_reward_weight: 1.5,
            edge_reward_weight: 3.0,
            edge_precision_reward_weight: 1.0,
            edge_f1_reward_weight: 2.0,
            edge_iou_thresh: 0.5,
            obj_iou_thresh: 0.5,
            edge_fp_penalty_weight: 1.0,
            edge_fp_penalty_power: 2.0,
            obj_halluc_penalty_weight: 1.0,
            protocol: Protocol::Paper,
        }
    }
}

/// A setting that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: expected {expected}, found {value:?}")]
    BadValue { key: String, expected: &'static str, value: String },
    #[error("unknown reward setting `{0}` (known: {known})", known = KEYS.join(", "))]
    UnknownKey(String),
    #[error("invalid TOML: {0}")]
    Toml(String),
}

/// The recognised setting names (environment spelling). `PARSE_CACHE`/`ASSIGN_CACHE` are accepted and ignored:
/// they only sized the reference's caches. `REWARD_PROTOCOL` (`paper`|`sound`) is sgvlm's own.
pub const KEYS: [&str; 25] = [
    "IMG_W",
    "IMG_H",
    "MAX_OBJS",
    "MAX_RELS",
    "SEM_WEIGHT",
    "IOU_WEIGHT",
    "BOX_L1_WEIGHT",
    "FORMAT_REWARD_WEIGHT",
    "NODE_REWARD_WEIGHT",
    "EDGE_REWARD_WEIGHT",
    "EDGE_PRECISION_REWARD_WEIGHT",
    "EDGE_F1_REWARD_WEIGHT",
    "EDGE_IOU_THRESH",
    "OBJ_IOU_THRESH",
    "EDGE_FP_PENALTY_WEIGHT",
    "EDGE_FP_PENALTY_POWER",
    "OBJ_HALLUC_PENALTY_WEIGHT",
    "AG_ATTENTION_MAX",
    "AG_SPATIAL_MAX",
    "AG_CONTACTING_MAX",
    "AG_ENFORCE_PERSON_SUBJECT",
    "REWARD_PROTOCOL",
    "PARSE_CACHE",
    "ASSIGN_CACHE",
    "REWARD_CONFIG",
];

fn int(key: &str, v: &str) -> Result<u64, ConfigError> {
    v.trim().parse::<u64>().map_err(|_| ConfigError::BadValue {
        key: key.into(),
        expected: "a non-negative integer",
        value: v.into(),
    })
}

fn float(key: &str, v: &str) -> Result<f64, ConfigError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(ConfigError::BadValue { key: key.into(), expected: "a finite number", value: v.into() }),
    }
}

impl RewardConfig {
    /// Applies one setting given by its environment name (case-insensitive) and textual value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let k = key.to_ascii_uppercase();
        let g = &mut self.gate;
        match k.as_str() {
            "IMG_W" => g.canvas = Canvas::new(int(&k, value)?.min(u32::MAX as u64) as u32, g.canvas.height),
            "IMG_H" => g.canvas = Canvas::new(g.canvas.width, int(&k, value)?.min(u32::MAX as u64) as u32),
            "MAX_OBJS" => g.max_objects = int(&k, value)? as usize,
            "MAX_RELS" => g.max_relations = int(&k, value)? as usize,
            "AG_ATTENTION_MAX" => g.ag_attention_max = int(&k, value)? as usize,
            "AG_SPATIAL_MAX" => g.ag_spatial_max = int(&k, value)? as usize,
            "AG_CONTACTING_MAX" => g.ag_contacting_max = int(&k, value)? as usize,
            "AG_ENFORCE_PERSON_SUBJECT" => {
                g.ag_enforce_person_subject =
                    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "y")
            }
            "SEM_WEIGHT" => self.sem_weight = float(&k, value)?,
            "IOU_WEIGHT" => self.iou_weight = float(&k, value)?,
            "BOX_L1_WEIGHT" => self.box_l1_weight = float(&k, value)?,
            "FORMAT_REWARD_WEIGHT" => self.format_reward_weight = float(&k, value)?,
            "NODE_REWARD_WEIGHT" => self.node_reward_weight = float(&k, value)?,
            "EDGE_REWARD_WEIGHT" => self.edge_reward_weight = float(&k, value)?,
            "EDGE_PRECISION_REWARD_WEIGHT" => self.edge_precision_reward_weight = float(&k, value)?,
            "EDGE_F1_REWARD_WEIGHT" => self.edge_f1_reward_weight = float(&k, value)?,
            "EDGE_IOU_THRESH" => self.edge_iou_thresh = float(&k, value)?,
            "OBJ_IOU_THRESH" => self.obj_iou_thresh = float(&k, value)?,
            "EDGE_FP_PENALTY_WEIGHT" => self.edge_fp_penalty_weight = float(&k, value)?,
            "EDGE_FP_PENALTY_POWER" => self.edge_fp_penalty_power = float(&k, value)?,
            "OBJ_HALLUC_PENALTY_WEIGHT" => self.obj_halluc_penalty_weight = float(&k, value)?,
            "REWARD_PROTOCOL" => {
                self.protocol = match value.trim().to_ascii_lowercase().as_str() {
                    "paper" => Protocol::Paper,
                    "sound" => Protocol::Sound,
                    _ => {
                        return Err(ConfigError::BadValue {
                            key: k,
                            expected: "`paper` or `sound`",
                            value: value.into(),
                        })
                    }
                }
            }
            "PARSE_CACHE" | "ASSIGN_CACHE" => {
                int(&k, value)?;
            }
            _ => return Err(ConfigError::UnknownKey(key.to_string())),
        }
        Ok(())
    }

    /// Applies every recognised variable present in `vars` (e.g. `std::env::vars()`); other variables are ignored.
    pub fn apply_env<I: IntoIterator<Item = (String, String)>>(&mut self, vars: I) -> Result<(), ConfigError> {
        for (k, v) in vars {
            if KEYS.contains(&k.as_str()) && k != "REWARD_CONFIG" {
                self.set(&k, &v)?;
            }
        }
        Ok(())
    }

    /// Applies a TOML document of `key = value` pairs (keys as in [`KEYS`], any case).
    pub fn apply_toml(&mut self, text: &str) -> Result<(), ConfigError> {
        let table: BTreeMap<String, toml::Value> =
            toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        for (k, v) in table {
            let s = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => if b { "1" } else { "0" }.to_string(),
                other => {
                    return Err(ConfigError::BadValue {
                        key: k,
                        expected: "a number, string or boolean",
                        value: other.to_string(),
                    })
                }
            };
            self.set(&k, &s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_toml() {
        let mut c = RewardConfig::default();
        c.apply_env([("IMG_W".to_string(), "800".to_string()), ("PATH".into(), "/bin".into())]).unwrap();
        assert_eq!(c.gate.canvas, Canvas::new(800, 480));
        c.apply_toml("edge_iou_thresh = 0.7\nag_enforce_person_subject = false\nmax_objs = 10").unwrap();
        assert_eq!(c.edge_iou_thresh, 0.7);
        assert!(!c.gate.ag_enforce_person_subject);
        assert_eq!(c.gate.max_objects, 10);
        assert_eq!(
            c.set("EDGE_IOU_THRESH", "high").unwrap_err().to_string(),
            "EDGE_IOU_THRESH: expected a finite number, found \"high\""
        );
        assert!(matches!(c.apply_toml("bogus = 1"), Err(ConfigError::UnknownKey(_))));
        c.set("AG_ENFORCE_PERSON_SUBJECT", " Yes ").unwrap();
        assert!(c.gate.ag_enforce_person_subject);
        c.apply_toml("reward_protocol = \"Sound\"").unwrap();
        assert_eq!(c.protocol, Protocol::Sound);
        assert!(c.set("REWARD_PROTOCOL", "strict").is_err());
    }
}
