# shellcheck shell=bash
# Apache Kafka for the local stack (sourced by stack.sh): a single-node KRaft broker+controller
# run with the machine's Java from the jars that infra/kafka/pom.xml resolves from Maven Central.
#
#   .stack/kafka/libs/            the jars (copied once; again only when pom.xml changes)
#   .stack/kafka/<port>/          server.properties and data/ (KRaft storage, formatted once)
#   .stack/logs/kafka.log         broker log

KAFKA_LIBS=$STACK_DIR/kafka/libs
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:-"-Xms256m -Xmx1g"}

# Run a Kafka command-line tool class (at most 2 minutes); its logging goes to stderr at WARN.
# A short-lived JVM starts faster with the C1 compiler only and the serial collector.
kafka_tool() {
    timeout --foreground 120 java -Xms64m -Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$REPO_ROOT/infra/kafka/tools-log4j2.yaml" -cp "$KAFKA_LIBS/*" "$@" 9>&-
}

check_java() {
    local version
    command -v java >/dev/null || die "java not found: Kafka needs Java 17+ (apt-get install openjdk-17-jre-headless)"
    version=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [[ ! ${version%%.*} =~ ^[0-9]+$ ]] || ((${version%%.*} < 17)); then
        die "Kafka needs Java 17+, found java.specification.version=${version:-unknown}"
    fi
}

ensure_kafka_libs() {
    local pom=$REPO_ROOT/infra/kafka/pom.xml stamp=$KAFKA_LIBS/.pom.sha256 want tmp mvn_log=$STACK_LOGS/maven.log
    want=$(sha256sum "$pom" | cut -d' ' -f1)
    [[ -f $stamp && $(cat "$stamp") == "$want" ]] && return 0
    command -v mvn >/dev/null || die "mvn not found: the Kafka jars come from Maven Central (apt-get install maven)"
    tmp=$STACK_DIR/kafka/libs.tmp
    rm -rf "$tmp"
    log "kafka: downloading the broker jars with Maven (once; log $mvn_log)"
    # shellcheck disable=SC2086  # MAVEN_ARGS is a list of options
    mvn -q -B ${MAVEN_ARGS:-} -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime >>"$mvn_log" 2>&1 </dev/null ||
        { log_tail "$mvn_log"; die "Maven could not fetch the Kafka jars (log: $mvn_log)"; }
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "Maven produced no kafka_2.13 jar in $tmp"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    printf '%s\n' "$want" >"$stamp"
}

write_kafka_properties() {
    local file=$1 data=$2
    cat >"$file" <<EOF
# Written by infra/scripts/stack-kafka.sh on every start; edit that file, not this one.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

start_kafka() {
    local dir=$STACK_DIR/kafka/$KAFKA_PORT props data logfile=$STACK_LOGS/kafka.log uuid pid
    props=$dir/server.properties
    data=$dir/data
    if port_open 127.0.0.1 "$KAFKA_CONTROLLER_PORT"; then
        die "KRaft controller port 127.0.0.1:$KAFKA_CONTROLLER_PORT is taken: set KAFKA_CONTROLLER_PORT"
    fi
    warn_ephemeral_ports "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
    mkdir -p "$dir"
    write_kafka_properties "$props" "$data"
    if [[ ! -f $data/meta.properties ]]; then
        uuid=$(kafka_tool kafka.tools.StorageTool random-uuid 2>>"$logfile") ||
            { log_tail "$logfile"; die "StorageTool random-uuid failed"; }
        [[ $uuid =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid printed '$uuid', not a cluster id"
        log "kafka: formatting KRaft storage $data (cluster id $uuid)"
        kafka_tool kafka.tools.StorageTool format -t "$uuid" -c "$props" >>"$logfile" 2>&1 ||
            { log_tail "$logfile"; die "StorageTool format failed (log: $logfile)"; }
    fi
    log "kafka: starting on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT, log $logfile)"
    # setsid: Ctrl-C on `make run` stops the app only; fd 9 (the stack lock) must not leak.
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of options
    setsid java $KAFKA_HEAP_OPTS -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$REPO_ROOT/infra/kafka/log4j2.yaml" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$props" >>"$logfile" 2>&1 </dev/null 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$STACK_PIDS/kafka-$KAFKA_PORT.pid"
    wait_for_port 127.0.0.1 "$KAFKA_PORT" "${KAFKA_START_TIMEOUT:-120}" "$pid" "Kafka broker" "$logfile"
}

# Does the broker already have the topic? (A quick look with kafka-python, to spare a JVM.)
topic_exists() {
    "$VENV_PY" - "127.0.0.1:$KAFKA_PORT" "$1" <<'PY' 2>/dev/null
import sys

from kafka import KafkaAdminClient

admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=10_000)
try:
    sys.exit(0 if sys.argv[2] in admin.list_topics() else 1)
finally:
    admin.close()
PY
}

# Create a topic (idempotent). Retried: a broker that just opened its port may not serve yet.
create_topic() {
    local topic=$1 attempt logfile=$STACK_LOGS/kafka-tools.log
    topic_exists "$topic" && return 0
    for attempt in 1 2 3 4; do
        if kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
            --create --if-not-exists --topic "$topic" --partitions 3 --replication-factor 1 \
            >>"$logfile" 2>&1; then
            return 0
        fi
        log "kafka: creating topic $topic failed (attempt $attempt), retrying"
        sleep 3
    done
    log_tail "$logfile"
    log_tail "$STACK_LOGS/kafka.log" 20
    die "could not create topic $topic on 127.0.0.1:$KAFKA_PORT (logs: $logfile, $STACK_LOGS/kafka.log)"
}

ensure_kafka() {
    local topic
    if ((STACK_EXTERNAL_KAFKA)); then
        log "kafka: using KAFKA_BOOTSTRAP_SERVERS as set (nothing started)"
        return 0
    fi
    # (check_java and ensure_kafka_libs ran before, outside the machine-wide lock)
    if port_open 127.0.0.1 "$KAFKA_PORT"; then
        log "kafka: reusing the broker on 127.0.0.1:$KAFKA_PORT"
    else
        start_kafka
    fi
    for topic in "$KAFKA_TOPIC" ${DLQ_TOPIC:+"$DLQ_TOPIC"}; do
        create_topic "$topic"
    done
    log "kafka: topic(s) ready: $KAFKA_TOPIC${DLQ_TOPIC:+, $DLQ_TOPIC}"
}

stop_kafka() {
    local pidfile=$1 pid
    pid=$(cat "$pidfile" 2>/dev/null) || true
    if pid_matches "$pid" kafka.Kafka; then
        log "kafka: stopping pid $pid"
        stop_pid "$pid" kafka.Kafka TERM
    fi
    rm -f "$pidfile"
}
