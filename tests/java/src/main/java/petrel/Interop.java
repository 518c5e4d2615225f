package petrel;

import java.util.Arrays;

/**
 * Petrel interop driver: runs the stock Apache RocketMQ Java client against a
 * broker and reports what happened as one compact JSON object per stdout line.
 *
 * <pre>
 * produce &lt;namesrv&gt; &lt;topic&gt; &lt;count&gt; &lt;sync|async|oneway|batch&gt; [group]
 * steady  &lt;namesrv&gt; &lt;topic&gt; &lt;stopFile&gt; &lt;maxSeconds&gt;
 * push    &lt;namesrv&gt; &lt;group&gt; &lt;topic&gt; &lt;subExpression&gt; &lt;expect&gt; &lt;timeoutSec&gt; &lt;idleSec&gt; [instanceName]
 * pull    &lt;namesrv&gt; &lt;group&gt; &lt;topic&gt; &lt;timeoutSec&gt;
 * </pre>
 *
 * Exit code 0 on success; otherwise non-zero after a {"error":"..."} line.
 * All logging goes to stderr or to the client's log files (rocketmq.log.root,
 * default $TMPDIR/petrel-interop-logs), never to stdout.
 */
public final class Interop {
    private Interop() {}

    public static void main(String[] args) {
        // stdout is reserved for JSON lines; anything printed via System.out
        // (by the client or its libraries) is redirected to stderr.
        Json.captureStdout();
        configureLogging();
        int rc;
        try {
            rc = run(args);
        } catch (UsageException e) {
            Json.emit(Json.obj("error", e.getMessage()));
            rc = 2;
        } catch (Throwable t) {
            t.printStackTrace(System.err);
            Json.emit(Json.obj("error", describe(t)));
            rc = 1;
        }
        System.err.flush();
        // The client leaves non-daemon threads behind in some paths; exit hard.
        Runtime.getRuntime().halt(rc);
    }

    /**
     * The stock ACL hook signing every request with the account in PETREL_ACL_ACCESS_KEY /
     * PETREL_ACL_SECRET_KEY, or null when they are not set.
     */
    static org.apache.rocketmq.remoting.RPCHook aclHook() {
        String ak = System.getenv("PETREL_ACL_ACCESS_KEY");
        String sk = System.getenv("PETREL_ACL_SECRET_KEY");
        if (ak == null || ak.isEmpty() || sk == null) return null;
        return new org.apache.rocketmq.acl.common.AclClientRPCHook(
                new org.apache.rocketmq.acl.common.SessionCredentials(ak, sk));
    }

    private static void configureLogging() {
        setIfAbsent("mq.consoleAppender.enabled", "false");
        setIfAbsent("rocketmq.client.logUseSlf4j", "false");
        setIfAbsent("rocketmq.log.level", "info");
        String dir = System.getenv("PETREL_INTEROP_LOG_DIR");
        if (dir == null || dir.isEmpty()) {
            dir = System.getProperty("java.io.tmpdir") + java.io.File.separator + "petrel-interop-logs";
        }
        setIfAbsent("rocketmq.log.root", dir);
        setIfAbsent("rocketmq.client.logRoot", dir);
        // Broadcasting consumers keep their offsets in local files named by client id; the
        // test gives each run its own directory, so none resumes from an earlier run's files.
        String offsets = System.getenv("PETREL_INTEROP_OFFSET_DIR");
        if (offsets != null && !offsets.isEmpty()) {
            setIfAbsent("rocketmq.client.localOffsetStoreDir", offsets);
        }
    }

    private static void setIfAbsent(String k, String v) {
        if (System.getProperty(k) == null) System.setProperty(k, v);
    }

    private static int run(String[] args) throws Exception {
        if (args.length == 0) throw new UsageException("usage: produce|push|pull|view ...");
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        switch (args[0]) {
            case "produce": return Produce.run(rest);
            case "steady": return Steady.run(rest);
            case "push": return Push.run(rest);
            case "pull": return Pull.run(rest);
            case "view": return View.run(rest);
            case "querykey": return View.queryKey(rest);
            case "retry": return Retry.run(rest);
            case "orderly": return Orderly.run(rest);
            case "txsend": return Transact.send(rest);
            case "txcheck": return Transact.check(rest);
            default: throw new UsageException("unknown subcommand: " + args[0]);
        }
    }

    /** Exception text with its cause chain and the top stack frame, on one line. */
    static String describe(Throwable t) {
        StringBuilder sb = new StringBuilder();
        Throwable cur = t;
        int depth = 0;
        while (cur != null && depth < 6) {
            if (depth > 0) sb.append(" | caused by: ");
            sb.append(cur.getClass().getName());
            if (cur.getMessage() != null) sb.append(": ").append(cur.getMessage().trim());
            StackTraceElement[] st = cur.getStackTrace();
            if (st.length > 0) sb.append(" @ ").append(st[0]);
            cur = cur.getCause() == cur ? null : cur.getCause();
            depth++;
        }
        return sb.toString();
    }

    static int intArg(String[] a, int i, String name) {
        try {
            return Integer.parseInt(a[i]);
        } catch (NumberFormatException e) {
            throw new UsageException(name + " must be an integer, got: " + a[i]);
        }
    }

    static void need(String[] a, int n, String usage) {
        if (a.length < n) throw new UsageException("usage: " + usage);
    }

    static final class UsageException extends RuntimeException {
        UsageException(String m) { super(m); }
    }
}
