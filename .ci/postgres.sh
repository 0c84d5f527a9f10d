# shellcheck shell=bash
#
# Starts a throwaway PostgreSQL 15 cluster for the test suite and exports
# OBSERVER_TEST_POSTGRES (a postgres:// URL to the database observer_test).
#
# Source it, do not execute it:   source .ci/postgres.sh
#
# The cluster listens on 127.0.0.1 only, on a free port, with its unix socket
# and data inside a fresh temporary directory; fsync and synchronous_commit
# stay on so the durability tests exercise real fsyncs. An EXIT trap (added in
# front of any EXIT trap already set) stops it and removes the directory;
# call observer_pg_stop to do that earlier, or from an EXIT trap set after
# sourcing this file (which would replace ours).
#
# initdb refuses to run as root, so as root the cluster runs as the user
# "postgres" (created if missing); as any other user it runs as that user.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	echo "postgres.sh: source this file, do not execute it" >&2
	exit 2
fi

# observer_pg_bindir prints the directory holding initdb and pg_ctl.
observer_pg_bindir() {
	local d
	for d in /usr/lib/postgresql/15/bin /usr/local/bin "$(pg_config --bindir 2>/dev/null)"; do
		if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/pg_isready" && -x "$d/psql" ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# observer_pg_as runs a command as the cluster's owner.
observer_pg_as() {
	if [[ "$(id -u)" != 0 ]]; then
		"$@"
	elif command -v runuser >/dev/null; then
		runuser -u "$OBSERVER_PG_USER" -- "$@"
	else
		su -s /bin/sh "$OBSERVER_PG_USER" -c "$(printf '%q ' "$@")"
	fi
}

# observer_pg_port_free reports whether nothing accepts connections on the port.
observer_pg_port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# observer_pg_stop stops the cluster and removes its directory; it is safe to
# call more than once.
observer_pg_stop() {
	if [[ -n "${OBSERVER_PG_DIR:-}" && -d "$OBSERVER_PG_DIR" ]]; then
		if [[ -f "$OBSERVER_PG_DIR/data/postmaster.pid" ]]; then
			observer_pg_as "$OBSERVER_PG_BIN/pg_ctl" -D "$OBSERVER_PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
		fi
		rm -rf "$OBSERVER_PG_DIR"
	fi
	OBSERVER_PG_DIR=
	unset OBSERVER_TEST_POSTGRES
}

# observer_pg_start does the work; it returns non-zero (without exiting the
# shell that sourced this file) if the cluster cannot be started.
observer_pg_start() {
	# "|| true" keeps a caller's "set -e" from exiting on the lookup itself.
	OBSERVER_PG_BIN=$(observer_pg_bindir) || true
	if [[ -z "$OBSERVER_PG_BIN" ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
		echo "postgres.sh: installing PostgreSQL 15" >&2
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15; } >&2 || true
		OBSERVER_PG_BIN=$(observer_pg_bindir) || true
	fi
	if [[ -z "$OBSERVER_PG_BIN" ]]; then
		echo "postgres.sh: PostgreSQL binaries (initdb, pg_ctl) not found" >&2
		return 1
	fi

	if [[ "$(id -u)" == 0 ]]; then
		OBSERVER_PG_USER=postgres
		if ! id -u "$OBSERVER_PG_USER" >/dev/null 2>&1; then
			useradd --system --no-create-home --shell /usr/sbin/nologin "$OBSERVER_PG_USER" || return 1
		fi
	else
		OBSERVER_PG_USER=$(id -un)
	fi

	OBSERVER_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/observer-pg.XXXXXX") || return 1
	# The owner needs to reach the directory; mktemp made it 0700 for us.
	chmod 0755 "$OBSERVER_PG_DIR"
	[[ "$(id -u)" == 0 ]] && chown "$OBSERVER_PG_USER" "$OBSERVER_PG_DIR"

	if ! observer_pg_as "$OBSERVER_PG_BIN/initdb" -D "$OBSERVER_PG_DIR/data" -U postgres -A trust \
		-E UTF8 --locale=C >"$OBSERVER_PG_DIR/initdb.log" 2>&1; then
		cat "$OBSERVER_PG_DIR/initdb.log" >&2
		observer_pg_stop
		return 1
	fi

	# Pick a free port; retry if another process grabs it before we bind.
	local port="" attempt candidate
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		candidate=$((20000 + RANDOM % 30000))
		observer_pg_port_free "$candidate" || continue
		if observer_pg_as "$OBSERVER_PG_BIN/pg_ctl" -D "$OBSERVER_PG_DIR/data" -l "$OBSERVER_PG_DIR/server.log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -c port=$candidate -c unix_socket_directories=$OBSERVER_PG_DIR -c fsync=on -c synchronous_commit=on -c max_connections=200" \
			start >/dev/null 2>&1; then
			port=$candidate
			break
		fi
	done
	if [[ -z "$port" ]]; then
		echo "postgres.sh: the server did not start:" >&2
		tail -n 20 "$OBSERVER_PG_DIR/server.log" >&2 2>/dev/null
		observer_pg_stop
		return 1
	fi

	local ready=""
	for attempt in $(seq 1 60); do
		if "$OBSERVER_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
			ready=1
			break
		fi
		sleep 0.5
	done
	if [[ -z "$ready" ]]; then
		echo "postgres.sh: the server is not ready after 30 s" >&2
		observer_pg_stop
		return 1
	fi

	if ! "$OBSERVER_PG_BIN/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "CREATE DATABASE observer_test" >/dev/null; then
		observer_pg_stop
		return 1
	fi

	export OBSERVER_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/observer_test?sslmode=disable"
	echo "postgres.sh: PostgreSQL $("$OBSERVER_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
}

# Install the cleanup in front of whatever EXIT trap the caller already has.
observer_pg_prev_exit_trap=""
observer_pg_read_exit_trap() {
	local t
	t=$(trap -p EXIT)
	if [[ -n "$t" ]]; then
		eval "set -- $t"
		observer_pg_prev_exit_trap=$3
	fi
}
observer_pg_read_exit_trap
# shellcheck disable=SC2064 # expand the previous trap now, on purpose
trap "observer_pg_stop; ${observer_pg_prev_exit_trap}" EXIT

observer_pg_start
