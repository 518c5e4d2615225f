package petrel;

import java.util.Map;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * view &lt;namesrv&gt; &lt;topic&gt; &lt;offsetMsgId&gt;... — looks each message up with the
 * client's viewMessage(topic, id), which decodes an offsetMsgId and sends VIEW_MESSAGE_BY_ID to
 * the broker it names; prints one line per ID: the message, or the error.
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
}
