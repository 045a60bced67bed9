# Shared defaults for the local stack scripts; every value can be overridden from the environment.
# Sourced, not executed.
BATON_ROOT="${BATON_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
BATON_LOCAL_DIR="${BATON_LOCAL_DIR:-$BATON_ROOT/.local}"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${KAFKA_HEAP:-1g}"
KAFKA_LIBS="${KAFKA_LIBS:-$BATON_ROOT/deploy/local/.kafka/libs-$KAFKA_VERSION}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$BATON_LOCAL_DIR/kafka}"
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-55432}"
PGUSER="${PGUSER:-baton}"
PGDATABASE="${PGDATABASE:-baton}"
PG_DATA_DIR="${PG_DATA_DIR:-$BATON_LOCAL_DIR/postgres}"
export BATON_ROOT BATON_LOCAL_DIR KAFKA_HOST KAFKA_PORT PGHOST PGPORT PGUSER PGDATABASE

port_open() {  # host port -> 0 when something accepts TCP connections there
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
