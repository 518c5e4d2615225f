//! Which brokers an admin command talks to: every master the name server knows, the masters of
//! one cluster, or mqadmin's `-b brokerAddr | -c clusterName` choice.

use anyhow::bail;

use crate::client::Client;

/// A master broker: its name and address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Master {
    pub name: String,
    pub addr: String,
}

/// Every master the name server knows (of `cluster` only, if given), sorted by name.
fn masters(client: &mut Client, cluster: Option<&str>) -> anyhow::Result<Vec<Master>> {
    let info = client.cluster_info()?;
    let in_cluster = |name: &str| {
        cluster.is_none_or(|c| {
            info["clusterAddrTable"][c]
                .as_array()
                .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(name)))
        })
    };
    let mut out: Vec<Master> = info["brokerAddrTable"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| in_cluster(name))
        .filter_map(|(name, b)| {
            Some(Master {
                name: name.clone(),
                addr: b["brokerAddrs"]["0"].as_str()?.to_string(),
            })
        })
        .collect();
    out.sort();
    if out.is_empty() {
        match cluster {
            Some(c) => bail!("cluster {c} has no master brokers"),
            None => bail!("the name server knows no master broker"),
        }
    }
    Ok(out)
}

/// The broker names of `cluster`, sorted.
pub fn names_in_cluster(client: &mut Client, cluster: &str) -> anyhow::Result<Vec<String>> {
    let info = client.cluster_info()?;
    let mut names: Vec<String> = info["clusterAddrTable"][cluster]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    if names.is_empty() {
        bail!("the name server knows no cluster named {cluster}");
    }
    names.sort();
    Ok(names)
}

/// Every master the name server knows, sorted by name.
pub fn all_masters(client: &mut Client) -> anyhow::Result<Vec<Master>> {
    masters(client, None)
}

/// The brokers mqadmin's `-b brokerAddr | -c clusterName` name for `command`: the one address
/// (with its name, if a broker is registered there; a front door is not), or every master of
/// the cluster.
pub fn targets(
    client: &mut Client,
    broker_addr: Option<&str>,
    cluster: Option<&str>,
    command: &str,
) -> anyhow::Result<Vec<(Option<String>, String)>> {
    match (broker_addr, cluster) {
        (Some(addr), _) => {
            let name = all_masters(client)
                .unwrap_or_default()
                .into_iter()
                .find(|m| m.addr == addr)
                .map(|m| m.name);
            Ok(vec![(name, addr.to_string())])
        }
        (None, Some(cluster)) => Ok(masters(client, Some(cluster))?
            .into_iter()
            .map(|m| (Some(m.name), m.addr))
            .collect()),
        (None, None) => bail!("{command} needs -b brokerAddr or -c clusterName"),
    }
}

/// GET_BROKER_RUNTIME_INFO of the broker at `addr`: its `KVTable`, or None if it did not
/// answer with one.
pub fn runtime_info(
    client: &mut Client,
    addr: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let reply = client
        .call_fields(
            addr,
            petrel_shards::remoting::request::GET_BROKER_RUNTIME_INFO,
            &[],
        )
        .ok()?;
    if reply.code != petrel_shards::remoting::response::SUCCESS {
        return None;
    }
    let kv: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
    serde_json::from_value(kv["table"].clone()).ok()
}

/// Prints every broker of every cluster (of `cluster_name` only, if given) with its role,
/// replication lag and, under a controller, its epoch.
pub fn print_cluster_list(namesrv: &str, cluster_name: Option<&str>) -> anyhow::Result<()> {
    let mut client = Client::new(namesrv);
    let info = client.cluster_info()?;
    println!(
        "{:<22}{:<22}{:<6}{:<24}{:<14}{:<12}{:<8}",
        "#Cluster Name", "#Broker Name", "#BID", "#Addr", "#Role", "#Lag(bytes)", "#Epoch"
    );
    let clusters = info["clusterAddrTable"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (cluster, names) in clusters {
        if cluster_name.is_some_and(|c| c != cluster) {
            continue;
        }
        for name in names.as_array().cloned().unwrap_or_default() {
            let name = name.as_str().unwrap_or_default();
            let addrs = info["brokerAddrTable"][name]["brokerAddrs"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (id, addr) in addrs {
                let addr = addr.as_str().unwrap_or_default();
                let status = runtime_info(&mut client, addr);
                let field = |k: &str| {
                    status
                        .as_ref()
                        .and_then(|t| t.get(k))
                        .map_or("-".to_string(), |v| v.to_string())
                };
                println!(
                    "{:<22}{:<22}{:<6}{:<24}{:<14}{:<12}{:<8}",
                    cluster,
                    name,
                    id,
                    addr,
                    field("brokerRole"),
                    field("haReplicationLagBytes"),
                    field("controllerEpoch")
                );
            }
        }
    }
    Ok(())
}
