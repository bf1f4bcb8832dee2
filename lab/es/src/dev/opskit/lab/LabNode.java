/*
 * opskit lab: one real Elasticsearch node (the 8.14.1 server jar from Maven
 * Central) started in-process with its modules as classpath plugins.
 *
 *   java ... dev.opskit.lab.LabNode --home DIR --http-port N --transport-port N --repo-path DIR
 *
 * Runs in the foreground until SIGTERM/SIGINT, then closes the node cleanly.
 * See ../../../../README.md for why this exists and what it does not include.
 */
package dev.opskit.lab;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configurator;
import org.elasticsearch.Build;
import org.elasticsearch.bootstrap.BootstrapInfo;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.bytes.BytesArray;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.env.Environment;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.IndexVersion;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.LabNodeFactory;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.RestChannel;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.transport.netty4.Netty4Plugin;
import org.elasticsearch.xcontent.XContentBuilder;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;

public final class LabNode {

    static final String CLUSTER_NAME = "opskit-lab";
    static final String NODE_NAME = "lab-node-1";

    /** Modules that ship with the node. Only these exist on Maven Central for 8.14.x (see README). */
    static final List<Class<? extends Plugin>> MODULES = List.of(Netty4Plugin.class, RootInfoPlugin.class);

    private LabNode() {}

