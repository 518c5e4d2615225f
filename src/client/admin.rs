//! Administrative requests of Petrel's client: topic creation, the name servers' KV store,
//! and message lookups (by offsetMsgId, by key, consume stats).

use bytes::Bytes;
use petrel_shards::broker::metadata::TopicConfig;
use petrel_shards::record;
use petrel_shards::remoting::{request, response, ExtFields, RemotingCommand};

use super::message::decode_messages;
use super::{
    fastjson, Client, ClientError, ConsumeStats, KeyQuery, MessageExt, MessageQueue, QueueProgress,
};

impl Client {
    /// UPDATE_AND_CREATE_TOPIC on the broker (or front door) at `addr`; the reply of a front
    /// door names where the write queues went (`queueLayout`, `brokerName:n;…`). The topic's
    /// `attributes` are sent as changes: `+key` to set its value, `-key` to remove.
    pub fn create_topic(
        &mut self,
        addr: &str,
        topic: &TopicConfig,
    ) -> Result<RemotingCommand, ClientError> {
        let mut ext = ExtFields::new();
        ext.insert("topic", &topic.topic_name);
        ext.insert("defaultTopic", "TBW102");
        ext.insert("readQueueNums", topic.read_queue_nums.to_string());
        ext.insert("writeQueueNums", topic.write_queue_nums.to_string());
        ext.insert("perm", topic.perm.to_string());
        ext.insert("topicFilterType", &topic.topic_filter_type);
        ext.insert("topicSysFlag", topic.topic_sys_flag.to_string());
        ext.insert("order", topic.order.to_string());
        if !topic.attributes.is_empty() {
            // The map holds changes here: `+key` → value to set, `-key` to remove.
            let changes: Vec<String> = topic
                .attributes
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.clone()
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect();
            ext.insert("attributes", changes.join(","));
        }
        let reply = self.call(
            addr,
            RemotingCommand::request(request::UPDATE_AND_CREATE_TOPIC, ext, Bytes::new()),
        )?;
        if reply.code != response::SUCCESS {
            return Err(ClientError::broker(&reply));
        }
        Ok(reply)
    }

    /// PUT_KV_CONFIG on every name server of the list (as mqadmin does); the first failure is
    /// the error.
    pub fn put_kv_everywhere(
        &mut self,
        namespace: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        let fields = [
            ("namespace", namespace.to_string()),
            ("key", key.to_string()),
            ("value", value.to_string()),
        ];
        self.call_every_namesrv(request::PUT_KV_CONFIG, &fields)
    }

    /// A request to every name server of the list; the first failure is the error.
    pub fn call_every_namesrv(
        &mut self,
        code: i32,
        fields: &[(&str, String)],
    ) -> Result<(), ClientError> {
        for addr in self.namesrv.clone() {
            let reply = self.call_fields(&addr, code, fields)?;
            if reply.code != response::SUCCESS {
                return Err(ClientError::broker(&reply));
            }
        }
        Ok(())
    }

    /// A broker request that must succeed; its reply otherwise becomes the error.
    pub fn call_ok(
        &mut self,
        addr: &str,
        code: i32,
        fields: &[(&str, String)],
    ) -> Result<RemotingCommand, ClientError> {
        let reply = self.call_fields(addr, code, fields)?;
        if reply.code != response::SUCCESS {
            return Err(ClientError::broker(&reply));
        }
        Ok(reply)
    }

