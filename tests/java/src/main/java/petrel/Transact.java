package petrel;

import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.TransactionSendResult;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Transactional producers.
 * <pre>
 * txsend  &lt;namesrv&gt; &lt;topic&gt; &lt;count&gt; &lt;group&gt; &lt;plan&gt;
 * txcheck &lt;namesrv&gt; &lt;group&gt; &lt;topic&gt; &lt;expectChecks&gt; &lt;timeoutSec&gt; &lt;answer&gt;
 * </pre>
 * txsend sends count half messages; the local transaction of message i answers by
 * plan.charAt(i % plan.length()): c COMMIT, r ROLLBACK, u UNKNOW; it answers check-backs
 * UNKNOW and exits when the sends are done. txcheck is a producer of the group that sends
 * nothing and answers check-backs: "byIdx" commits even idx and rolls back odd idx,
 * "unknown" answers UNKNOW. It prints one line per check-back. A producer heartbeats only the
 * brokers of topics it knows, so txcheck looks up the topic's route first, as an application
 * that sends to it would have.
 */
final class Transact {
    private Transact() {}

    private static LocalTransactionState state(char c) {
        switch (c) {
            case 'c': return LocalTransactionState.COMMIT_MESSAGE;
            case 'r': return LocalTransactionState.ROLLBACK_MESSAGE;
            default: return LocalTransactionState.UNKNOW;
        }
    }

    private static TransactionMQProducer producer(String namesrv, String group, TransactionListener l) {
        TransactionMQProducer p = new TransactionMQProducer(group);
        p.setNamesrvAddr(namesrv);
        p.setVipChannelEnabled(false);
        p.setSendMsgTimeout(5000);
        p.setTransactionListener(l);
        return p;
    }

    static int send(String[] a) throws Exception {
        Interop.need(a, 5, "txsend <namesrv> <topic> <count> <group> <plan>");
        String topic = a[1];
        int count = Interop.intArg(a, 2, "count");
        String plan = a[4];
        TransactionMQProducer p = producer(a[0], a[3], new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                return state(plan.charAt((Integer) arg % plan.length()));
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                return LocalTransactionState.UNKNOW;
            }
        });
        p.start();
        int failed = 0;
        try {
            for (int i = 0; i < count; i++) {
                Message m = Produce.message(topic, i);
                TransactionSendResult r = p.sendMessageInTransaction(m, i);
                Map<String, Object> line = Json.obj(
                        "i", i,
                        "status", r.getSendStatus().name(),
                        "msgId", r.getMsgId(),
                        "transactionId", r.getTransactionId(),
                        "local", r.getLocalTransactionState().name());
                Json.emit(line);
                if (r.getSendStatus() != org.apache.rocketmq.client.producer.SendStatus.SEND_OK) failed++;
            }
        } finally {
            p.shutdown();
        }
        Json.emit(Json.obj("done", true, "sent", count - failed, "failed", failed));
        return failed == 0 ? 0 : 1;
    }

    static int check(String[] a) throws Exception {
        Interop.need(a, 6, "txcheck <namesrv> <group> <topic> <expectChecks> <timeoutSec> <byIdx|unknown>");
        String topic = a[2];
        int expect = Interop.intArg(a, 3, "expectChecks");
        int timeoutSec = Interop.intArg(a, 4, "timeoutSec");
        String answer = a[5];
        AtomicInteger checks = new AtomicInteger();
        Object lock = new Object();
        TransactionMQProducer p = producer(a[0], a[1], new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                return LocalTransactionState.UNKNOW;
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                int idx = Integer.parseInt(msg.getUserProperty("idx"));
                LocalTransactionState s = answer.equals("byIdx")
                        ? (idx % 2 == 0 ? LocalTransactionState.COMMIT_MESSAGE : LocalTransactionState.ROLLBACK_MESSAGE)
                        : LocalTransactionState.UNKNOW;
                Map<String, Object> line = Msgs.line(msg);
                line.put("check", true);
                line.put("topic", msg.getTopic());
                line.put("transactionId", msg.getTransactionId());
                line.put("checkTimes", msg.getProperty("TRANSACTION_CHECK_TIMES"));
                line.put("answer", s.name());
                synchronized (lock) {
                    Json.emit(line);
                    checks.incrementAndGet();
                    lock.notifyAll();
                }
                return s;
            }
        });
        p.start();
        p.getDefaultMQProducerImpl().getMqClientFactory().updateTopicRouteInfoFromNameServer(topic);
        p.getDefaultMQProducerImpl().getMqClientFactory().sendHeartbeatToAllBrokerWithLock();
        Json.emit(Json.obj("started", true));
        long deadline = System.nanoTime() + timeoutSec * 1_000_000_000L;
        try {
            synchronized (lock) {
                while (checks.get() < expect) {
                    long left = (deadline - System.nanoTime()) / 1_000_000L;
                    if (left <= 0) {
                        System.err.println("txcheck: timeout with " + checks.get() + " checks");
                        break;
                    }
                    lock.wait(Math.min(200, left));
                }
            }
        } finally {
            p.shutdown();
        }
        Json.emit(Json.obj("done", true, "checks", checks.get()));
        return 0;
    }
}
