package petrel;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * retry &lt;namesrv&gt; &lt;group&gt; &lt;topic&gt; &lt;failTimes&gt; &lt;maxReconsumeTimes&gt;
 * &lt;expectDeliveries&gt; &lt;timeoutSec&gt; — a push consumer that answers RECONSUME_LATER while
 * a message's reconsumeTimes is below failTimes, so the client gives it back
 * (CONSUMER_SEND_MSG_BACK). Prints one line per delivery, with "result".
 */
final class Retry {
    private static final String USAGE =
            "retry <namesrv> <group> <topic> <failTimes> <maxReconsumeTimes> <expectDeliveries> <timeoutSec>";

    private Retry() {}

    static int run(String[] a) throws Exception {
        Interop.need(a, 7, USAGE);
        int failTimes = Interop.intArg(a, 3, "failTimes");
        int maxReconsume = Interop.intArg(a, 4, "maxReconsumeTimes");
        int expect = Interop.intArg(a, 5, "expectDeliveries");
        int timeoutSec = Interop.intArg(a, 6, "timeoutSec");
        AtomicInteger deliveries = new AtomicInteger();
        Object lock = new Object();

        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(a[1]);
        consumer.setNamesrvAddr(a[0]);
        consumer.setVipChannelEnabled(false);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.setMaxReconsumeTimes(maxReconsume);
        consumer.setConsumeMessageBatchMaxSize(1);
        consumer.setAwaitTerminationMillisWhenShutdown(10_000);
        consumer.subscribe(a[2], "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            MessageExt m = msgs.get(0);
            boolean fail = m.getReconsumeTimes() < failTimes;
            Map<String, Object> line = Msgs.line(m);
            line.put("result", fail ? "RECONSUME_LATER" : "CONSUME_SUCCESS");
            line.put("topic", m.getTopic());
            synchronized (lock) {
                Json.emit(line);
                deliveries.incrementAndGet();
                lock.notifyAll();
            }
            return fail ? ConsumeConcurrentlyStatus.RECONSUME_LATER : ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        long deadline = System.nanoTime() + timeoutSec * 1_000_000_000L;
        try {
            synchronized (lock) {
                while (deliveries.get() < expect) {
                    long left = (deadline - System.nanoTime()) / 1_000_000L;
                    if (left <= 0) {
                        System.err.println("retry: timeout with " + deliveries.get() + " deliveries");
                        break;
                    }
                    lock.wait(Math.min(200, left));
                }
            }
        } finally {
            consumer.shutdown();
        }
        Json.emit(Json.obj("done", true, "deliveries", deliveries.get()));
        return 0;
    }
}
