package petrel;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * orderly &lt;namesrv&gt; &lt;group&gt; &lt;topic&gt; &lt;expectDistinct&gt; &lt;timeoutSec&gt;
 * &lt;failEvery&gt; &lt;instanceName&gt; — an orderly push consumer (MessageListenerOrderly, so it
 * holds its queues' locks on the broker). The first delivery of every message whose idx is a
 * multiple of failEvery (failEvery &gt; 0) answers SUSPEND_CURRENT_QUEUE_A_MOMENT, so the
 * client retries it in place. Prints one line per delivery, with "result" and "instance";
 * stops once expectDistinct distinct messages were consumed successfully.
 */
final class Orderly {
    private static final String USAGE =
            "orderly <namesrv> <group> <topic> <expectDistinct> <timeoutSec> <failEvery> <instanceName>";

    private Orderly() {}

    static int run(String[] a) throws Exception {
        Interop.need(a, 7, USAGE);
        int expect = Interop.intArg(a, 3, "expectDistinct");
        int timeoutSec = Interop.intArg(a, 4, "timeoutSec");
        int failEvery = Interop.intArg(a, 5, "failEvery");
        String instance = a[6];
        Set<String> done = ConcurrentHashMap.newKeySet();
        Set<String> failedOnce = ConcurrentHashMap.newKeySet();
        Object lock = new Object();

        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(a[1]);
        consumer.setNamesrvAddr(a[0]);
        consumer.setInstanceName(instance);
        consumer.setVipChannelEnabled(false);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.setConsumeMessageBatchMaxSize(1);
        consumer.setSuspendCurrentQueueTimeMillis(500);
        consumer.setAwaitTerminationMillisWhenShutdown(10_000);
        consumer.subscribe(a[2], "*");
        consumer.registerMessageListener((MessageListenerOrderly) (msgs, ctx) -> {
            MessageExt m = msgs.get(0);
            String idx = m.getUserProperty("idx");
            boolean fail = failEvery > 0 && idx != null
                    && Integer.parseInt(idx) % failEvery == 0 && failedOnce.add(m.getMsgId());
            Map<String, Object> line = Msgs.line(m);
            line.put("result", fail ? "SUSPEND" : "SUCCESS");
            line.put("instance", instance);
            synchronized (lock) {
                Json.emit(line);
                if (!fail) done.add(m.getMsgId());
                lock.notifyAll();
            }
            return fail ? ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT : ConsumeOrderlyStatus.SUCCESS;
        });
        consumer.start();
        Json.emit(Json.obj("started", true, "instance", instance));
        long deadline = System.nanoTime() + timeoutSec * 1_000_000_000L;
        try {
            synchronized (lock) {
                while (done.size() < expect) {
                    long left = (deadline - System.nanoTime()) / 1_000_000L;
                    if (left <= 0) {
                        System.err.println("orderly: timeout with " + done.size() + " consumed");
                        break;
                    }
                    lock.wait(Math.min(200, left));
                }
            }
        } finally {
            consumer.shutdown();
        }
        Json.emit(Json.obj("done", true, "consumed", done.size(), "instance", instance));
        return 0;
    }
}