    /// VIEW_MESSAGE_BY_ID: the message an offsetMsgId names, from the broker it names.
    pub fn view_message(&mut self, offset_msg_id: &str) -> Result<MessageExt, ClientError> {
        let (addr, offset) = record::decode_offset_msg_id(offset_msg_id)
            .ok_or_else(|| ClientError::Body(format!("not an offsetMsgId: {offset_msg_id}")))?;
        let reply = self.call_fields(
            &addr.to_string(),
            request::VIEW_MESSAGE_BY_ID,
            &[("offset", offset.to_string())],
        )?;
        if reply.code != response::SUCCESS {
            return Err(ClientError::broker(&reply));
        }
        decode_messages(&reply.body, "")
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Body("VIEW_MESSAGE_BY_ID answered no record".into()))
    }

    /// GET_CONSUME_STATS: `group`'s progress per queue on the broker at `addr`.
    pub fn consume_stats(
        &mut self,
        addr: &str,
        group: &str,
        topic: Option<&str>,
    ) -> Result<ConsumeStats, ClientError> {
        let mut fields = vec![("consumerGroup", group.to_string())];
        if let Some(t) = topic {
            fields.push(("topic", t.to_string()));
        }
        let reply = self.call_fields(addr, request::GET_CONSUME_STATS, &fields)?;
        if reply.code != response::SUCCESS {
            return Err(ClientError::broker(&reply));
        }
        let pairs =
            fastjson::object_keyed_pairs(&reply.body, "offsetTable").map_err(ClientError::Body)?;
        let int = |v: &serde_json::Value, k: &str| v[k].as_i64().unwrap_or(0);
        // `consumeTps` precedes the map, which fastjson puts last.
        let tps = std::str::from_utf8(&reply.body)
            .ok()
            .and_then(|t| t.split_once("\"consumeTps\":"))
            .and_then(|(_, rest)| rest.split([',', '}']).next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0.0);
        let queues = pairs
            .into_iter()
            .map(|(mq, w)| QueueProgress {
                queue: MessageQueue {
                    topic: mq["topic"].as_str().unwrap_or_default().to_string(),
                    broker_name: mq["brokerName"].as_str().unwrap_or_default().to_string(),
                    queue_id: int(&mq, "queueId") as i32,
                },
                broker_offset: int(&w, "brokerOffset"),
                consumer_offset: int(&w, "consumerOffset"),
                pull_offset: int(&w, "pullOffset"),
                last_timestamp: int(&w, "lastTimestamp"),
            })
            .collect();
        Ok(ConsumeStats { tps, queues })
    }

    /// QUERY_MESSAGE on the broker at `addr`: messages of `topic` with `key` in their KEYS
    /// stored within [begin_ms, end_ms]; none found is an empty list.
    pub fn query_by_key(
        &mut self,
        addr: &str,
        broker_name: &str,
        query: &KeyQuery<'_>,
    ) -> Result<Vec<MessageExt>, ClientError> {
        let mut ext = ExtFields::new();
        ext.insert("topic", query.topic);
        ext.insert("key", query.key);
        ext.insert("maxNum", query.max.to_string());
        ext.insert("beginTimestamp", query.begin_ms.to_string());
        ext.insert("endTimestamp", query.end_ms.to_string());
        if query.unique {
            ext.insert("_UNIQUE_KEY_QUERY", "true");
        }
        let reply = self.call(
            addr,
            RemotingCommand::request(request::QUERY_MESSAGE, ext, Bytes::new()),
        )?;
        match reply.code {
            response::SUCCESS => Ok(decode_messages(&reply.body, broker_name)),
            response::QUERY_NOT_FOUND => Ok(Vec::new()),
            _ => Err(ClientError::broker(&reply)),
        }
    }
}

impl Client {
    /// INVOKE_BROKER_TO_RESET_OFFSET on the broker at `addr`: the group's offsets on `topic`
    /// move to the first message stored at or after `timestamp_ms` (−1: the end). Returns the
    /// new offset of each queue.
    pub fn reset_offset(
        &mut self,
        addr: &str,
        group: &str,
        topic: &str,
        timestamp_ms: i64,
    ) -> Result<Vec<(MessageQueue, i64)>, ClientError> {
        let fields = [
            ("group", group.to_string()),
            ("topic", topic.to_string()),
            ("timestamp", timestamp_ms.to_string()),
            ("isForce", "true".to_string()),
        ];
        let reply = self.call_fields(addr, request::INVOKE_BROKER_TO_RESET_OFFSET, &fields)?;
        if reply.code != response::SUCCESS {
            return Err(ClientError::broker(&reply));
        }
        let pairs =
            fastjson::object_keyed_pairs(&reply.body, "offsetTable").map_err(ClientError::Body)?;
        Ok(pairs
            .into_iter()
            .map(|(mq, offset)| {
                let queue = MessageQueue {
                    topic: mq["topic"].as_str().unwrap_or_default().to_string(),
                    broker_name: mq["brokerName"].as_str().unwrap_or_default().to_string(),
                    queue_id: mq["queueId"].as_i64().unwrap_or(-1) as i32,
                };
                (queue, offset.as_i64().unwrap_or(-1))
            })
            .collect())
    }
}

impl Client {
    /// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP on the broker (or front door) at `addr`.
    pub fn create_group(
        &mut self,
        addr: &str,
        config: &petrel_shards::broker::metadata::SubscriptionGroupConfig,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(config).expect("a group config serializes");
        let reply = self.call(
            addr,
            RemotingCommand::request(
                request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
                ExtFields::new(),
                Bytes::from(body),
            ),
        )?;
        if reply.code != response::SUCCESS {
            return Err(ClientError::broker(&reply));
        }
        Ok(())
    }
}
