#!/usr/bin/env bash
# Install the opskit lab Elasticsearch node into CACHE_DIR:
#   CACHE_DIR/lib/      runtime jars from Maven Central (per pom.xml)
#   CACHE_DIR/classes/  LabNode and its two small bridge classes, compiled
#   CACHE_DIR/.installed marker: sha256 of pom.xml + sources
# Idempotent: when the marker matches, it does nothing (no Maven, no network).
# If only the sources changed, it recompiles without calling Maven.
set -euo pipefail

die() { echo "install.sh: $*" >&2; exit 1; }

[ "$#" -eq 1 ] || { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1" || die "cannot create $1"
CACHE_DIR=$(cd "$1" && pwd)
POM="$HERE/pom.xml"
[ -f "$POM" ] || die "missing $POM"

POM_SHA=$(sha256sum "$POM" | cut -d' ' -f1)
SRC_SHA=$(cd "$HERE" && find src -name '*.java' -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
KEY="pom=$POM_SHA src=$SRC_SHA"
MARKER="$CACHE_DIR/.installed"
LIB_MARKER="$CACHE_DIR/.lib-installed"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$KEY" ] \
   && [ -f "$CACHE_DIR/lib/elasticsearch-8.14.1.jar" ] && [ -f "$CACHE_DIR/classes/dev/opskit/lab/LabNode.class" ]; then
  echo "install.sh: up to date in $CACHE_DIR"
  exit 0
fi

JAVA=${JAVA:-/usr/bin/java}
JAVAC=${JAVAC:-$(dirname "$(readlink -f "$JAVA")")/javac}
[ -x "$JAVA" ] || die "java not found at $JAVA (need Java 17+)"
[ -x "$JAVAC" ] || die "javac not found next to $JAVA (install a JDK, e.g. openjdk-17-jdk-headless)"
JAVA_FEATURE=$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
[ "${JAVA_FEATURE:-0}" -ge 17 ] 2>/dev/null || die "Java 17+ required, $JAVA is ${JAVA_FEATURE:-unknown}"

rm -f "$MARKER"

# 1. jars (only when pom.xml changed or lib/ is missing)
if [ ! -f "$LIB_MARKER" ] || [ "$(cat "$LIB_MARKER")" != "pom=$POM_SHA" ] || [ ! -f "$CACHE_DIR/lib/elasticsearch-8.14.1.jar" ]; then
  command -v "${MVN:-mvn}" >/dev/null || die "Maven not found (need mvn 3.6+ on PATH, or set MVN)"
  echo "install.sh: resolving jars from Maven Central into $CACHE_DIR/lib ..."
  rm -rf "$CACHE_DIR/lib.tmp" "$LIB_MARKER"
  if ! "${MVN:-mvn}" -q -B -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$CACHE_DIR/lib.tmp" >"$CACHE_DIR/mvn.log" 2>&1; then
    tail -n 30 "$CACHE_DIR/mvn.log" >&2
    die "Maven could not resolve the dependencies (full log: $CACHE_DIR/mvn.log)"
  fi
  [ -f "$CACHE_DIR/lib.tmp/elasticsearch-8.14.1.jar" ] || die "Maven finished but elasticsearch-8.14.1.jar is missing from lib"
  rm -rf "$CACHE_DIR/lib"
  mv "$CACHE_DIR/lib.tmp" "$CACHE_DIR/lib"
  echo "pom=$POM_SHA" > "$LIB_MARKER"
fi

# 2. classes
echo "install.sh: compiling LabNode into $CACHE_DIR/classes ..."
rm -rf "$CACHE_DIR/classes.tmp"
mkdir -p "$CACHE_DIR/classes.tmp"
(cd "$HERE" && find src -name '*.java' -type f | LC_ALL=C sort) > "$CACHE_DIR/sources.txt"
if ! (cd "$HERE" && "$JAVAC" -nowarn --release 17 -encoding UTF-8 -d "$CACHE_DIR/classes.tmp" \
        -cp "$CACHE_DIR/lib/*" @"$CACHE_DIR/sources.txt"); then
  die "javac failed"
fi
rm -rf "$CACHE_DIR/classes" "$CACHE_DIR/sources.txt"
mv "$CACHE_DIR/classes.tmp" "$CACHE_DIR/classes"

echo "$KEY" > "$MARKER"
echo "install.sh: installed Elasticsearch 8.14.1 lab node in $CACHE_DIR ($(ls "$CACHE_DIR/lib" | wc -l) jars)"
