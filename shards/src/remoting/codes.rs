//! Request and response codes of the remoting protocol (spec §2), plus the language enum.
//!
//! Only the codes Petrel serves or sends are named; anything else is answered with
//! `REQUEST_CODE_NOT_SUPPORTED`.

/// Request codes (spec §2.1).
pub mod request {
    pub const SEND_MESSAGE: i32 = 10;
    pub const PULL_MESSAGE: i32 = 11;
    pub const QUERY_MESSAGE: i32 = 12;
    pub const QUERY_CONSUMER_OFFSET: i32 = 14;
    pub const UPDATE_CONSUMER_OFFSET: i32 = 15;
    pub const UPDATE_AND_CREATE_TOPIC: i32 = 17;
    pub const GET_ALL_TOPIC_CONFIG: i32 = 21;
    pub const UPDATE_BROKER_CONFIG: i32 = 25;
    pub const GET_BROKER_CONFIG: i32 = 26;
    pub const GET_BROKER_RUNTIME_INFO: i32 = 28;
    /// mqadmin deleteExpiredCommitLog: delete expired segments now, whatever the hour.
    pub const DELETE_EXPIRED_COMMITLOG: i32 = 329;
    pub const SEARCH_OFFSET_BY_TIMESTAMP: i32 = 29;
    pub const GET_MAX_OFFSET: i32 = 30;
    pub const GET_MIN_OFFSET: i32 = 31;
    pub const GET_EARLIEST_MSG_STORETIME: i32 = 32;
    pub const VIEW_MESSAGE_BY_ID: i32 = 33;
    pub const HEART_BEAT: i32 = 34;
    pub const CONSUMER_SEND_MSG_BACK: i32 = 36;
    pub const UNREGISTER_CLIENT: i32 = 35;
    pub const END_TRANSACTION: i32 = 37;
    pub const GET_CONSUMER_LIST_BY_GROUP: i32 = 38;
    pub const CHECK_TRANSACTION_STATE: i32 = 39;
    pub const NOTIFY_CONSUMER_IDS_CHANGED: i32 = 40;
    pub const LOCK_BATCH_MQ: i32 = 41;
    pub const UNLOCK_BATCH_MQ: i32 = 42;
    pub const PUT_KV_CONFIG: i32 = 100;
    pub const GET_KV_CONFIG: i32 = 101;
    pub const DELETE_KV_CONFIG: i32 = 102;
    pub const REGISTER_BROKER: i32 = 103;
    pub const UNREGISTER_BROKER: i32 = 104;
    pub const GET_ROUTEINFO_BY_TOPIC: i32 = 105;
    pub const GET_BROKER_CLUSTER_INFO: i32 = 106;
    pub const UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: i32 = 200;
    pub const GET_ALL_SUBSCRIPTIONGROUP_CONFIG: i32 = 201;
    pub const GET_TOPIC_STATS_INFO: i32 = 202;
    pub const GET_CONSUMER_CONNECTION_LIST: i32 = 203;
    pub const GET_PRODUCER_CONNECTION_LIST: i32 = 204;
    pub const DELETE_SUBSCRIPTIONGROUP: i32 = 207;
    pub const GET_CONSUME_STATS: i32 = 208;
    pub const DELETE_TOPIC_IN_BROKER: i32 = 215;
    pub const DELETE_TOPIC_IN_NAMESRV: i32 = 216;
    pub const GET_KVLIST_BY_NAMESPACE: i32 = 219;
    pub const RESET_CONSUMER_CLIENT_OFFSET: i32 = 220;
    pub const GET_CONSUMER_STATUS_FROM_CLIENT: i32 = 221;
    pub const INVOKE_BROKER_TO_RESET_OFFSET: i32 = 222;
    pub const INVOKE_BROKER_TO_GET_CONSUMER_STATUS: i32 = 223;
    pub const GET_ALL_TOPIC_LIST_FROM_NAMESERVER: i32 = 206;
    pub const QUERY_TOPIC_CONSUME_BY_WHO: i32 = 300;
    pub const VIEW_BROKER_STATS_DATA: i32 = 315;
    pub const QUERY_TOPICS_BY_CONSUMER: i32 = 343;
    pub const GET_TOPIC_CONFIG: i32 = 351;
    pub const GET_SUBSCRIPTIONGROUP_CONFIG: i32 = 352;
    pub const GET_CONSUMER_RUNNING_INFO: i32 = 307;
    pub const SEND_MESSAGE_V2: i32 = 310;
    pub const UPDATE_NAMESRV_CONFIG: i32 = 318;
    pub const GET_NAMESRV_CONFIG: i32 = 319;
    pub const SEND_BATCH_MESSAGE: i32 = 320;
    pub const LITE_PULL_MESSAGE: i32 = 361;
    /// Broker → controller: liveness, log end, epoch and (from the master) the in-sync set.
    pub const BROKER_HEARTBEAT: i32 = 904;
    /// Admin → controller: elect a master now (mqadmin electMaster).
    pub const CONTROLLER_ELECT_MASTER: i32 = 1002;
    /// Broker or admin → controller: a group's master, epoch and in-sync set, changing
    /// nothing.
    pub const CONTROLLER_GET_REPLICA_INFO: i32 = 1004;
    /// Admin → controller: which controller leads (mqadmin asks it before electMaster and
    /// getSyncStateSet).
    pub const CONTROLLER_GET_METADATA_INFO: i32 = 1005;
    /// Admin → controller: the in-sync sets (mqadmin getSyncStateSet).
    pub const CONTROLLER_GET_SYNC_STATE_DATA: i32 = 1006;
    /// Petrel's own: Raft messages between the controllers of one group (RocketMQ's go over
    /// DLedger's protocol on the same `controllerDLegerPeers` ports).
    pub const CONTROLLER_RAFT_MESSAGE: i32 = 1901;
}

