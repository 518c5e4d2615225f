package petrel;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyContext;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.remoting.protocol.heartbeat.MessageModel;

/**
 * push &lt;namesrv&gt; &lt;group&gt; &lt;topic&gt; &lt;subExpression&gt; &lt;expect&gt; &lt;timeoutSec&gt;
 * &lt;idleSec&gt; [instanceName] [CLUSTERING|BROADCASTING]
 */
final class Push {
    private static final String USAGE =
            "push <namesrv> <group> <topic> <subExpression> <expect> <timeoutSec> <idleSec> [instanceName] [model]";

    private Push() {}

    static int run(String[] a) throws Exception {
        Interop.need(a, 7, USAGE);
        String namesrv = a[0];
        String group = a[1];
        String topic = a[2];
        String subExpression = a[3];
        int expect = Interop.intArg(a, 4, "expect");
        int timeoutSec = Interop.intArg(a, 5, "timeoutSec");
        int idleSec = Interop.intArg(a, 6, "idleSec");
        String instanceName = a.length > 7 ? a[7] : null;
        MessageModel model = a.length > 8 ? MessageModel.valueOf(a[8]) : MessageModel.CLUSTERING;

        AtomicInteger received = new AtomicInteger();
        AtomicLong lastAt = new AtomicLong(0);
        Object lock = new Object();

        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group, Interop.aclHook());
        consumer.setNamesrvAddr(namesrv);
        consumer.setVipChannelEnabled(false);
        if (instanceName != null && !instanceName.isEmpty()) consumer.setInstanceName(instanceName);
        consumer.setMessageModel(model);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        // Let in-flight listener calls finish (and their offsets reach the offset
        // store) before shutdown() persists offsets; with the default of 0 the
        // last consumed messages' offsets can be lost and they are redelivered.
        consumer.setAwaitTerminationMillisWhenShutdown(10_000);
        consumer.subscribe(topic, subExpression);
        consumer.registerMessageListener(new MessageListenerConcurrently() {
            @Override
            public ConsumeConcurrentlyStatus consumeMessage(List<MessageExt> msgs, ConsumeConcurrentlyContext ctx) {
                synchronized (lock) {
                    for (MessageExt m : msgs) {
                        java.util.Map<String, Object> line = Msgs.line(m);
                        if (instanceName != null) line.put("instance", instanceName);
                        Json.emit(line);
                        received.incrementAndGet();
                    }
                    lastAt.set(System.nanoTime());
                    lock.notifyAll();
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            }
        });
        consumer.start();
        Json.emit(Json.obj("started", true));

        long deadline = System.nanoTime() + timeoutSec * 1_000_000_000L;
        long idleNs = idleSec * 1_000_000_000L;
        try {
            synchronized (lock) {
                while (true) {
                    long now = System.nanoTime();
                    int n = received.get();
                    if (expect > 0 && n >= expect) break;
                    if (expect <= 0 && n > 0 && now - lastAt.get() >= idleNs) break;
                    if (now >= deadline) {
                        System.err.println("push: timeout after " + timeoutSec + "s with " + n + " received");
                        break;
                    }
                    lock.wait(Math.max(1, Math.min(200, (deadline - now) / 1_000_000L)));
                }
            }
        } finally {
            // shutdown() persists the consumed offsets to the broker and unregisters.
            consumer.shutdown();
        }
        Json.emit(Json.obj("done", true, "received", received.get()));
        return 0;
    }
}
