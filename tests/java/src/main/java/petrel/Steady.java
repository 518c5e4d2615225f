package petrel;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.Message;

/**
 * steady &lt;namesrv&gt; &lt;topic&gt; &lt;stopFile&gt; &lt;maxSeconds&gt; — sync sends one after
 * another until stopFile exists (or maxSeconds pass), as a producer that rides through
 * broker failures does: every send's outcome is a line {"i","status","msgId","t"} or
 * {"i","failed","t"} (t: when it ended, ms since the epoch); a failed send is not retried
 * beyond the client's own retries. Routes are refreshed every 500 ms so a new master is
 * found quickly. Ends with {"done":true,"sent":n,"failed":m}.
 */
final class Steady {
    private static final String USAGE = "steady <namesrv> <topic> <stopFile> <maxSeconds>";

    private Steady() {}

    static int run(String[] a) throws Exception {
        Interop.need(a, 4, USAGE);
        String topic = a[1];
        Path stop = Paths.get(a[2]);
        long deadline = System.nanoTime() + Interop.intArg(a, 3, "maxSeconds") * 1_000_000_000L;

        DefaultMQProducer producer = new DefaultMQProducer("petrel_steady_producer");
        producer.setNamesrvAddr(a[0]);
        producer.setVipChannelEnabled(false);
        producer.setPollNameServerInterval(500);
        producer.setSendMsgTimeout(3000);
        producer.setRetryTimesWhenSendFailed(2);
        producer.start();
        int ok = 0;
        int failed = 0;
        try {
            for (int i = 0; !Files.exists(stop) && System.nanoTime() < deadline; i++) {
                Message m = new Message(topic, ("steady-" + i).getBytes(StandardCharsets.UTF_8));
                try {
                    SendResult r = producer.send(m);
                    Json.emit(Json.obj("i", i, "status", r.getSendStatus().name(),
                            "msgId", r.getMsgId(), "t", System.currentTimeMillis()));
                    ok++;
                } catch (Exception e) {
                    Json.emit(Json.obj("i", i, "failed", Interop.describe(e),
                            "t", System.currentTimeMillis()));
                    failed++;
                    // The broker is gone until the routes name its successor.
                    Thread.sleep(100);
                }
            }
        } finally {
            producer.shutdown();
        }
        Json.emit(Json.obj("done", true, "sent", ok, "failed", failed));
        return 0;
    }
}
