//! The controller's commands (mqadmin `electMaster`, `getSyncStateSet`): asked of the
//! controller that leads, which the one at `-a` names, as mqadmin does.

use anyhow::{bail, Context};
use bytes::Bytes;
use petrel_shards::remoting::{request, response, RemotingCommand};

use crate::client::Client;

/// The leading controller's address, as the controller at `addr` names it.
fn leader(client: &mut Client, addr: &str) -> anyhow::Result<String> {
    let reply = client
        .call_fields(addr, request::CONTROLLER_GET_METADATA_INFO, &[])
        .with_context(|| format!("asking the controller at {addr} which controller leads"))?;
    if reply.code != response::SUCCESS {
        bail!(
            "the controller at {addr} answered {}: {}",
            reply.code,
            reply.remark.unwrap_or_default()
        );
    }
    match reply.field("controllerLeaderAddress") {
        Some(leader) if !leader.is_empty() => Ok(leader.to_string()),
        _ => bail!("the controller at {addr} knows no leader"),
    }
}

/// Makes replica `broker_id` the master of `broker_name` and prints the group as it is now.
pub fn elect_master(
    controller: &str,
    cluster: &str,
    broker_name: &str,
    broker_id: i64,
) -> anyhow::Result<()> {
    let mut client = Client::new(controller);
    let leader = leader(&mut client, controller)?;
    let reply = client.call_fields(
        &leader,
        request::CONTROLLER_ELECT_MASTER,
        &[
            ("clusterName", cluster.to_string()),
            ("brokerName", broker_name.to_string()),
            ("brokerId", broker_id.to_string()),
            ("designateElect", "true".to_string()),
            ("invokeTime", crate::client::now_ms().to_string()),
        ],
    )?;
    if reply.code != response::SUCCESS {
        bail!(
            "electing brokerId {broker_id} master of {broker_name} failed ({}): {}",
            reply.code,
            reply.remark.unwrap_or_default()
        );
    }
    let field = |k: &str| reply.field(k).unwrap_or_default().to_string();
    print!("\n#ClusterName\t{cluster}");
    print!("\n#BrokerName\t{broker_name}");
    print!("\n#BrokerMasterAddr\t{}", field("masterAddress"));
    print!("\n#MasterEpoch\t{}", field("masterEpoch"));
    println!("\n#SyncStateSetEpoch\t{}", field("syncStateSetEpoch"));
    let group: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    for (id, addr) in group["brokerAddrs"].as_object().into_iter().flatten() {
        println!("\t#Broker\t{id}\t{}", addr.as_str().unwrap_or_default());
    }
    Ok(())
}

/// Prints the master, epochs and replicas in and out of sync of `names`.
pub fn sync_state_set(controller: &str, names: &[String]) -> anyhow::Result<()> {
    let controller = controller.split(';').next().unwrap_or_default().trim();
    let mut client = Client::new(controller);
    let leader = leader(&mut client, controller)?;
    let body = Bytes::from(serde_json::to_vec(names)?);
    let request = RemotingCommand::request(
        request::CONTROLLER_GET_SYNC_STATE_DATA,
        Default::default(),
        body,
    );
    let reply = client.call(&leader, request)?;
    if reply.code != response::SUCCESS {
        bail!(
            "the controller at {leader} answered {}: {}",
            reply.code,
            reply.remark.unwrap_or_default()
        );
    }
    let data: serde_json::Value =
        serde_json::from_slice(&reply.body).context("the controller's answer is not JSON")?;
    let groups = data["replicasInfoTable"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for name in names {
        let Some(g) = groups.get(name) else {
            println!("\n#brokerName\t{name}\t(the controller does not know it)");
            continue;
        };
        let in_sync = g["inSyncReplicas"].as_array().cloned().unwrap_or_default();
        let not_in_sync = g["notInSyncReplicas"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        println!(
            "\n#brokerName\t{name}\n#MasterBrokerId\t{}\n#MasterAddr\t{}\n#MasterEpoch\t{}\n#SyncStateSetEpoch\t{}\n#SyncStateSetNums\t{}",
            g["masterBrokerId"],
            g["masterAddress"].as_str().unwrap_or_default(),
            g["masterEpoch"],
            g["syncStateSetEpoch"],
            in_sync.len()
        );
        for (label, replicas) in [
            ("InSyncReplica", in_sync),
            ("NotInSyncReplica", not_in_sync),
        ] {
            for r in replicas {
                println!(
                    "\n{label}:\tReplicaIdentity{{brokerName='{name}', brokerId={}, brokerAddress='{}', alive={}}}",
                    r["brokerId"],
                    r["brokerAddress"].as_str().unwrap_or_default(),
                    r["alive"]
                );
            }
        }
    }
    Ok(())
}
