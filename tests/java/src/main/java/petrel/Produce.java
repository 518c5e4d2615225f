package petrel;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;

/**
 * produce &lt;namesrv&gt; &lt;topic&gt; &lt;count&gt; &lt;sync|async|oneway|batch|delayN|orderN&gt; [group] [firstIndex]
 * — orderN: sync sends through a MessageQueueSelector on the hash of the order key
 * "order-(i mod N)", carried in the user property "okey".
 */
final class Produce {
    private static final String USAGE =
            "produce <namesrv> <topic> <count> <sync|async|oneway|batch|delayN|orderN> [group] [firstIndex]";
    private static final int ASYNC_IN_FLIGHT = 64;
    private static final int BATCH_SIZE = 10;

    private Produce() {}

    static int run(String[] a) throws Exception {
        Interop.need(a, 4, USAGE);
        String namesrv = a[0];
        String topic = a[1];
        int count = Interop.intArg(a, 2, "count");
        String mode = a[3];
        String group = a.length > 4 ? a[4] : "petrel_interop_producer";
        int first = a.length > 5 ? Interop.intArg(a, 5, "firstIndex") : 0;
        // delayN: sync sends with setDelayTimeLevel(N).
        int delayLevel = mode.startsWith("delay") ? Integer.parseInt(mode.substring(5)) : 0;
        if (delayLevel > 0) mode = "sync";
        // orderN: sync sends, the queue chosen by the order key.
        int orderKeys = mode.startsWith("order") ? Integer.parseInt(mode.substring(5)) : 0;
        if (orderKeys > 0) mode = "sync";
        if (!mode.equals("sync") && !mode.equals("async") && !mode.equals("oneway") && !mode.equals("batch")) {
            throw new Interop.UsageException("mode must be sync|async|oneway|batch|delayN, got: " + mode);
        }

        DefaultMQProducer producer = new DefaultMQProducer(group, Interop.aclHook());
        producer.setNamesrvAddr(namesrv);
        producer.setVipChannelEnabled(false);
        producer.setSendMsgTimeout(5000);
        producer.setRetryTimesWhenSendFailed(2);
        producer.start();

        AtomicInteger ok = new AtomicInteger();
        AtomicInteger failed = new AtomicInteger();
        try {
            switch (mode) {
                case "sync":
                    for (int i = first; i < first + count; i++) {
                        try {
                            Message m = message(topic, i);
                            if (delayLevel > 0) m.setDelayTimeLevel(delayLevel);
                            SendResult r;
                            if (orderKeys > 0) {
                                String key = "order-" + (i % orderKeys);
                                m.putUserProperty("okey", key);
                                r = producer.send(m, (mqs, msg, arg) ->
                                        mqs.get(Math.floorMod(arg.hashCode(), mqs.size())), key);
                            } else {
                                r = producer.send(m);
                            }
                            Json.emit(resultLine(i, r, -1));
                            (r.getSendStatus() == SendStatus.SEND_OK ? ok : failed).incrementAndGet();
                        } catch (Exception e) {
                            e.printStackTrace(System.err);
                            Json.emit(Json.obj("i", i, "error", Interop.describe(e)));
                            failed.incrementAndGet();
                        }
                    }
                    break;
                case "async":
                    runAsync(producer, topic, count, ok, failed);
                    break;
                case "oneway":
                    for (int i = 0; i < count; i++) {
                        try {
                            producer.sendOneway(message(topic, i));
                            Json.emit(Json.obj("i", i, "status", "ONEWAY"));
                            ok.incrementAndGet();
                        } catch (Exception e) {
                            e.printStackTrace(System.err);
                            Json.emit(Json.obj("i", i, "error", Interop.describe(e)));
                            failed.incrementAndGet();
                        }
                    }
                    break;
                case "batch":
                    for (int start = 0; start < count; start += BATCH_SIZE) {
                        int end = Math.min(count, start + BATCH_SIZE);
                        List<Message> batch = new ArrayList<>(end - start);
                        for (int i = start; i < end; i++) batch.add(message(topic, i));
                        try {
                            SendResult r = producer.send(batch);
                            String[] ids = split(r.getMsgId());
                            String[] offIds = split(r.getOffsetMsgId());
                            boolean good = r.getSendStatus() == SendStatus.SEND_OK;
                            for (int i = start; i < end; i++) {
                                int j = i - start;
                                Map<String, Object> line = resultLine(i, r, j);
                                if (ids.length == batch.size()) line.put("msgId", ids[j]);
                                if (offIds.length == batch.size()) line.put("offsetMsgId", offIds[j]);
                                Json.emit(line);
                                (good ? ok : failed).incrementAndGet();
                            }
                        } catch (Exception e) {
                            e.printStackTrace(System.err);
                            String err = Interop.describe(e);
                            for (int i = start; i < end; i++) {
                                Json.emit(Json.obj("i", i, "error", err));
                                failed.incrementAndGet();
                            }
                        }
                    }
                    break;
                default:
                    throw new IllegalStateException(mode);
            }
        } finally {
            producer.shutdown();
        }
        Json.emit(Json.obj("done", true, "sent", ok.get(), "failed", failed.get()));
        if (failed.get() > 0) {
            Json.emit(Json.obj("error", failed.get() + " of " + count + " messages failed"));
            return 1;
        }
        return 0;
    }

