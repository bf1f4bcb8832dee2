#!/usr/bin/env bash
# Start the opskit lab Elasticsearch 8.14.1 node in the foreground.
#   run.sh CACHE_DIR HOME_DIR HTTP_PORT TRANSPORT_PORT REPO_PATH
# CACHE_DIR is what install.sh filled (lib/ + classes/). The JVM replaces this
# shell (exec), so the caller's PID is the node: SIGTERM it to stop cleanly.
# Logs: HOME_DIR/logs/opskit-lab.log (also echoed to stdout), GC log, hs_err.
set -euo pipefail

if [ "$#" -ne 5 ]; then
  echo "usage: $0 CACHE_DIR HOME_DIR HTTP_PORT TRANSPORT_PORT REPO_PATH" >&2
  exit 2
fi
CACHE_DIR=$1 HOME_DIR=$2 HTTP_PORT=$3 TRANSPORT_PORT=$4 REPO_PATH=$5
JAVA=${JAVA:-/usr/bin/java}

if [ ! -f "$CACHE_DIR/.installed" ] || [ ! -d "$CACHE_DIR/classes" ] || [ ! -d "$CACHE_DIR/lib" ]; then
  echo "run.sh: $CACHE_DIR is not installed; run: bash $(dirname "$0")/install.sh $CACHE_DIR" >&2
  exit 1
fi
mkdir -p "$HOME_DIR/logs" "$HOME_DIR/tmp" "$REPO_PATH"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
HOME_DIR=$(cd "$HOME_DIR" && pwd)
LOGS="$HOME_DIR/logs"

# Heap: -Xms512m -Xmx1g, or OPSKIT_LAB_ES_HEAP (e.g. 512m) for both (the HA lab's nodes).
if [ -n "${OPSKIT_LAB_ES_HEAP:-}" ]; then
  HEAP=(-Xms"$OPSKIT_LAB_ES_HEAP" -Xmx"$OPSKIT_LAB_ES_HEAP")
else
  HEAP=(-Xms512m -Xmx1g)
fi

# Flags follow Elasticsearch 8.x's launcher (SystemJvmOptions) and default
# jvm.options, minus what only matters for a packaged/production node.
exec "$JAVA" \
  "${HEAP[@]}" -XX:MaxDirectMemorySize=512m \
  -XX:+UseG1GC -Xss1m \
  -XX:+ExitOnOutOfMemoryError \
  -XX:-OmitStackTraceInFastThrow \
  -XX:ErrorFile="$LOGS/hs_err_pid%p.log" \
  -Xlog:gc*,gc+age=trace,safepoint:file="$LOGS/gc.log":utctime,level,pid,tags:filecount=4,filesize=16m \
  -Djava.io.tmpdir="$HOME_DIR/tmp" \
  -Djava.awt.headless=true \
  -Dfile.encoding=UTF-8 \
  -Djna.nosys=true \
  -Dio.netty.noUnsafe=true \
  -Dio.netty.noKeySetOptimization=true \
  -Dio.netty.recycler.maxCapacityPerThread=0 \
  -Dlog4j.shutdownHookEnabled=false \
  -Dlog4j2.disable.jmx=true \
  -Dlog4j2.formatMsgNoLookups=true \
  -Djava.locale.providers=SPI,COMPAT \
  --add-opens=java.base/java.io=ALL-UNNAMED \
  -Des.path.home="$HOME_DIR" \
  -Des.path.conf="$HOME_DIR/config" \
  -Des.distribution.type=tar \
  -cp "$CACHE_DIR/classes:$CACHE_DIR/lib/*" \
  dev.opskit.lab.LabNode \
  --home "$HOME_DIR" --http-port "$HTTP_PORT" --transport-port "$TRANSPORT_PORT" --repo-path "$REPO_PATH"
