/*
 * opskit lab: plugin service for an Elasticsearch node whose modules are
 * plain jars on the JVM classpath (as fetched from Maven Central) instead of
 * directories under $ES_HOME/modules with their own class loaders.
 *
 * It lives in org.elasticsearch.plugins because PluginsService.LoadedPlugin
 * and PluginsService.loadPlugin are package-private. Everything runs in the
 * unnamed module (classpath), so the split package is legal.
 */
package org.elasticsearch.plugins;

import org.elasticsearch.Build;
import org.elasticsearch.action.admin.cluster.node.info.PluginsAndModules;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.jdk.ModuleQualifiedExportsService;

import java.lang.reflect.Constructor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;

public class LabClasspathPluginsService extends PluginsService {

    private final List<LoadedPlugin> loaded;

    public LabClasspathPluginsService(Settings settings, Environment env, Collection<Class<? extends Plugin>> pluginClasses) {
        // modules/ and plugins/ exist but are empty: nothing is loaded from disk.
        super(settings, env.configFile(), env.modulesFile(), env.pluginsFile());
        ClassLoader cl = LabClasspathPluginsService.class.getClassLoader();
        List<LoadedPlugin> list = new ArrayList<>();
        for (Class<? extends Plugin> c : pluginClasses) {
            Plugin instance = loadPlugin(c, settings, env.configFile());
            PluginDescriptor d = new PluginDescriptor(
                c.getSimpleName(),
                "classpath module " + c.getName(),
                Build.current().version(),
                Build.current().version(),
                Integer.toString(Runtime.version().feature()),
                c.getName(),
                null,            // not a named module: classpath
                List.of(),       // extends nothing
                false,           // no native controller
                false,           // not licensed
                false,           // not modular
                false            // not a stable plugin
            );
            list.add(new LoadedPlugin(d, instance, cl, ModuleLayer.boot()));
        }
        this.loaded = List.copyOf(list);
        // ExtensiblePlugin wiring (none of ours extend another, but keep the contract)
        loadExtensions(this.loaded);
    }

    /**
     * The base class reads the server's module descriptor to set up qualified
     * exports to plugin module layers. On the classpath the server is in the
     * unnamed module (no descriptor) and there are no plugin layers: nothing to do.
     */
    @Override
    protected void addServerExportsService(Map<String, List<ModuleQualifiedExportsService>> qualifiedExports) {}

    @Override
    protected final List<LoadedPlugin> plugins() {
        return loaded;
    }

    @Override
    public PluginsAndModules info() {
        // Report them as modules: that is what they are in a packaged Elasticsearch.
        return new PluginsAndModules(List.of(), loaded.stream().map(LoadedPlugin::descriptor).toList());
    }

    /**
     * All classes share one class loader here, so resolve each service once over
     * that loader (server-provided implementations included, as the real server
     * module contributes them too) instead of once per plugin, which would
     * duplicate every provider.
     */
    @Override
    public <T> List<? extends T> loadServiceProviders(Class<T> service) {
        ClassLoader cl = LabClasspathPluginsService.class.getClassLoader();
        Set<Class<? extends T>> types = new LinkedHashSet<>();
        ServiceLoader.load(service, cl).stream().forEach(p -> types.add(p.type()));
        List<T> out = new ArrayList<>();
        for (Class<? extends T> type : types) {
            out.add(instantiate(type, service));
        }
        return List.copyOf(out);
    }

    private <T> T instantiate(Class<? extends T> type, Class<T> service) {
        Constructor<?>[] ctors = type.getConstructors();
        if (ctors.length != 1) {
            throw new IllegalStateException("expected one public constructor on " + type.getName() + " for " + service.getName());
        }
        Constructor<?> ctor = ctors[0];
        try {
            if (ctor.getParameterCount() == 0) {
                return type.cast(ctor.newInstance());
            }
            if (ctor.getParameterCount() == 1) {
                Class<?> want = ctor.getParameterTypes()[0];
                for (LoadedPlugin p : loaded) {
                    if (want.isInstance(p.instance())) {
                        return type.cast(ctor.newInstance(p.instance()));
                    }
                }
                throw new IllegalStateException("no loaded plugin of type " + want.getName() + " for " + type.getName());
            }
            throw new IllegalStateException("unsupported constructor on " + type.getName());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot create " + type.getName() + " for " + service.getName(), e);
        }
    }
}
