//! Remarks users see in responses whose wording the spec or RocketMQ fixes (F10, F24, F34 …).
//! Kept in one place so tests can assert them exactly.

pub fn body_too_large(max: usize) -> String {
    format!("message body size over max message size, max: {max}")
}

pub fn topic_not_exist(topic: &str) -> String {
    format!("topic[{topic}] not exist, apply first please!")
}

pub fn queue_id_illegal(
    queue_id: i32,
    topic: &str,
    queue_nums: i32,
    peer: std::net::SocketAddr,
) -> String {
    format!("queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.writeQueueNums:[{queue_nums}] consumer:[{peer}]")
}

pub fn subscription_group_not_exist(group: &str) -> String {
    format!("subscription group [{group}] does not exist")
}

pub const CONSUMER_GROUP_INFO_NOT_EXIST: &str = "the consumer's group info not exist";
pub const SUBSCRIPTION_NOT_EXIST: &str = "the consumer's subscription not exist";

pub fn no_consumer_for_group(group: &str) -> String {
    format!("no consumer for this group, {group}")
}

pub fn request_code_not_supported(code: i32) -> String {
    format!(" request type {code} not supported")
}

pub fn send_forbidden(topic: &str) -> String {
    format!("Sending message to topic[{topic}] is forbidden.")
}

/// `rejectTransactionMessage=true`, in RocketMQ's words.
pub fn transaction_forbidden(broker: &str) -> String {
    format!("the broker[{broker}] sending transaction message is forbidden")
}
pub const TRANSACTION_IN_BATCH: &str = "transactional messages cannot be sent in a batch";
pub const DELAY_IN_BATCH: &str = "delay-level messages cannot be sent in a batch";

pub fn delay_body_too_large(len: usize, max: usize) -> String {
    format!("the body of a delay-level message is {len} bytes; at most {max} bytes are allowed")
}
pub const SQL92_NOT_SUPPORTED: &str =
    "The broker does not support consumer to filter message by SQL92";
pub const NO_PERMISSION_READ: &str = "the topic is not readable";
pub const NO_PERMISSION_WRITE: &str = "the topic is not writable";

/// VIEW_MESSAGE_BY_ID found no record at the offset (Apache's wording).
pub fn no_message_at_offset(offset: i64) -> String {
    format!("can not find message by the offset, {offset}")
}

/// A write sent to a slave (RocketMQ answers SERVICE_NOT_AVAILABLE the same way).
pub fn slave_refuses_writes(broker_name: &str) -> String {
    format!("service not available now: {broker_name} is a slave (brokerRole=SLAVE); messages are put to its master")
}

/// A write refused in controller mode by a replica the controller has not named master (a
/// slave, one still starting, or an old master the controller fenced).
pub fn not_the_elected_master(broker_name: &str, epoch: u64) -> String {
    format!("service not available now: {broker_name} is not the master the controller elected (its epoch {epoch}); messages are put to the elected master")
}

/// A write refused because the disk is fuller than `diskSpaceWarningLevelRatio`.
pub fn disk_above_warning(used_percent: f64, warning_percent: u8) -> String {
    format!("service not available now, maybe disk full: the disk is {used_percent:.1}% used, above diskSpaceWarningLevelRatio {warning_percent}%; writes resume once retention or the operator frees space")
}

/// A write refused because the commit log cannot grow (RocketMQ's SERVICE_NOT_AVAILABLE).
pub const DISK_FULL: &str =
    "service not available now, maybe disk full: the commit log cannot grow; writes resume once space is back";
