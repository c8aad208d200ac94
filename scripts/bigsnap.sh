#!/usr/bin/env bash
# The large-state SNAP figure (BENCHMARKS.md, "Large-state sync"): servers 1 and 2 start from a
# generated snapshot of ZNODES znodes of DATA bytes (ensemble-bigstate, hard-linked into both
# data dirs), server 3 starts empty and syncs it by SNAP. Prints the recovery time of 1 and 2,
# server 3's time from `ensemble start` to Mode: follower, and VmHWM / VmRSS of the three.
# Usage: scripts/bigsnap.sh DIR ZNODES DATA [BASEPORT]   (DIR is deleted at the end)
set -euo pipefail
DIR=$1 ZNODES=$2 DATA=$3 BASE=${4:-24000}
BIN=${BIN:-target/release}
rm -rf "$DIR"
for i in 1 2 3; do
  mkdir -p "$DIR/data_$i"
  echo $i > "$DIR/data_$i/myid"
  {
    echo "tickTime=500"; echo "initLimit=600"; echo "syncLimit=40"
    echo "dataDir=$DIR/data_$i"; echo "clientPort=$((BASE + i))"; echo "clientPortAddress=127.0.0.1"
    echo "4lw.commands.whitelist=*"; echo "preAllocSize=1024"; echo "syncPartSize=4194304"
    echo "admin.enableServer=false"
    for s in 1 2 3; do echo "server.$s=localhost:$((BASE + 10 + s)):$((BASE + 20 + s))"; done
  } > "$DIR/zoo$i.cfg"
done
t=$(date +%s.%N)
"$BIN/ensemble-bigstate" --znodes "$ZNODES" --data "$DATA" --data-dir "$DIR/data_1" --data-dir "$DIR/data_2"
echo "generated in $(echo "$(date +%s.%N) - $t" | bc) s; disk: $(du -sh "$DIR" | cut -f1)"
mode() { "$BIN/ensemble" status "$DIR/zoo$1.cfg" 2>/dev/null | sed -n 's/^Mode: //p'; }
pid() { cat "$DIR/data_$1/zookeeper_server.pid"; }
mem() { awk '/VmHWM|VmRSS/ {printf "%s %.2f GB  ", $1, $2/1048576}' "/proc/$(pid $1)/status"; }
cleanup() { for i in 1 2 3; do "$BIN/ensemble" stop "$DIR/zoo$i.cfg" >/dev/null 2>&1 || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
t=$(date +%s.%N)
"$BIN/ensemble" start "$DIR/zoo1.cfg" >/dev/null
"$BIN/ensemble" start "$DIR/zoo2.cfg" >/dev/null
until [[ "$(mode 1)$(mode 2)" =~ ^(leaderfollower|followerleader)$ ]]; do sleep 0.5; done
echo "servers 1 and 2 recovered and formed the ensemble in $(echo "$(date +%s.%N) - $t" | bc) s"
for i in 1 2; do echo "server $i ($(mode $i)): $(mem $i)"; done
t=$(date +%s.%N)
"$BIN/ensemble" start "$DIR/zoo3.cfg" >/dev/null
peak3=0
until [ "$(mode 3)" = follower ]; do
  sleep 0.5
  r=$(awk '/VmRSS/ {print $2}' "/proc/$(pid 3)/status" 2>/dev/null || echo 0)
  (( r > peak3 )) && peak3=$r
done
echo "server 3 followed $(echo "$(date +%s.%N) - $t" | bc) s after its start"
for i in 1 2 3; do echo "server $i ($(mode $i)): $(mem $i)"; done
ls -l "$DIR"/data_3/version-2/
grep -h -i "snap" "$DIR"/data_*/zookeeper.out | grep -v DEBUG | tail -8 || true
