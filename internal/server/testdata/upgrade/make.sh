#!/bin/sh
# Rebuilds the database fixture of TestUpgradeFromPreviousRelease: a Rampart server as the code
# of an older commit left it, for the current server to migrate and serve.
#
#   internal/server/testdata/upgrade/make.sh COMMIT
#
# It was made with COMMIT b3f5b36 (the last commit of 2026-11-26, the release before the work of
# 2026-12-07). It builds that commit's rampart in a temporary worktree, starts its server on a new
# data folder, and with that version's own CLI: initialises the offline TUF keys, creates product
# lamp (software attesters accepted), adds a 4 KiB image and signs release 1.0.0, runs two
# simulated devices that enrol, attest and are claimed into lamp/Production, sends 1.0.0 to them
# with an emergency deployment and lets them install it. It then stops the server and copies the
# data folder (database checkpointed and vacuumed), the devices' state and the offline keys here.
set -eu
commit=${1:?usage: make.sh COMMIT}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; git -C "$repo" worktree remove --force "$work/src" 2>/dev/null || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add --detach "$work/src" "$commit" >/dev/null
(cd "$work/src" && go build -o "$work/rampart" ./cmd/rampart)
r=$work/rampart
data=$work/data
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$r" server --data "$data" --listen 127.0.0.1:$port 2>"$work/server.log" &
server=$!
i=0; until [ -s "$data/admin.token" ] && grep -q listening "$work/server.log"; do i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.2; done
export RAMPART_SERVER=https://127.0.0.1:$port RAMPART_CA_FILE=$data/service-ca.pem RAMPART_TOKEN="$(cat "$data/admin.token")"
export RAMPART_KEYS_PASSPHRASE="upgrade fixture passphrase"
"$r" keys init --dir "$work/keys" >/dev/null
"$r" product create lamp >/dev/null
"$r" product policy lamp --accept-software=true >/dev/null
python3 -c 'import random,sys; random.seed(1); sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(4096)))' >"$work/rootfs.img"
id=$("$r" image add "$work/rootfs.img" --component rootfs --version 1.0.0 --security-version 1)
"$r" release create --product lamp --version 1.0.0 --image "$id" >/dev/null
"$r" release sign --product lamp --version 1.0.0 --keys "$work/keys" >/dev/null
"$r" sim --devices 2 --product lamp --group Production --dir "$work/devices" --duration 3s --interval 1s --wait-timeout 1s --seed 1 >/dev/null
"$r" deployment create --product lamp --group Production --release 1.0.0 --emergency >/dev/null
"$r" sim --devices 2 --product lamp --group Production --dir "$work/devices" --duration 8s --interval 1s --wait-timeout 1s --seed 2 >/dev/null
kill -INT $server; wait $server || true
python3 - "$data/rampart.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.execute("PRAGMA journal_mode=DELETE")
db.execute("VACUUM")
db.close()
PY
rm -rf "$here/data" "$here/devices" "$here/keys"
mkdir -p "$here/data"
cp -p "$data"/rampart.db "$data"/master.key "$data"/tuf-online-keys.json "$data"/service-ca.pem "$data"/service-ca.key \
	"$data"/server.pem "$data"/server.key "$data"/admin.token "$here/data/"
cp -rp "$data/blobs" "$here/data/blobs"
rm -rf "$here/data/blobs/tmp"
cp -rp "$work/devices" "$here/devices"
cp -rp "$work/keys" "$here/keys"
echo "$commit" >"$here/COMMIT"
