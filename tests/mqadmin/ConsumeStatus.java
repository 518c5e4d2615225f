// The offsets every member of a consumer group holds, as DefaultMQAdminExt.getConsumeStatus
// gathers them through a broker (INVOKE_BROKER_TO_GET_CONSUMER_STATUS, 223): one line per
// member and queue, "clientId brokerName queueId offset". mqadmin registers no command for it.
// Arguments: namesrv topic group [clientId].

import java.util.Map;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

public class ConsumeStatus {
    public static void main(String[] args) throws Exception {
        DefaultMQAdminExt admin = new DefaultMQAdminExt();
        admin.setInstanceName("consume-status-" + System.nanoTime());
        admin.setNamesrvAddr(args[0]);
        admin.start();
        try {
            String only = args.length > 3 ? args[3] : "";
            Map<String, Map<MessageQueue, Long>> table = admin.getConsumeStatus(args[1], args[2], only);
            for (Map.Entry<String, Map<MessageQueue, Long>> member : table.entrySet()) {
                for (Map.Entry<MessageQueue, Long> q : member.getValue().entrySet()) {
                    System.out.printf("%s %s %d %d%n", member.getKey(), q.getKey().getBrokerName(),
                        q.getKey().getQueueId(), q.getValue());
                }
            }
        } finally {
            admin.shutdown();
        }
    }
}
