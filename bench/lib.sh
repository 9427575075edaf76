# Shell functions that the benchmarks share; sourced, not run.
# The caller sets T (a scratch directory) and the array pids, and removes
# what it started with bench_cleanup from its EXIT trap.

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
	for _ in $(seq 200); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.02
	done
	echo "port $1 never opened" >&2
	return 1
}

# serve LAUNCHER PORT COMMAND...: one process per connection
serve() {
	local launcher=$1 port=$2
	shift 2
	if [ "$launcher" = socket-activate ]; then
		setsid systemd-socket-activate -l 127.0.0.1:"$port" -a "$@" >/dev/null 2>&1 &
	else
		setsid tcpserver -HRl0 -c 100 127.0.0.1 "$port" "$@" >/dev/null 2>&1 &
	fi
	pids+=($!)
	wait_port "$port"
}

stop_last() {
	local p=${pids[-1]}
	kill -- "-$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset 'pids[-1]'
}

# postfix_start PORT TRANSPORT: a private Postfix instance in $T/pf (its
# own configuration, queue and log) listening on 127.0.0.1:PORT, sending
# everything through TRANSPORT (discard:bench, or smtp:[127.0.0.1]:N).
postfix_start() {
	local port=$1 transport=$2
	mkdir -p "$T/pf/etc" "$T/pf/queue" "$T/pf/data"
	chown postfix "$T/pf/data"
	cat > "$T/pf/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $T/pf/queue
data_directory = $T/pf/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench.localdomain
mydestination =
relay_domains =
alias_maps =
local_recipient_maps =
mynetworks = 127.0.0.0/8
default_transport = $transport
relay_transport = $transport
smtpd_recipient_restrictions = permit_mynetworks, reject
maillog_file = $T/pf/maillog
maillog_file_prefixes = /var, /dev/stdout, /tmp
default_process_limit = 100
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtp_destination_concurrency_limit = 20
CF
	sed "s/^smtp      inet.*/127.0.0.1:$port inet n - n - - smtpd/" \
		/usr/share/postfix/master.cf.dist > "$T/pf/etc/master.cf"
	postfix -c "$T/pf/etc" start >"$T/pf/start.log" 2>&1 ||
		{ cat "$T/pf/start.log" "$T/pf/maillog" >&2; exit 1; }
	wait_port "$port"
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
	if [ -f "$T/pf/etc/main.cf" ]; then postfix -c "$T/pf/etc" stop >/dev/null 2>&1 || true; fi
	rm -rf "$T"
}

median() { printf '%s\n' $1 | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
