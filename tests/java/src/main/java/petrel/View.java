package petrel;

import java.util.Map;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * view &lt;namesrv&gt; &lt;topic&gt; &lt;id&gt;... — looks each message up with the client's
 * viewMessage(topic, id): an offsetMsgId is decoded and VIEW_MESSAGE_BY_ID sent to the broker it
 * names; any other ID (a UNIQ_KEY) is looked up with QUERY_MESSAGE on every broker of the
 * topic. Prints one line per ID: the message, or the error.
 * querykey &lt;namesrv&gt; &lt;topic&gt; &lt;key&gt; &lt;maxNum&gt; &lt;beginMs&gt; &lt;endMs&gt; — the
 * client's queryMessage: QUERY_MESSAGE on every broker, merged; one line per message.
 */
final class View {
    private static final String USAGE = "view <namesrv> <topic> <offsetMsgId>...";

    private View() {}

    @SuppressWarnings("deprecation")
    static int run(String[] a) throws Exception {
        Interop.need(a, 3, USAGE);
        DefaultMQProducer producer = new DefaultMQProducer("PetrelView");
        producer.setNamesrvAddr(a[0]);
        producer.setVipChannelEnabled(false);
        producer.start();
        try {
            for (int i = 2; i < a.length; i++) {
                try {
                    MessageExt m = producer.viewMessage(a[1], a[i]);
                    Map<String, Object> line = Msgs.line(m);
                    line.put("id", a[i]);
                    line.put("topic", m.getTopic());
                    line.put("commitLogOffset", m.getCommitLogOffset());
                    Json.emit(line);
                } catch (Exception e) {
                    Json.emit(Json.obj("id", a[i], "error", Interop.describe(e)));
                }
            }
        } finally {
            producer.shutdown();
        }
        Json.emit(Json.obj("done", true));
        return 0;
    }

    @SuppressWarnings("deprecation")
    static int queryKey(String[] a) throws Exception {
        Interop.need(a, 6, "querykey <namesrv> <topic> <key> <maxNum> <beginMs> <endMs>");
        DefaultMQProducer producer = new DefaultMQProducer("PetrelQuery");
        producer.setNamesrvAddr(a[0]);
        producer.setVipChannelEnabled(false);
        producer.start();
        int n = 0;
        try {
            org.apache.rocketmq.client.QueryResult r = producer.queryMessage(
                    a[1], a[2], Interop.intArg(a, 3, "maxNum"), Long.parseLong(a[4]), Long.parseLong(a[5]));
            for (MessageExt m : r.getMessageList()) {
                Map<String, Object> line = Msgs.line(m);
                line.put("topic", m.getTopic());
                Json.emit(line);
                n++;
            }
        } finally {
            producer.shutdown();
        }
        Json.emit(Json.obj("done", true, "found", n));
        return 0;
    }
}
