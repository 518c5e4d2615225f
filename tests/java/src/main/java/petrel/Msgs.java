package petrel;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.apache.rocketmq.common.message.MessageExt;

/** The JSON line printed for every consumed message (push and pull). */
final class Msgs {
    private Msgs() {}

    static Map<String, Object> line(MessageExt m) {
        byte[] body = m.getBody();
        return Json.obj(
                "msgId", m.getMsgId(),
                "body", body == null ? null : new String(body, StandardCharsets.UTF_8),
                "tags", m.getTags(),
                "keys", m.getKeys(),
                "idx", m.getUserProperty("idx"),
                "okey", m.getUserProperty("okey"),
                "at", System.nanoTime(),
                "wallMs", System.currentTimeMillis(),
                "color", m.getUserProperty("color"),
                "broker", m.getBrokerName(),
                "queueId", m.getQueueId(),
                "queueOffset", m.getQueueOffset(),
                "reconsumeTimes", m.getReconsumeTimes(),
                "bornTimestamp", m.getBornTimestamp(),
                "storeTimestamp", m.getStoreTimestamp());
    }
}