    private static void runAsync(DefaultMQProducer producer, String topic, int count,
                                 AtomicInteger ok, AtomicInteger failed) throws InterruptedException {
        Semaphore inFlight = new Semaphore(ASYNC_IN_FLIGHT);
        CountDownLatch done = new CountDownLatch(count);
        for (int n = 0; n < count; n++) {
            final int i = n;
            inFlight.acquire();
            try {
                producer.send(message(topic, i), new SendCallback() {
                    @Override
                    public void onSuccess(SendResult r) {
                        try {
                            Json.emit(resultLine(i, r, -1));
                            (r.getSendStatus() == SendStatus.SEND_OK ? ok : failed).incrementAndGet();
                        } finally {
                            inFlight.release();
                            done.countDown();
                        }
                    }

                    @Override
                    public void onException(Throwable e) {
                        try {
                            e.printStackTrace(System.err);
                            Json.emit(Json.obj("i", i, "error", Interop.describe(e)));
                            failed.incrementAndGet();
                        } finally {
                            inFlight.release();
                            done.countDown();
                        }
                    }
                });
            } catch (Exception e) {
                e.printStackTrace(System.err);
                Json.emit(Json.obj("i", i, "error", Interop.describe(e)));
                failed.incrementAndGet();
                inFlight.release();
                done.countDown();
            }
        }
        // Each callback fires at the latest after sendMsgTimeout (plus retries).
        long waitMs = 30_000L + 5_000L * 3 * Math.min(count, ASYNC_IN_FLIGHT);
        if (!done.await(waitMs, TimeUnit.MILLISECONDS)) {
            long missing = done.getCount();
            failed.addAndGet((int) missing);
            System.err.println("async: " + missing + " callbacks never fired");
        }
    }

    static Message message(String topic, int i) {
        Message m = new Message(topic, (i % 2 == 0) ? "TagA" : "TagB", "key-" + i,
                ("body-" + i).getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("idx", Integer.toString(i));
        m.putUserProperty("color", "blue");
        return m;
    }

    /** batchIndex &gt;= 0 adds "batchIndex" (position inside the batch). */
    private static Map<String, Object> resultLine(int i, SendResult r, int batchIndex) {
        Map<String, Object> m = Json.obj(
                "i", i,
                "status", r.getSendStatus() == null ? null : r.getSendStatus().name(),
                "msgId", r.getMsgId(),
                "offsetMsgId", r.getOffsetMsgId(),
                "broker", r.getMessageQueue() == null ? null : r.getMessageQueue().getBrokerName(),
                "queueId", r.getMessageQueue() == null ? null : r.getMessageQueue().getQueueId(),
                "queueOffset", r.getQueueOffset());
        if (batchIndex >= 0) m.put("batchIndex", batchIndex);
        return m;
    }

    private static String[] split(String s) {
        if (s == null || s.isEmpty()) return new String[0];
        return s.split(",", -1);
    }
}
