//! Payer configuration: where each payer's CUR export lives and how to reach it.
//!
//! Configurations come from the settings file today; the warehouse's payer table takes
//! precedence once a backend provides one (DESIGN.md §3). [`select`] matches the task's
//! payers against what is configured before any data is touched, so an unknown payer is
//! bad input (exit 2), not a failure halfway through a run.

use serde::Deserialize;

use crate::storage::{Access, StoreUrl};
use crate::sync::Layout;
use crate::task::{PayerChoice, PayerId};

/// One payer's source of CUR data. Its `Debug` prints `external_id` as `***`: the external
/// id guards the payer's role against the confused-deputy problem and stays out of logs.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayerConfig {
    /// The payer (management) account id, 12 digits.
    pub payer_id: PayerId,
    /// URL of the export root, e.g. `s3://bucket/prefix/export-name` or a local directory.
    pub source: String,
    /// Layout of the export: `cur2`, `legacy` or `auto`. Default: `cur2`.
    #[serde(default)]
    pub layout: Layout,
    /// AWS region of the source bucket. Default: the environment's region.
    #[serde(default)]
    pub region: Option<String>,
    /// A role in the payer's account to assume (STS) for reading its export. Default: none,
    /// the default credential chain reads it (a bucket policy must then allow that).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external id the role's trust policy requires. Default: none.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Inactive payers are skipped (and said so) instead of synchronized. Default: true.
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

impl std::fmt::Debug for PayerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayerConfig")
            .field("payer_id", &self.payer_id)
            .field("source", &self.source)
            .field("layout", &self.layout)
            .field("region", &self.region)
            .field("role_arn", &self.role_arn)
            .field("external_id", &self.external_id.as_ref().map(|_| "***"))
            .field("active", &self.active)
            .finish()
    }
}

impl PayerConfig {
    /// The validated source URL.
    pub fn source_url(&self) -> Result<StoreUrl, crate::storage::StorageError> {
        StoreUrl::parse(&self.source)
    }

    /// How the source is reached: its region and role.
    pub fn access(&self) -> Access {
        Access {
            region: self.region.clone(),
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
        }
    }
}

/// A task's payers that the configuration cannot provide.
#[derive(Debug, thiserror::Error)]
pub enum NotConfigured {
    /// A task payer with no configuration anywhere.
    #[error(
        "payer {payer} is not configured in profile {env}: add a [[{env}.payers]] entry with payer_id = \"{payer}\" and its source to the settings file, or `curflow payers add` it to the payer table"
    )]
    Payer {
        /// The task's payer.
        payer: PayerId,
        /// The settings profile the run reads.
        env: String,
    },
    /// The task asks for all payers and the profile configures none.
    #[error(
        "the task asks for all payers and profile {env} configures none: add [[{env}.payers]] entries to the settings file, or `curflow payers add` them to the payer table"
    )]
    NoPayers {
        /// The settings profile the run reads.
        env: String,
    },
}

/// What the run does with one task payer.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Synchronize this payer from this configuration.
    Process(PayerConfig),
    /// Configured but marked inactive: reported, not touched.
    Inactive(PayerId),
}

/// Matches the task's payers, in order, against the ones profile `env` configures; all
/// of them, in account-id order, when the task asks for all.
pub fn select(
    task: &PayerChoice,
    configured: &[PayerConfig],
    env: &str,
) -> Result<Vec<Selection>, NotConfigured> {
    let selection = |c: &PayerConfig| {
        if c.active {
            Selection::Process(c.clone())
        } else {
            Selection::Inactive(c.payer_id.clone())
        }
    };
    match task {
        PayerChoice::All if configured.is_empty() => Err(NotConfigured::NoPayers {
            env: env.to_owned(),
        }),
        PayerChoice::All => {
            let mut all: Vec<&PayerConfig> = configured.iter().collect();
            all.sort_by(|a, b| a.payer_id.cmp(&b.payer_id));
            Ok(all.into_iter().map(selection).collect())
        }
        PayerChoice::Listed(ids) => ids
            .iter()
            .map(|id| match configured.iter().find(|c| &c.payer_id == id) {
                Some(c) => Ok(selection(c)),
                None => Err(NotConfigured::Payer {
                    payer: id.clone(),
                    env: env.to_owned(),
                }),
            })
            .collect(),
    }
}

impl Selection {
    /// The payer selected.
    pub fn payer_id(&self) -> &PayerId {
        match self {
            Selection::Process(config) => &config.payer_id,
            Selection::Inactive(id) => id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(id: &str, active: bool) -> PayerConfig {
        PayerConfig {
            payer_id: PayerId::parse(id).unwrap(),
            source: "/tmp/src".into(),
            layout: Layout::Cur2,
            region: None,
            role_arn: None,
            external_id: None,
            active,
        }
    }

    #[test]
    fn debug_hides_the_external_id() {
        let mut c = config("111111111111", true);
        c.role_arn = Some("arn:aws:iam::111111111111:role/cur-reader".into());
        c.external_id = Some("s3cr3t-ext-id".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-ext-id"), "{shown}");
        assert!(shown.contains("external_id: Some(\"***\")"), "{shown}");
        assert!(shown.contains("role/cur-reader") && shown.contains("111111111111"));
    }

    #[test]
    fn selects_in_task_order_and_refuses_unknown_payers() {
        let configured = [config("111111111111", true), config("222222222222", false)];
        let task = PayerChoice::Listed(vec![
            PayerId::parse("222222222222").unwrap(),
            PayerId::parse("111111111111").unwrap(),
        ]);
        let got = select(&task, &configured, "prod").unwrap();
        assert!(matches!(&got[0], Selection::Inactive(id) if id.as_str() == "222222222222"));
        assert!(matches!(&got[1], Selection::Process(c) if c.payer_id.as_str() == "111111111111"));
        let unknown = PayerChoice::Listed(vec![PayerId::parse("333333333333").unwrap()]);
        assert_eq!(
            select(&unknown, &configured, "prod")
                .unwrap_err()
                .to_string(),
            "payer 333333333333 is not configured in profile prod: add a [[prod.payers]] entry with payer_id = \"333333333333\" and its source to the settings file, or `curflow payers add` it to the payer table"
        );
    }

    #[test]
    fn all_selects_every_configured_payer_in_account_order() {
        let configured = [config("222222222222", true), config("111111111111", false)];
        let got = select(&PayerChoice::All, &configured, "prod").unwrap();
        let ids: Vec<&str> = got.iter().map(|s| s.payer_id().as_str()).collect();
        assert_eq!(ids, ["111111111111", "222222222222"]);
        assert!(matches!(&got[0], Selection::Inactive(_)));
        assert!(
            select(&PayerChoice::All, &[], "prod")
                .unwrap_err()
                .to_string()
                .starts_with("the task asks for all payers and profile prod configures none")
        );
    }
}
