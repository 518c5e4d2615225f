package petrel;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * pull &lt;namesrv&gt; &lt;group&gt; &lt;topic&gt; &lt;timeoutSec&gt; [expect] — reads every queue of the topic
 * from offset 0 with DefaultLitePullConsumer in assign mode (LITE_PULL_MESSAGE); autoCommit is
 * off and nothing is committed, so the group's offsets are untouched and a group with no
 * committed offset starts each queue at its first offset (CONSUME_FROM_FIRST_OFFSET).
 *
 * <p>It deliberately does not seekToBegin(): assign() has already started a pull task per
 * queue, and DefaultLitePullConsumerImpl.seek() races it. The old task, past its cancelled
 * check, can take the seek offset in nextPullOffset() and drop it, leaving the new task to
 * pull from where the old one had got to (the end of the queue): the queue is then never
 * read from the start. Its interrupt also closes the shared connection under other requests. With
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
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.start();
        int received = 0;
        try {
            Collection<MessageQueue> queues = consumer.fetchMessageQueues(topic);
            List<MessageQueue> list = new ArrayList<>(queues);
            consumer.assign(list);

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
}
