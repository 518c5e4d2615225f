//! The effective configuration as broker.conf lines, for GET_BROKER_CONFIG (mqadmin
//! getBrokerConfig): every key `Config::set` takes, with the value in force, spelled so that
//! `set` takes it back.

use std::time::Duration;

use petrel_shards::commitlog::FlushDiskType;
use petrel_shards::replication::BrokerRole;

use super::Config;

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

/// A delay level as `messageDelayLevel` writes it: the largest whole unit.
fn level(d: &Duration) -> String {
    let s = d.as_secs();
    let unit = [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|(n, _)| s > 0 && s.is_multiple_of(*n));
    match unit {
        Some((n, unit)) => format!("{}{unit}", s / n),
        None => format!("{s}s"),
    }
}

impl Config {
    /// The keys a name server runs by, as GET_NAMESRV_CONFIG shows them.
    pub fn namesrv_properties(&self) -> Vec<(String, String)> {
        const NAMESRV_KEYS: [&str; 11] = [
            "namesrvListenPort",
            "bindAddress",
            "orderMessageEnable",
            "enableControllerInNamesrv",
            "controllerDLegerGroup",
            "controllerDLegerPeers",
            "controllerDLegerSelfId",
            "aclEnable",
            "aclFile",
            "serverChannelMaxIdleTimeSeconds",
            "frameMaxLength",
        ];
        let mut out: Vec<(String, String)> = self
            .properties()
            .into_iter()
            .filter(|(k, _)| NAMESRV_KEYS.contains(&k.as_str()) && k != "kvConfigPath")
            .collect();
        out.push((
            "kvConfigPath".into(),
            self.kv_config_path().display().to_string(),
        ));
        out
    }

