//! `getBrokerConfig` and `updateBrokerConfig` (F38), with mqadmin's options and output.

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
                let text = String::from_utf8_lossy(&reply.body);
                for line in text.lines() {
                    if let Some((key, value)) = line.split_once('=') {
                        println!("{key:<50}=  {value}");
                    }
                }
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
            "broker {addr} answered code {}: {}",
            reply.code,
            reply.remark.as_deref().unwrap_or("")
        );
    }
    Ok(reply)
}
