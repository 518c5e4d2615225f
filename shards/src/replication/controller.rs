//! The shard's side of the controller (`enableControllerMode=true`): a BROKER_HEARTBEAT every
//! `brokerHeartbeatInterval` saying where its log ends, which epoch it acts in and, as
//! master, which slaves it sees in sync; the answer names the master, its epoch and the
//! in-sync set the controller confirmed, and the shard takes the role it gives: it is
//! promoted (a new epoch recorded before any write), fenced (writes refused at once), or
//! follows the named master.

use std::collections::BTreeSet;
use std::rc::Rc;

use super::role::Role;
use super::ControllerLink;
use crate::broker::{Shard, ShardConfig};
use crate::net::rpc_client::RpcClient;
use crate::remoting::{request, response, ExtFields, RemotingCommand};

/// What the controller answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The elected master's brokerId, if there is one.
    pub master: Option<i64>,
    pub master_ha_addr: String,
    pub epoch: u64,
    /// brokerIds in sync with the master, the master among them.
    pub sync_set: BTreeSet<i64>,
}

impl View {
    pub fn from_reply(reply: &RemotingCommand) -> Result<View, String> {
        let field = |name: &str| reply.field(name).unwrap_or_default();
        let number = |name: &str| -> Result<i64, String> {
            field(name)
                .parse()
                .map_err(|_| format!("controller reply field {name} {:?}", field(name)))
        };
        let master = number("masterBrokerId")?;
        Ok(View {
            master: (master >= 0).then_some(master),
            master_ha_addr: field("masterHaAddress").to_string(),
            epoch: number("masterEpoch")?.max(0) as u64,
            sync_set: parse_ids(field("syncStateSet"))?,
        })
    }
}

/// `1,2,3` → the set; empty → empty.
pub fn parse_ids(csv: &str) -> Result<BTreeSet<i64>, String> {
    csv.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad brokerId {s:?}")))
        .collect()
}

pub fn format_ids(ids: &BTreeSet<i64>) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn run(shard: Rc<Shard>, link: ControllerLink) {
    // Heartbeats have connections of their own: the controller counts a replica dead when
    // the connection its heartbeats come on closes, so no other call may open and drop one.
    let rpc = RpcClient::signing(shard.config.inner_credentials.clone());
    let mut last_error = String::new();
    loop {
        match heartbeat(&shard, &rpc, &link).await {
            Ok(view) => {
                if !last_error.is_empty() {
                    log::info!("shard {}: controller reached again", shard.config.shard_id);
                    last_error.clear();
                }
                apply(&shard, view).await;
            }
            Err(e) => {
                if e != last_error {
                    log::warn!("shard {}: controller: {e}", shard.config.shard_id);
                    last_error = e;
                }
            }
        }
        glommio::timer::sleep(link.heartbeat_interval).await;
    }
}

async fn heartbeat(shard: &Shard, rpc: &RpcClient, link: &ControllerLink) -> Result<View, String> {
    let durable = shard.store.log().durable().get();
    let proposed = shard.ha.is_master().then(|| {
        let mut seen = shard.store.replicated.seen_in_sync(durable);
        seen.insert(shard.ha.replica_id);
        seen
    });
    let cmd = heartbeat_request(&shard.config, link, shard.ha.epoch(), durable, proposed);
    ask(rpc, link, cmd).await
}

/// A BROKER_HEARTBEAT: who this replica is, its epoch and log end, and (from a master) the
/// in-sync set it proposes.
pub fn heartbeat_request(
    config: &ShardConfig,
    link: &ControllerLink,
    epoch: u64,
    log_end: u64,
    proposed: Option<BTreeSet<i64>>,
) -> RemotingCommand {
    let mut ext = ExtFields::new();
    ext.insert("clusterName", &config.cluster_name);
    ext.insert("brokerName", &config.broker_name);
    ext.insert("brokerAddr", config.advertised_addr.to_string());
    ext.insert("brokerId", config.replication.broker_id.to_string());
    ext.insert("epoch", epoch.to_string());
    ext.insert("maxOffset", log_end.to_string());
    ext.insert(
        "heartbeatTimeoutMills",
        link.heartbeat_timeout.as_millis().to_string(),
    );
    if let Some(ha) = &config.replication.ha_addr {
        ext.insert("haServerAddr", ha);
    }
    if let Some(set) = proposed {
        ext.insert("syncStateSet", format_ids(&set));
    }
    RemotingCommand::request(request::BROKER_HEARTBEAT, ext, bytes::Bytes::new())
}

