//! Who a store is reached as: the default AWS credential chain, or a role assumed through
//! STS (with an external id), and the adapter that lets object_store sign with exactly the
//! credentials the S3 SDK uses, refreshed before they expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{ProvideCredentials, SharedCredentialsProvider};
use object_store::aws::AwsCredential;

use super::retry;
use crate::retry::RetryPolicy;

/// Session name that shows in the payer's CloudTrail for every assumed-role request.
const SESSION_NAME: &str = "curflow";
/// Cached credentials are renewed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How one side (a payer's source, or the staging store) is reached.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// AWS region of the bucket. Default: the environment's (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// A role to assume with STS (the default chain's credentials sign the AssumeRole call).
    /// Default: none, the default chain's credentials are used directly.
    pub role_arn: Option<String>,
    /// The external id the role's trust policy requires, if any.
    pub external_id: Option<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("region", &self.region)
            .field("role_arn", &self.role_arn)
            .field("external_id", &self.external_id.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Access {
    /// True when both sides are reached as the same principal, so that one request can read
    /// the source and write staging (a server-side copy).
    pub fn same_principal(&self, other: &Access) -> bool {
        self.role_arn == other.role_arn && self.external_id == other.external_id
    }

    /// The SDK configuration for this side: environment (endpoint, region, credentials),
    /// retry policy, and the assumed role's credentials when a role is set.
    pub(super) async fn sdk_config(&self, policy: &RetryPolicy) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry::sdk_retry(policy))
            .timeout_config(retry::sdk_timeouts());
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let base = loader.load().await;
        let Some(role) = &self.role_arn else {
            return base;
        };
        let mut builder = AssumeRoleProvider::builder(role.clone())
            .session_name(SESSION_NAME)
            .configure(&base);
        if let Some(id) = &self.external_id {
            builder = builder.external_id(id.clone());
        }
        let provider = builder.build().await;
        base.into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build()
    }
}

/// object_store's view of the SDK's credentials provider, cached until shortly before expiry
/// (the SDK's own client caches too; object_store asks on every request).
#[derive(Debug)]
pub(super) struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl SdkCredentials {
    pub(super) fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    async fn current(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref()
            && expiry.is_none_or(|at| at > SystemTime::now() + REFRESH_MARGIN)
        {
            return Ok(Arc::clone(credential));
        }
        let fresh = self.provider.provide_credentials().await.map_err(|e| {
            object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            }
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: fresh.access_key_id().to_owned(),
            secret_key: fresh.secret_access_key().to_owned(),
            token: fresh.session_token().map(str::to_owned),
        });
        *cached = Some((Arc::clone(&credential), fresh.expiry()));
        Ok(credential)
    }
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        self.current().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_id_is_not_printed_and_principals_compare() {
        let a = Access {
            region: None,
            role_arn: Some("arn:aws:iam::111111111111:role/r".into()),
            external_id: Some("s3cr3t".into()),
        };
        assert!(!format!("{a:?}").contains("s3cr3t"));
        assert!(a.same_principal(&a.clone()));
        assert!(!a.same_principal(&Access::default()));
        assert!(Access::default().same_principal(&Access {
            region: Some("eu-west-1".into()),
            ..Access::default()
        }));
    }
}
