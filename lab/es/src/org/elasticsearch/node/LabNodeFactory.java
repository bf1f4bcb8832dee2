/*
 * opskit lab: builds a real org.elasticsearch.node.Node whose plugin service
 * takes modules from the classpath. In package org.elasticsearch.node because
 * NodeServiceProvider, NodeConstruction.prepareConstruction and
 * Node(NodeConstruction) are package-private (the test framework's MockNode
 * uses the same seam).
 */
package org.elasticsearch.node;

import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.LabClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsService;

import java.util.Collection;
import java.util.List;

public final class LabNodeFactory {

    private LabNodeFactory() {}

    public static Node create(Environment env, Collection<Class<? extends Plugin>> classpathPlugins) {
        final List<Class<? extends Plugin>> plugins = List.copyOf(classpathPlugins);
        NodeServiceProvider provider = new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment environment, Settings settings) {
                return new LabClasspathPluginsService(settings, environment, plugins);
            }
        };
        return new Node(NodeConstruction.prepareConstruction(env, provider, true));
    }
}