    public static void main(String[] argv) {
        Map<String, String> args;
        try {
            args = parseArgs(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("LabNode: " + e.getMessage());
            System.err.println("usage: LabNode --home DIR --http-port N --transport-port N --repo-path DIR");
            System.exit(2);
            return;
        }
        Path home = Path.of(args.get("home")).toAbsolutePath().normalize();
        Path repo = Path.of(args.get("repo-path")).toAbsolutePath().normalize();
        int httpPort = port(args.get("http-port"));
        int transportPort = port(args.get("transport-port"));

        Node node = null;
        try {
            Path config = home.resolve("config");
            for (String d : List.of("config", "data", "logs", "plugins", "modules", "tmp")) {
                Files.createDirectories(home.resolve(d));
            }
            Files.createDirectories(repo);
            writeIfMissing(config.resolve("elasticsearch.yml"), elasticsearchYml(home, repo, httpPort, transportPort));
            writeIfMissing(config.resolve("log4j2.properties"), LOG4J2_PROPERTIES);

            LogConfigurator.registerErrorListener();
            BootstrapInfo.init();
            // Command-line values win over an existing elasticsearch.yml (same as -E for bin/elasticsearch).
            Map<String, String> overrides = new LinkedHashMap<>();
            overrides.put("http.port", Integer.toString(httpPort));
            overrides.put("transport.port", Integer.toString(transportPort));
            overrides.put("path.repo", repo.toString());
            Environment env = InternalSettingsPreparer.prepareEnvironment(
                Settings.builder().put(Environment.PATH_HOME_SETTING.getKey(), home.toString()).build(),
                overrides,
                config,
                () -> NODE_NAME
            );
            LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
            LogConfigurator.configure(env, true);
            Logger logger = LogManager.getLogger(LabNode.class);

            node = LabNodeFactory.create(env, MODULES);
            final Node started = node.start();
            final CountDownLatch closed = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                logger.info("shutdown requested, closing node");
                try {
                    started.prepareForClose();
                    started.close();
                    if (started.awaitClose(10, TimeUnit.SECONDS) == false) {
                        logger.warn("node did not close within 10s");
                    }
                } catch (Exception e) {
                    logger.warn("error while closing node", e);
                } finally {
                    logger.info("node closed");
                    closed.countDown();
                    Configurator.shutdown((LoggerContext) LogManager.getContext(false));
                }
            }, "lab-node-shutdown"));
            logger.info(
                "opskit lab node [{}] of Elasticsearch {} started: http 127.0.0.1:{}, transport 127.0.0.1:{}, home {}",
                Node.NODE_NAME_SETTING.get(env.settings()),
                Build.current().qualifiedVersion(),
                httpPort,
                transportPort,
                home
            );
            closed.await();
        } catch (Throwable t) {
            System.err.println("LabNode: failed to start Elasticsearch: " + t);
            t.printStackTrace();
            if (node != null) {
                try {
                    node.close();
                } catch (Exception ignored) {
                    // exiting anyway
                }
            }
            System.exit(1);
        }
    }

    static Map<String, String> parseArgs(String[] argv) {
        Map<String, String> out = new LinkedHashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            String key;
            String value;
            if (a.startsWith("--") && a.contains("=")) {
                key = a.substring(2, a.indexOf('='));
                value = a.substring(a.indexOf('=') + 1);
            } else if (a.startsWith("--") && i + 1 < argv.length) {
                key = a.substring(2);
                value = argv[++i];
            } else {
                throw new IllegalArgumentException("bad argument: " + a);
            }
            if (List.of("home", "http-port", "transport-port", "repo-path").contains(key) == false) {
                throw new IllegalArgumentException("unknown option --" + key);
            }
            out.put(key, value);
        }
        for (String k : List.of("home", "http-port", "transport-port", "repo-path")) {
            if (out.containsKey(k) == false || out.get(k).isEmpty()) {
                throw new IllegalArgumentException("missing --" + k);
            }
        }
        return out;
    }

    private static int port(String s) {
        try {
            int p = Integer.parseInt(s);
            if (p < 1 || p > 65535) {
                throw new NumberFormatException();
            }
            return p;
        } catch (NumberFormatException e) {
            System.err.println("LabNode: bad port: " + s);
            System.exit(2);
            return -1;
        }
    }

    private static void writeIfMissing(Path file, String content) throws IOException {
        if (Files.exists(file) == false) {
            Files.writeString(file, content, StandardCharsets.UTF_8);
        }
    }

    private static String yamlQuote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static String elasticsearchYml(Path home, Path repo, int httpPort, int transportPort) {
        return String.join(
            "\n",
            "# Written by opskit lab/es LabNode on first start; kept if it exists.",
            "# --http-port/--transport-port/--repo-path given on the command line override these.",
            "cluster.name: " + CLUSTER_NAME,
            "node.name: " + NODE_NAME,
            "network.host: 127.0.0.1",
            "http.port: " + httpPort,
            "transport.port: " + transportPort,
            "discovery.type: single-node",
            "path.data: " + yamlQuote(home.resolve("data").toString()),
            "path.logs: " + yamlQuote(home.resolve("logs").toString()),
            "path.repo: [" + yamlQuote(repo.toString()) + "]",
            "cluster.routing.allocation.disk.threshold_enabled: false",
            ""
        );
    }

    /** Plain-text logs in path.logs (ES's own config uses JSON/ECS layouts). */
    static final String LOG4J2_PROPERTIES = String.join(
        "\n",
        "# Written by opskit lab/es LabNode on first start; kept if it exists.",
        "status = error",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n",
        "appender.rolling.type = RollingFile",
        "appender.rolling.name = rolling",
        "appender.rolling.fileName = ${sys:es.logs.base_path}${sys:file.separator}${sys:es.logs.cluster_name}.log",
        "appender.rolling.filePattern = ${sys:es.logs.base_path}${sys:file.separator}${sys:es.logs.cluster_name}-%i.log.gz",
        "appender.rolling.layout.type = PatternLayout",
        "appender.rolling.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n",
        "appender.rolling.policies.type = Policies",
        "appender.rolling.policies.size.type = SizeBasedTriggeringPolicy",
        "appender.rolling.policies.size.size = 64MB",
        "appender.rolling.strategy.type = DefaultRolloverStrategy",
        "appender.rolling.strategy.max = 4",
        "appender.header_warning.type = HeaderWarningAppender",
        "appender.header_warning.name = header_warning",
        "rootLogger.level = info",
        "rootLogger.appenderRef.console.ref = console",
        "rootLogger.appenderRef.rolling.ref = rolling",
        "logger.deprecation.name = org.elasticsearch.deprecation",
        "logger.deprecation.level = WARN",
        "logger.deprecation.appenderRef.rolling.ref = rolling",
        "logger.deprecation.appenderRef.header_warning.ref = header_warning",
        "logger.deprecation.additivity = false",
        ""
    );

    /**
     * Stand-in for the rest-root module (not published to Maven Central):
     * GET / and HEAD / with the same fields as Elasticsearch's root endpoint.
     */
    public static final class RootInfoPlugin extends Plugin implements ActionPlugin {

        private volatile ClusterService clusterService;

        public RootInfoPlugin() {}

        @Override
        public Collection<?> createComponents(PluginServices services) {
            this.clusterService = services.clusterService();
            return List.of();
        }

        @Override
        public Collection<RestHandler> getRestHandlers(
            Settings settings,
            NamedWriteableRegistry namedWriteableRegistry,
            RestController restController,
            ClusterSettings clusterSettings,
            IndexScopedSettings indexScopedSettings,
            SettingsFilter settingsFilter,
            IndexNameExpressionResolver indexNameExpressionResolver,
            Supplier<DiscoveryNodes> nodesInCluster,
            Predicate<NodeFeature> clusterSupportsFeature
        ) {
            return List.of(new RootHandler());
        }

        private final class RootHandler implements RestHandler {
            @Override
            public List<Route> routes() {
                return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
            }

            @Override
            public void handleRequest(RestRequest request, RestChannel channel, NodeClient client) throws Exception {
                if (request.method() == RestRequest.Method.HEAD) {
                    channel.sendResponse(new RestResponse(RestStatus.OK, RestResponse.TEXT_CONTENT_TYPE, BytesArray.EMPTY));
                    return;
                }
                ClusterService cs = clusterService;
                ClusterState state = cs.state();
                Build build = Build.current();
                XContentBuilder b = channel.newBuilder();
                b.startObject();
                b.field("name", cs.getNodeName());
                b.field("cluster_name", state.getClusterName().value());
                b.field("cluster_uuid", state.metadata().clusterUUID());
                b.startObject("version");
                b.field("number", build.qualifiedVersion());
                b.field("build_flavor", build.flavor());
                b.field("build_type", build.type().displayName());
                b.field("build_hash", build.hash());
                b.field("build_date", build.date());
                b.field("build_snapshot", build.isSnapshot());
                b.field("lucene_version", IndexVersion.current().luceneVersion().toString());
                b.field("minimum_wire_compatibility_version", build.minWireCompatVersion());
                b.field("minimum_index_compatibility_version", build.minIndexCompatVersion());
                b.endObject();
                b.field("tagline", "You Know, for Search");
                b.endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, b));
            }
        }
    }
}
