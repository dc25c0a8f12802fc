//! `[<env>.metrics]`: which metrics sinks run and where they send, as written and validated.
//!
//! `kinds` lists the sinks (`["cloudwatch", "emf"]`; from the environment,
//! `CURFLOW_METRICS__KINDS=cloudwatch,emf`); the older single `kind` (`none`, `cloudwatch`
//! or `emf`) stays accepted, but not together with `kinds`. settings.rs composes the
//! profile and calls [`resolve_metrics`].

use serde::Deserialize;

use crate::values::{Refusal, refuse};

/// A metrics sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetricsKind {
    /// CloudWatch `PutMetricData` calls.
    CloudWatch,
    /// CloudWatch Embedded Metric Format: JSON lines on stdout, no API call.
    Emf,
}

impl MetricsKind {
    /// The kind a settings name stands for.
    fn named(name: &str) -> Option<Self> {
        match name {
            "cloudwatch" => Some(Self::CloudWatch),
            "emf" => Some(Self::Emf),
            _ => None,
        }
    }
}

/// Run metrics, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// The sinks, each at most once, in a fixed order (CloudWatch, then EMF); empty for no
    /// metrics (the `local` default).
    pub kinds: Vec<MetricsKind>,
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The CloudWatch region; `None` for the environment's.
    pub region: Option<String>,
}

/// `[<env>.metrics]` as written; every key optional, defaults applied in [`resolve_metrics`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsProfile {
    /// One sink: `none`, `cloudwatch` or `emf` (the form older than `kinds`; not together
    /// with it). Default: `none`.
    kind: Option<String>,
    /// The sinks: `["cloudwatch"]`, `["emf"]`, `["cloudwatch", "emf"]`, or one
    /// comma-separated string (`"cloudwatch,emf"`, how `CURFLOW_METRICS__KINDS` arrives).
    /// Default: none.
    kinds: Option<Names>,
    /// CloudWatch namespace, 1-255 printable ASCII characters, not `AWS/…`. Default: `curflow`.
    namespace: Option<String>,
    /// CloudWatch region (`cloudwatch` only). Default: the environment's (`AWS_REGION`).
    region: Option<String>,
}

/// Names as written: a TOML list, or one string of comma-separated names.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of names such as [\"cloudwatch\", \"emf\"], or one string \"cloudwatch,emf\""
)]
enum Names {
    List(Vec<String>),
    Text(String),
}

impl Names {
    fn into_vec(self) -> Vec<String> {
        match self {
            Names::List(names) => names,
            Names::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

fn default_namespace() -> String {
    "curflow".into()
}

/// Applies defaults and checks `[<env>.metrics]`.
pub(crate) fn resolve_metrics(m: MetricsProfile) -> Result<MetricsSettings, Refusal> {
    let kinds = match (m.kind, m.kinds) {
        (Some(kind), Some(_)) => {
            return Err(refuse(
                "metrics.kind",
                &format!("\"{kind}\""),
                "cannot be given together with metrics.kinds: keep one (kinds = [\"cloudwatch\", \"emf\"] lists several)",
            ));
        }
        (Some(kind), None) if kind == "none" => Vec::new(),
        (Some(kind), None) => vec![MetricsKind::named(&kind).ok_or_else(|| {
            refuse(
                "metrics.kind",
                &format!("\"{kind}\""),
                "is not a metrics kind: use \"cloudwatch\", \"emf\" or \"none\"",
            )
        })?],
        (None, Some(names)) => {
            let mut kinds = Vec::new();
            for name in names.into_vec() {
                let kind = MetricsKind::named(&name).ok_or_else(|| {
                    refuse(
                        "metrics.kinds",
                        &format!("\"{name}\""),
                        "is not a metrics kind: list \"cloudwatch\" and/or \"emf\" (an empty list for none)",
                    )
                })?;
                if kinds.contains(&kind) {
                    return Err(refuse(
                        "metrics.kinds",
                        &format!("\"{name}\""),
                        "listed twice; list each kind once",
                    ));
                }
                kinds.push(kind);
            }
            kinds.sort();
            kinds
        }
        (None, None) => Vec::new(),
    };
    let namespace = m.namespace.unwrap_or_else(default_namespace);
    if namespace.is_empty()
        || namespace.len() > 255
        || namespace.starts_with("AWS/")
        || !namespace.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(refuse(
            "metrics.namespace",
            &format!("\"{namespace}\""),
            "must be 1-255 printable ASCII characters and not start with AWS/",
        ));
    }
    Ok(MetricsSettings {
        kinds,
        namespace,
        region: m.region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<MetricsSettings, String> {
        let profile: MetricsProfile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        resolve_metrics(profile).map_err(|e| e.to_string())
    }

    #[test]
    fn kinds_is_a_list_or_a_comma_separated_string() {
        use MetricsKind::{CloudWatch, Emf};
        for (text, expected) in [
            ("kinds = [\"cloudwatch\", \"emf\"]", vec![CloudWatch, Emf]),
            ("kinds = [\"emf\", \"cloudwatch\"]", vec![CloudWatch, Emf]),
            ("kinds = \"cloudwatch, emf\"", vec![CloudWatch, Emf]),
            ("kinds = \"emf\"", vec![Emf]),
            ("kinds = []", vec![]),
            ("kind = \"cloudwatch\"", vec![CloudWatch]),
            ("kind = \"none\"", vec![]),
            ("", vec![]),
        ] {
            assert_eq!(resolve(text).unwrap().kinds, expected, "{text}");
        }
    }

    #[test]
    fn errors_name_the_keys_and_the_value() {
        let err = resolve("kind = \"emf\"\nkinds = [\"cloudwatch\"]").unwrap_err();
        assert!(
            err.contains("metrics.kind ") && err.contains("metrics.kinds"),
            "{err}"
        );
        for text in ["kinds = [\"emf\", \"statsd\"]", "kinds = \"emf,statsd\""] {
            let err = resolve(text).unwrap_err();
            assert!(
                err.contains("metrics.kinds = \"statsd\"") && err.contains("not a metrics kind"),
                "{err}"
            );
        }
        let err = resolve("kind = \"statsd\"").unwrap_err();
        assert!(err.contains("metrics.kind = \"statsd\""), "{err}");
        let err = resolve("kinds = [\"emf\", \"emf\"]").unwrap_err();
        assert!(err.contains("listed twice"), "{err}");
        let err = resolve("kinds = 3").unwrap_err();
        assert!(err.contains("a list of names"), "{err}");
    }
}
