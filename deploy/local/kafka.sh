#!/usr/bin/env bash
# Local Apache Kafka (KRaft, one combined broker/controller on loopback) from Maven Central jars.
# Usage: kafka.sh fetch|start|stop|status. Idempotent: start reuses a running broker, stop is a no-op
# when nothing runs. Jars live in deploy/local/.kafka (git-ignored), data in $KAFKA_DATA_DIR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
here="$BATON_ROOT/deploy/local"
pidfile="$KAFKA_DATA_DIR/kafka.pid"

fetch() {
  if [ -f "$KAFKA_LIBS/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "kafka.sh: Maven (mvn) is required to fetch Kafka" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka.sh: Java 17+ is required to run Kafka" >&2; exit 1; }
  echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION and its runtime dependencies from Maven Central"
  rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$here/kafka-pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime
  touch "$KAFKA_LIBS/.complete"
}

running_pid() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then cat "$pidfile"; fi
}

write_config() {
  mkdir -p "$KAFKA_DATA_DIR/logs"
  cat > "$KAFKA_DATA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA_DIR/data
auto.create.topics.enable=false
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  cat > "$KAFKA_DATA_DIR/log4j2.properties" <<PROPS
appender.file.type=File
appender.file.name=file
appender.file.fileName=$KAFKA_DATA_DIR/logs/server.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
PROPS
}

java_cmd() {
  java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DATA_DIR/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

start() {
  fetch
  if [ -n "$(running_pid)" ] && port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    echo "kafka.sh: Kafka already running on $KAFKA_HOST:$KAFKA_PORT (pid $(running_pid))"; return 0
  fi
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    echo "kafka.sh: reusing the broker already listening on $KAFKA_HOST:$KAFKA_PORT"; return 0
  fi
  write_config
  if [ ! -f "$KAFKA_DATA_DIR/data/meta.properties" ]; then
    cluster_id=$(java_cmd kafka.tools.StorageTool random-uuid | tail -n1)
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_DATA_DIR/server.properties" >/dev/null
  fi
  nohup java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DATA_DIR/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DATA_DIR/server.properties" \
    >"$KAFKA_DATA_DIR/logs/stdout.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 120); do
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      echo "kafka.sh: Kafka $KAFKA_VERSION up on $KAFKA_HOST:$KAFKA_PORT (pid $(cat "$pidfile"))"; return 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "kafka.sh: Kafka exited during start-up; last log lines:" >&2
      tail -n 30 "$KAFKA_DATA_DIR/logs/stdout.log" "$KAFKA_DATA_DIR/logs/server.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "kafka.sh: Kafka did not open $KAFKA_HOST:$KAFKA_PORT within 60 s" >&2; exit 1
}

stop() {
  pid=$(running_pid)
  if [ -z "$pid" ]; then echo "kafka.sh: not running"; return 0; fi
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { echo "kafka.sh: stopped"; rm -f "$pidfile"; return 0; }; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true; rm -f "$pidfile"; echo "kafka.sh: killed"
}

status() {
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then echo "kafka: up on $KAFKA_HOST:$KAFKA_PORT"; else echo "kafka: down"; return 1; fi
}

case "${1:-}" in
  fetch) fetch ;; start) start ;; stop) stop ;; status) status ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
