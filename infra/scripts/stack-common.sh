# shellcheck shell=bash
# Helpers shared by stack.sh and the per-service stack-*.sh files (sourced, never run).

STACK_PIDS=$STACK_DIR/pids
STACK_LOGS=$STACK_DIR/logs
mkdir -p "$STACK_PIDS" "$STACK_LOGS"

# Messages carry the seconds since the script started.
log() { printf '[stack +%ss] %s\n' "$SECONDS" "$*" >&2; }

die() {
    printf '[stack] ERROR: %s\n' "$*" >&2
    exit 1
}

# The last lines of a log file, indented, for error messages.
log_tail() {
    local file=$1 lines=${2:-40}
    if [[ -f $file ]]; then
        printf '[stack] --- last %s lines of %s ---\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" | sed 's/^/    /' >&2
    fi
}

# Does something listen on host:port? For 127.0.0.1 this reads the kernel's socket tables instead
# of connecting: polling a port in the ephemeral range with connect() can connect a socket to
# itself, which both fakes a listener and keeps the real server from binding the port.
port_open() {
    local host=$1 port=$2
    if [[ $host == 127.0.0.1 || $host == localhost ]]; then
        awk -v port="$(printf '%04X' "$port")" '
            $4 == "0A" {
                split($2, local_addr, ":")
                if (local_addr[2] == port && local_addr[1] ~ /^(0100007F|0+|0+10+|0+FFFF00000100007F)$/)
                    found = 1
            }
            END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
    else
        # shellcheck disable=SC2016  # $1 and $2 expand in the inner bash
        timeout --foreground 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
    fi
}

# Ports in the kernel's ephemeral range can be taken at any moment by some client's outgoing
# connection, and then a server cannot bind them: say so.
warn_ephemeral_ports() {
    local low high port
    read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || return 0
    for port in "$@"; do
        if ((port >= low && port <= high)); then
            log "warning: port $port is in the ephemeral range $low-$high (net.ipv4.ip_local_port_range);" \
                "a server may fail to bind it while a client connection uses it"
        fi
    done
}

# Does pid $1 run a process whose command line contains $2?
pid_matches() {
    local pid=$1 pattern=$2 cmdline
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$pattern"* ]]
}

# Wait until host:port accepts connections; fail early if the process (pid, may be empty) died.
wait_for_port() {
    local host=$1 port=$2 timeout_s=$3 pid=${4:-} what=$5 logfile=$6 waited=0
    until port_open "$host" "$port"; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            log_tail "$logfile"
            die "$what exited before accepting connections on $host:$port (log: $logfile)"
        fi
        if ((waited >= timeout_s)); then
            log_tail "$logfile"
            die "$what did not accept connections on $host:$port within ${timeout_s}s (log: $logfile)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

# Install Debian packages: `apt-get update` once per run, then `apt-get install -y`.
STACK_APT_UPDATED=0
apt_install() {
    local apt_log=$STACK_LOGS/apt.log
    [[ $EUID -eq 0 ]] || die "installing $* needs root (apt-get); install it yourself or run as root"
    command -v apt-get >/dev/null || die "$* missing and apt-get not available: install it yourself"
    export DEBIAN_FRONTEND=noninteractive
    if ((STACK_APT_UPDATED == 0)); then
        log "apt-get update (log: $apt_log)"
        apt-get update -q >>"$apt_log" 2>&1 || { log_tail "$apt_log"; die "apt-get update failed"; }
        STACK_APT_UPDATED=1
    fi
    log "apt-get install -y $* (log: $apt_log)"
    apt-get install -y -q -o DPkg::Lock::Timeout=300 "$@" >>"$apt_log" 2>&1 ||
        { log_tail "$apt_log"; die "apt-get install $* failed"; }
}

# The browser tests (tests/browser) drive Debian's Chromium: `stack.sh test` installs it when missing.
chromium_needs_install() { [[ ! -x /usr/bin/chromium ]]; }

# Stop pid $1 if it still runs something matching $2: signal $3 (TERM), wait, then KILL.
stop_pid() {
    local pid=$1 pattern=$2 signal=${3:-TERM} waited=0
    pid_matches "$pid" "$pattern" || return 0
    kill "-$signal" "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= 60)); then
            log "pid $pid ($pattern) still running after ${waited}s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
}
