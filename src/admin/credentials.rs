//! `--accessKey` / `--secretKey`: the ACL account every request of one `petrel admin` run is
//! signed with.

use anyhow::bail;
use clap::Args;

/// An ACL account to sign requests with (mqadmin reads them from `conf/tools.yml`).
#[derive(Args)]
pub struct CredentialArgs {
    #[arg(long = "accessKey", env = "PETREL_ACCESS_KEY", global = true)]
    pub access_key: Option<String>,
    #[arg(
        long = "secretKey",
        env = "PETREL_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<String>,
}

impl CredentialArgs {
    /// Makes every request of this run signed, when keys were given; one without the other
    /// is an error.
    pub fn apply(self) -> anyhow::Result<()> {
        match (self.access_key, self.secret_key) {
            (Some(access_key), Some(secret_key)) => {
                crate::client::sign_by_default(crate::client::Credentials {
                    access_key,
                    secret_key,
                });
                Ok(())
            }
            (None, None) => Ok(()),
            (Some(_), None) => bail!("--accessKey needs --secretKey (or PETREL_SECRET_KEY)"),
            (None, Some(_)) => bail!("--secretKey needs --accessKey (or PETREL_ACCESS_KEY)"),
        }
    }
}