    /// Every key with its value, in a stable order.
    pub fn properties(&self) -> Vec<(String, String)> {
        let role = match self.broker_role {
            BrokerRole::AsyncMaster => "ASYNC_MASTER",
            BrokerRole::SyncMaster => "SYNC_MASTER",
            BrokerRole::Slave => "SLAVE",
        };
        let flush = match self.flush_disk_type {
            FlushDiskType::Async => "ASYNC_FLUSH",
            FlushDiskType::Sync => "SYNC_FLUSH",
        };
        let levels: Vec<String> = self.message_delay_level.iter().map(level).collect();
        let t = &self.transactions;
        let mut out: Vec<(&str, String)> = vec![
            ("brokerClusterName", self.broker_cluster_name.clone()),
            ("brokerName", self.broker_name.clone()),
            ("brokerId", self.broker_id.to_string()),
            ("brokerRole", role.into()),
            ("syncFlushTimeout", ms(self.sync_flush_timeout)),
            ("haHousekeepingInterval", ms(self.ha_housekeeping)),
            ("slaveReadEnable", self.slave_read_enable.to_string()),
            (
                "accessMessageInMemoryMaxRatio",
                self.access_message_in_memory_max_ratio.to_string(),
            ),
            ("haListenPort", opt(&self.ha_listen_port)),
            ("haMasterAddress", opt(&self.ha_master_address)),
            ("namesrvAddr", opt(&self.namesrv_addr)),
            ("brokerIP1", self.broker_ip1.clone()),
            ("bindAddress", self.bind_address.clone()),
            ("listenPort", self.listen_port.to_string()),
            (
                "metricsExporterType",
                if self.metrics_prom { "PROM" } else { "DISABLE" }.into(),
            ),
            ("metricsPromExporterHost", self.metrics_prom_host.clone()),
            (
                "metricsPromExporterPort",
                self.metrics_prom_port.to_string(),
            ),
            ("namesrvListenPort", self.namesrv_listen_port.to_string()),
            ("shardListenPortBase", opt(&self.shard_listen_port_base)),
            ("shards", self.shards.to_string()),
            ("shardPinning", self.shard_pinning.to_string()),
            ("shardIoMemoryBytes", self.shard_io_memory_bytes.to_string()),
            (
                "storePathRootDir",
                self.store_path_root_dir.display().to_string(),
            ),
            (
                "mappedFileSizeCommitLog",
                self.mapped_file_size_commit_log.to_string(),
            ),
            ("flushDiskType", flush.into()),
            ("flushIntervalCommitLog", ms(self.flush_interval_commit_log)),
            ("maxMessageSize", self.max_message_size.to_string()),
            (
                "autoCreateTopicEnable",
                self.auto_create_topic_enable.to_string(),
            ),
            (
                "autoCreateSubscriptionGroup",
                self.auto_create_subscription_group.to_string(),
            ),
            (
                "defaultTopicQueueNums",
                self.default_topic_queue_nums.to_string(),
            ),
            ("regionId", self.region_id.clone()),
            ("messageDelayLevel", levels.join(" ")),
            ("transactionTimeOut", ms(t.timeout)),
            ("transactionCheckMax", t.check_max.to_string()),
            ("transactionCheckInterval", ms(t.check_interval)),
            ("rejectTransactionMessage", t.reject.to_string()),
        ];
        out.extend(self.retention.properties());
        out.extend(self.flow.properties());
        out.extend(self.tps.properties());
        out.extend([
            ("topicCountMax", self.topic_count_max.to_string()),
            (
                "splitRegistrationSize",
                self.split_registration_size.to_string(),
            ),
        ]);
        out.extend([
            ("messageIndexEnable", self.index.enabled.to_string()),
            ("maxHashSlotNum", self.index.slots.to_string()),
            ("maxIndexNum", self.index.entries.to_string()),
            (
                "rebalanceLockMaxLiveTime",
                ms(self.rebalance_lock_max_live_time),
            ),
            ("orderMessageEnable", self.order_message_enable.to_string()),
            (
                "kvConfigPath",
                opt(&self.kv_config_path.as_ref().map(|p| p.display())),
            ),
            ("traceTopicEnable", self.trace_topic_enable.to_string()),
            (
                "registerNameServerPeriod",
                ms(self.register_name_server_period),
            ),
            ("longPollingEnable", self.long_polling_enable.to_string()),
            ("shortPollingTimeMills", ms(self.short_polling_time_mills)),
            (
                "clientConnectionsMax",
                self.client_connections_max.to_string(),
            ),
            (
                "frameMaxLength",
                self.connection.frame_bytes_max.to_string(),
            ),
            (
                "frameReadTimeoutMillis",
                ms(self.connection.frame_read_timeout),
            ),
            (
                "serverChannelMaxIdleTimeSeconds",
                self.connection.idle_timeout.as_secs().to_string(),
            ),
            (
                "enableControllerMode",
                self.enable_controller_mode.to_string(),
            ),
            ("controllerAddr", opt(&self.controller_addr)),
            (
                "brokerHeartbeatInterval",
                ms(self.broker_heartbeat_interval),
            ),
            (
                "controllerHeartBeatTimeoutMills",
                ms(self.controller_heartbeat_timeout),
            ),
            (
                "enableControllerInNamesrv",
                self.enable_controller_in_namesrv.to_string(),
            ),
            (
                "controllerStorePath",
                opt(&self.controller_store_path.as_ref().map(|p| p.display())),
            ),
            ("controllerDLegerPeers", opt(&self.controller_peers)),
            ("controllerDLegerSelfId", opt(&self.controller_self_id)),
            (
                "enableElectUncleanMaster",
                self.enable_elect_unclean_master.to_string(),
            ),
            ("aclEnable", self.acl_enable.to_string()),
            ("aclFile", self.acl_file.display().to_string()),
            // The secret never leaves the process (GET_BROKER_CONFIG shows this list).
            (
                "innerClientAuthenticationCredentials",
                self.inner_credentials
                    .as_ref()
                    .map(|c| {
                        format!(
                            "{{\"accessKey\":\"{}\",\"secretKey\":\"******\"}}",
                            c.access_key
                        )
                    })
                    .unwrap_or_default(),
            ),
        ]);
        out.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rendered_key_is_taken_back_unchanged() {
        let mut config = Config::default();
        for (k, v) in [
            ("brokerRole", "SYNC_MASTER"),
            ("flushDiskType", "SYNC_FLUSH"),
            ("namesrvAddr", "127.0.0.1:9876"),
            ("messageDelayLevel", "1s 5s 2m 1h 2d"),
            ("fileReservedTime", "0.25"),
            ("deleteWhen", "03;15"),
        ] {
            config.set(k, v).unwrap();
        }
        let rendered = config.properties();
        let mut again = Config::default();
        for (k, v) in &rendered {
            // Empty values are the unset optional keys.
            if !v.is_empty() {
                again.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
            }
        }
        assert_eq!(again.properties(), rendered);
    }
}
