package petrel;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * pull &lt;namesrv&gt; &lt;group&gt; &lt;topic&gt; &lt;timeoutSec&gt; [expect] — reads every queue of the topic
 * from its minimum offset with DefaultLitePullConsumer in assign mode (LITE_PULL_MESSAGE);
 * autoCommit is off and nothing is committed, so the group's offsets are untouched. With
 * {@code expect} &gt; 0 it stops once that many distinct messages arrived (or at the timeout);
 * without, after 3 s with no message.
 */
final class Pull {
    private static final String USAGE = "pull <namesrv> <group> <topic> <timeoutSec> [expect]";
    private static final long IDLE_MS = 3000;

    private Pull() {}

    static int run(String[] a) throws Exception {
        Interop.need(a, 4, USAGE);
        String namesrv = a[0];
        String group = a[1];
        String topic = a[2];
        int timeoutSec = Interop.intArg(a, 3, "timeoutSec");
        int expect = a.length > 4 ? Interop.intArg(a, 4, "expect") : 0;
        java.util.Set<String> distinct = new java.util.HashSet<>();

        DefaultLitePullConsumer consumer = new DefaultLitePullConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.setVipChannelEnabled(false);
        consumer.setAutoCommit(false);
        consumer.start();
        int received = 0;
        try {
            Collection<MessageQueue> queues = consumer.fetchMessageQueues(topic);
            List<MessageQueue> list = new ArrayList<>(queues);
            consumer.assign(list);
            for (MessageQueue mq : list) seekToBegin(consumer, mq);

            long deadline = System.currentTimeMillis() + timeoutSec * 1000L;
            long last = System.currentTimeMillis();
            while (true) {
                long now = System.currentTimeMillis();
                if (now >= deadline) {
                    System.err.println("pull: timeout after " + timeoutSec + "s with " + received + " received");
                    break;
                }
                if (expect > 0 ? distinct.size() >= expect : now - last >= IDLE_MS) break;
                List<MessageExt> msgs = consumer.poll(Math.max(1, Math.min(500, deadline - now)));
                if (msgs != null && !msgs.isEmpty()) {
                    for (MessageExt m : msgs) {
                        Json.emit(Msgs.line(m));
                        received++;
                        distinct.add(m.getMsgId());
                    }
                    last = System.currentTimeMillis();
                }
            }
        } finally {
            consumer.shutdown();
        }
        Json.emit(Json.obj("done", true, "received", received));
        return 0;
    }

    /**
     * seekToBegin, tried again if it fails the client's own way: seeking cancels the pull
     * tasks assign() started, an interrupted task reports a failed send and closes the shared
     * connection, and a seek in flight on it fails with "send request ... failed"
     * (DefaultLitePullConsumerImpl against any broker).
     */
    private static void seekToBegin(DefaultLitePullConsumer consumer, MessageQueue mq) throws Exception {
        for (int attempt = 1; ; attempt++) {
            try {
                consumer.seekToBegin(mq);
                return;
            } catch (org.apache.rocketmq.client.exception.MQClientException e) {
                if (attempt == 3) throw e;
                System.err.println("pull: seekToBegin " + mq + " failed (" + e.getMessage() + "), again");
            }
        }
    }
}
