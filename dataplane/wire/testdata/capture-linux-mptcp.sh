#!/bin/bash
# Captures real Linux MPTCP v1 frames (with DSS checksums) for the wire crate's test fixtures
# (src/capture.rs). Run as root on a kernel with MPTCP; it creates two namespaces joined by two
# veth pairs, runs a client and a server that exchange data, announce and remove addresses,
# change a subflow's priority and abort a second connection, and writes one pcap per path
# into the directory given as $1 (default: the current directory). Only RFC 2544/5180
# benchmarking addresses are used, inside namespaces created here and deleted on exit.
set -u
OUT=${1:-.}
cleanup() { ip netns del wcapc 2>/dev/null; ip netns del wcaps 2>/dev/null; rm -rf "${WORK:-/nonexistent}"; }
trap cleanup EXIT
cleanup
WORK=$(mktemp -d)
cat > "$WORK/server.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 10000)); s.listen(4); s.settimeout(20)
for n in range(2):
    c, a = s.accept(); c.settimeout(10)
    got = b""
    try:
        while True:
            d = c.recv(65536)
            if not d: break
            got += d
            if n == 0 and got.endswith(b"END"):
                c.sendall(b"reply-" + got[:20]); 
    except Exception as e:
        print("srv", e)
    c.close()
PY
cat > "$WORK/client.py" <<'PY'
import socket, sys, time, struct
c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
c.connect(("198.18.0.2", 10000))
c.sendall(b"hello mptcp")
time.sleep(1.5)
c.sendall(b"x" * 3000 + b"END")
print(c.recv(100))
time.sleep(1.5)
open(sys.argv[1], "w").write("joined")
time.sleep(3)
c.sendall(b"after-prio")
time.sleep(1)
c.shutdown(socket.SHUT_WR)
time.sleep(1)
c.close()
time.sleep(1)
d = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
d.connect(("198.18.0.2", 10000))
d.sendall(b"abort me")
time.sleep(0.5)
d.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
d.close()
PY
ip netns add wcapc; ip netns add wcaps
ip link add c0 netns wcapc type veth peer s0 netns wcaps
ip link add c1 netns wcapc type veth peer s1 netns wcaps
for ns in wcapc wcaps; do
  ip -n $ns link set lo up
  ip netns exec $ns sysctl -q net.mptcp.enabled=1 net.mptcp.checksum_enabled=1
  ip -n $ns mptcp limits set subflows 2 add_addr_accepted 4
done
ip -n wcapc addr add 198.18.0.1/24 dev c0; ip -n wcapc addr add 198.18.1.1/24 dev c1
ip -n wcaps addr add 198.18.0.2/24 dev s0; ip -n wcaps addr add 198.18.1.2/24 dev s1
ip -n wcapc addr add 2001:2::1/64 dev c1 nodad; ip -n wcaps addr add 2001:2::2/64 dev s1 nodad
for d in c0 c1; do ip -n wcapc link set $d up; ip netns exec wcapc ethtool -K $d tx off tso off gso off >/dev/null; done
for d in s0 s1; do ip -n wcaps link set $d up; ip netns exec wcaps ethtool -K $d tx off tso off gso off >/dev/null; done
ip -n wcaps mptcp endpoint add 198.18.1.2 dev s1 id 5 signal
ip -n wcaps mptcp endpoint add 2001:2::2 dev s1 id 6 signal
ip netns exec wcaps tcpdump -i s0 -w "$OUT/linux-mptcp-path0.pcap" -U -s 0 2>/dev/null &
T0=$!
ip netns exec wcaps tcpdump -i s1 -w "$OUT/linux-mptcp-path1.pcap" -U -s 0 2>/dev/null &
T1=$!
sleep 1
ip netns exec wcapc ping -c 1 -W 1 198.18.0.2 >/dev/null
timeout 30 ip netns exec wcaps python3 "$WORK/server.py" &
S=$!
sleep 0.5
rm -f "$WORK/phase"
timeout 30 ip netns exec wcapc python3 "$WORK/client.py" "$WORK/phase" &
C=$!
for i in $(seq 1 50); do [ -f "$WORK/phase" ] && break; sleep 0.1; done
ip -n wcapc mptcp endpoint show; ip netns exec wcapc ss -Mni | head
ip -n wcaps mptcp endpoint change id 5 backup || true
ip -n wcapc mptcp endpoint
sleep 1
ip -n wcaps mptcp endpoint delete id 6 || true
sleep 1
wait $C; wait $S
sleep 1
kill $T0 $T1
wait
