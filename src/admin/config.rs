//! `getBrokerConfig`, `updateBrokerConfig` (F38), `getNamesrvConfig` and
//! `updateNamesrvConfig`, with mqadmin's options and output.

use anyhow::bail;
use bytes::Bytes;
use clap::{Args, Subcommand};
use petrel_shards::remoting::{request, response, RemotingCommand};

use super::brokers::targets;
use super::Namesrv;
use crate::client::Client;

/// mqadmin's `-b brokerAddr | -c clusterName`.
#[derive(Debug, Args)]
pub struct Brokers {
    #[arg(short = 'b', long = "brokerAddr")]
    broker_addr: Option<String>,
    #[arg(short = 'c', long = "clusterName", conflicts_with = "broker_addr")]
    cluster_name: Option<String>,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::enum_variant_names, reason = "named as mqadmin's commands")]
pub enum ConfigCommand {
    /// Every config key of one broker (-b) or of each master of a cluster (-c).
    #[command(name = "getBrokerConfig")]
    GetBrokerConfig {
        #[command(flatten)]
        ns: Namesrv,
        #[command(flatten)]
        at: Brokers,
    },
    /// Change a key while the broker runs, on one broker (-b) or each master of a cluster (-c).
    #[command(name = "updateBrokerConfig")]
    UpdateBrokerConfig {
        #[command(flatten)]
        ns: Namesrv,
        #[command(flatten)]
        at: Brokers,
        #[arg(short = 'k', long = "key")]
        key: String,
        #[arg(short = 'v', long = "value")]
        value: String,
    },
    /// Every config key of each name server of -n.
    #[command(name = "getNamesrvConfig")]
    GetNamesrvConfig {
        #[command(flatten)]
        ns: Namesrv,
    },
    /// Change a key while the name servers of -n run.
    #[command(name = "updateNamesrvConfig")]
    UpdateNamesrvConfig {
        #[command(flatten)]
        ns: Namesrv,
        #[arg(short = 'k', long = "key")]
        key: String,
        #[arg(short = 'v', long = "value")]
        value: String,
    },
}

/// Prints `key=value` lines as mqadmin does.
fn print_properties(body: &[u8]) {
    for line in String::from_utf8_lossy(body).lines() {
        if let Some((key, value)) = line.split_once('=') {
            println!("{key:<50}=  {value}");
        }
    }
}

fn namesrvs(ns: &Namesrv) -> Vec<String> {
    ns.namesrv_addr
        .split(';')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::GetBrokerConfig { ns, at } => {
            let mut client = Client::new(&ns.namesrv_addr);
            let single = at.broker_addr.is_some();
            let brokers = targets(
                &mut client,
                at.broker_addr.as_deref(),
                at.cluster_name.as_deref(),
                "getBrokerConfig",
            )?;
            for (_, addr) in brokers {
                if single {
                    println!("============{addr}============");
                } else {
                    println!("============Master: {addr}============");
                }
                let reply = call(&mut client, &addr, request::GET_BROKER_CONFIG, Bytes::new())?;
                print_properties(&reply.body);
                println!();
            }
            Ok(())
        }
        ConfigCommand::UpdateBrokerConfig { ns, at, key, value } => {
            let mut client = Client::new(&ns.namesrv_addr);
            let brokers = targets(
                &mut client,
                at.broker_addr.as_deref(),
                at.cluster_name.as_deref(),
                "updateBrokerConfig",
            )?;
            let body = Bytes::from(format!("{}={}\n", key.trim(), value.trim()));
            for (_, addr) in brokers {
                call(
                    &mut client,
                    &addr,
                    request::UPDATE_BROKER_CONFIG,
                    body.clone(),
                )?;
                println!("update broker config success, {addr}");
            }
            Ok(())
        }
        ConfigCommand::GetNamesrvConfig { ns } => {
            let mut client = Client::new(&ns.namesrv_addr);
            for addr in namesrvs(&ns) {
                let reply = call(
                    &mut client,
                    &addr,
                    request::GET_NAMESRV_CONFIG,
                    Bytes::new(),
                )?;
                println!("============{addr}============");
                print_properties(&reply.body);
            }
            Ok(())
        }
        ConfigCommand::UpdateNamesrvConfig { ns, key, value } => {
            let mut client = Client::new(&ns.namesrv_addr);
            let (key, value) = (key.trim(), value.trim());
            let body = Bytes::from(format!("{key}={value}\n"));
            let servers = namesrvs(&ns);
            for addr in &servers {
                call(
                    &mut client,
                    addr,
                    request::UPDATE_NAMESRV_CONFIG,
                    body.clone(),
                )?;
            }
            println!("update name server config success!{servers:?}\n{key} : {value}");
            Ok(())
        }
    }
}

fn call(
    client: &mut Client,
    addr: &str,
    code: i32,
    body: Bytes,
) -> anyhow::Result<RemotingCommand> {
    let cmd = RemotingCommand::request(code, Default::default(), body);
    let reply = client.call(addr, cmd)?;
    if reply.code != response::SUCCESS {
        bail!(
            "{addr} answered code {}: {}",
            reply.code,
            reply.remark.as_deref().unwrap_or("")
        );
    }
    Ok(reply)
}
