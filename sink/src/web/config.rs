//! The web role's settings: flags, each also a `SITEWATCH_WEB_*` environment variable. The
//! database settings are the sink's own (`--database-url` and friends).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use sitewatch_checks::ops::units::parse_duration;

/// How the web role listens, who may read what, and how pages refresh.
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// Address to serve on, e.g. `127.0.0.1:8080` (port 0 picks a free one; the address is logged).
    #[arg(long, env = "SITEWATCH_WEB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Require HTTP basic auth as `USER:PASSWORD` for everything but `/status`, public badges
    /// and `/healthz` (prefer the environment variable; never logged).
    #[arg(long, env = "SITEWATCH_WEB_BASIC_AUTH", hide_env_values = true, value_name = "USER:PASSWORD",
          value_parser = parse_basic_auth)]
    pub basic_auth: Option<(String, String)>,
    /// Require `Authorization: Bearer TOKEN` for the same (either credential is accepted when
    /// both are set; never logged).
    #[arg(
        long,
        env = "SITEWATCH_WEB_BEARER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub bearer_token: Option<String>,
    /// Show URLs and error texts on the public status page (hidden by default).
    #[arg(long, env = "SITEWATCH_WEB_PUBLIC_DETAILS")]
    pub public_details: bool,
    /// Title of the public status page.
    #[arg(long, env = "SITEWATCH_WEB_TITLE", default_value = "Service status")]
    pub title: String,
    /// How often open pages reload their figures (0 turns it off).
    #[arg(long, env = "SITEWATCH_WEB_REFRESH", default_value = "30s", value_parser = parse_duration)]
    pub refresh: Duration,
    /// Most database connections the web role opens.
    #[arg(long, env = "SITEWATCH_WEB_DB_CONNECTIONS", default_value_t = 4)]
    pub db_connections: usize,
}

impl WebArgs {
    /// The settings from flags alone (defaults for the rest), as the command line parses them.
    pub fn from_flags(flags: &[&str]) -> Result<WebArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            web: WebArgs,
        }
        let args = std::iter::once("web").chain(flags.iter().copied());
        <Flags as clap::Parser>::try_parse_from(args).map(|f| f.web)
    }

    /// Whether any credential is required.
    pub fn auth_enabled(&self) -> bool {
        self.basic_auth.is_some() || self.bearer_token.is_some()
    }
}

fn parse_basic_auth(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => {
            Ok((user.to_string(), password.to_string()))
        }
        _ => Err("expected USER:PASSWORD, both non-empty".into()),
    }
}