/// Sends `cmd` to every controller and reads the leader's answer (the one that answers; of
/// two, the later epoch's: a deposed leader may not know it yet).
pub async fn ask(
    rpc: &RpcClient,
    link: &ControllerLink,
    cmd: RemotingCommand,
) -> Result<View, String> {
    if link.addrs.is_empty() {
        return Err("controllerAddr is empty".into());
    }
    let timeout = link
        .heartbeat_interval
        .max(std::time::Duration::from_secs(1));
    let calls = link
        .addrs
        .iter()
        .map(|addr| {
            let cmd = cmd.clone();
            async move { (addr, rpc.call(addr, cmd, timeout).await) }
        })
        .collect();
    let mut best: Option<View> = None;
    let mut errors = Vec::new();
    for (addr, reply) in join_all(calls).await {
        let view = match reply {
            Ok(r) if r.code == response::SUCCESS => View::from_reply(&r),
            Ok(r) => Err(format!(
                "answered code {}: {}",
                r.code,
                r.remark.as_deref().unwrap_or("")
            )),
            Err(e) => Err(e.to_string()),
        };
        match view {
            Ok(v) if best.as_ref().is_none_or(|b| v.epoch > b.epoch) => best = Some(v),
            Ok(_) => {}
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    best.ok_or_else(|| errors.join("; "))
}

/// Runs `futures` together; their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    futures_lite::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future is done"))
        .collect()
}

/// Takes the role the controller gives.
pub async fn apply(shard: &Shard, view: View) {
    let id = shard.config.shard_id;
    let me = shard.ha.replica_id;
    if view.master == Some(me) {
        if !shard.ha.is_master() || view.epoch != shard.ha.epoch() {
            if shard.ha.role() == Role::Promoting {
                return; // a promotion is under way
            }
            promote(shard, view.epoch).await;
        }
        if shard.ha.is_master() && shard.ha.epoch() == view.epoch {
            let mut slaves = view.sync_set;
            slaves.remove(&me);
            shard.store.replicated.confirm(slaves);
            shard.store.dispatch_visible();
        }
        return;
    }
    let fenced = shard.ha.role() != Role::Slave;
    if fenced {
        log::warn!(
            "shard {id}: fenced: the controller names {} master at epoch {}; writes are refused from now",
            view.master.map_or("no replica".to_string(), |m| format!("brokerId {m}")),
            view.epoch
        );
        shard.ha.set_role(Role::Slave);
        shard.store.replicated.set_fenced(true);
    }
    if fenced || shard.ha.epoch() != view.epoch {
        shard.ha.set_epoch(view.epoch);
        // Name servers ignore registrations from an epoch older than one they saw.
        shard.request_registration();
    }
    let named = (!view.master_ha_addr.is_empty()).then_some(view.master_ha_addr.as_str());
    if shard.ha.name_master(named) {
        log::info!(
            "shard {id}: the controller names master {} (epoch {})",
            named.unwrap_or("none"),
            view.epoch
        );
    }
}

/// Becomes master of `epoch`: stops following, records where the epoch starts, then writes.
async fn promote(shard: &Shard, epoch: u64) {
    let id = shard.config.shard_id;
    shard.ha.set_role(Role::Promoting);
    let start = shard.store.log().reserved_end();
    let mut epochs = shard.ha.epochs.borrow().clone();
    epochs.begin(epoch, start);
    if let Err(e) = shard.persist_epochs(epochs).await {
        log::error!("shard {id}: cannot record epoch {epoch}: {e}; staying a slave");
        shard.ha.set_role(Role::Slave);
        return;
    }
    shard.ha.set_epoch(epoch);
    shard.ha.name_master(None);
    // No slave counts for SEND_OK until the controller confirms it in sync.
    shard.store.replicated.confirm(BTreeSet::new());
    shard.store.replicated.set_fenced(false);
    shard.ha.set_role(Role::Master);
    shard.store.dispatch_visible();
    shard.request_registration();
    log::warn!("shard {id}: elected master at epoch {epoch}; its log continues from {start}");
}