/// Response codes (spec §2.2).
pub mod response {
    pub const SUCCESS: i32 = 0;
    pub const SYSTEM_ERROR: i32 = 1;
    pub const SYSTEM_BUSY: i32 = 2;
    pub const REQUEST_CODE_NOT_SUPPORTED: i32 = 3;
    /// Stored on the master; its slave did not confirm within `syncFlushTimeout`.
    pub const FLUSH_SLAVE_TIMEOUT: i32 = 12;
    /// Stored on the master; no slave is in sync.
    pub const SLAVE_NOT_AVAILABLE: i32 = 11;
    pub const MESSAGE_ILLEGAL: i32 = 13;
    pub const SERVICE_NOT_AVAILABLE: i32 = 14;
    pub const NO_PERMISSION: i32 = 16;
    pub const TOPIC_NOT_EXIST: i32 = 17;
    pub const PULL_NOT_FOUND: i32 = 19;
    pub const PULL_RETRY_IMMEDIATELY: i32 = 20;
    pub const PULL_OFFSET_MOVED: i32 = 21;
    pub const QUERY_NOT_FOUND: i32 = 22;
    pub const SUBSCRIPTION_PARSE_FAILED: i32 = 23;
    pub const SUBSCRIPTION_NOT_EXIST: i32 = 24;
    pub const SUBSCRIPTION_GROUP_NOT_EXIST: i32 = 26;
    pub const CONSUMER_NOT_ONLINE: i32 = 206;
    pub const INVALID_PARAMETER: i32 = 29;
    pub const CONTROLLER_NOT_LEADER: i32 = 2007;
    pub const CONTROLLER_ELECT_MASTER_FAILED: i32 = 2012;
}

/// Flag bit 0: this command is a response.
pub const FLAG_RESPONSE: i32 = 1;
/// Flag bit 1: a oneway request; no response may be sent.
pub const FLAG_ONEWAY: i32 = 2;

/// The `version` Petrel puts in every command it sends: `V5_3_3`. Clients store the broker's
/// heartbeat-response version and gate features on it, so it is fixed, never echoed (spec §1.7).
pub const PETREL_VERSION: i32 = 479;

/// `LanguageCode` (spec §1.2). Names travel in JSON headers, ordinals in binary headers.
const LANGUAGES: [&str; 14] = [
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP",
    "OMS", "RUST", "NODE_JS",
];

/// A sender's language as its ordinal; unknown names and ordinals map to `OTHER` (7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanguageCode(pub u8);

impl LanguageCode {
    pub const JAVA: LanguageCode = LanguageCode(0);
    pub const OTHER: LanguageCode = LanguageCode(7);
    pub const RUST: LanguageCode = LanguageCode(12);

    pub fn from_name(name: &str) -> LanguageCode {
        LANGUAGES
            .iter()
            .position(|known| *known == name)
            .map_or(LanguageCode::OTHER, |i| LanguageCode(i as u8))
    }

    pub fn from_ordinal(ordinal: u8) -> LanguageCode {
        if (ordinal as usize) < LANGUAGES.len() {
            LanguageCode(ordinal)
        } else {
            LanguageCode::OTHER
        }
    }

    pub fn name(self) -> &'static str {
        LANGUAGES.get(self.0 as usize).copied().unwrap_or("OTHER")
    }
}
