#!/bin/bash
# Captures real Linux IPv6 frames for the wire crate's IPv6 test fixtures (src/capture_ipv6.rs).
# Run as root; it creates two namespaces joined by one veth pair (checksum offload off, so that
# every checksum on the wire is the one Linux computed), lets duplicate address detection run,
# pings once (neighbour solicitation, advertisement, echo request and reply) and sends a few
# bytes over one TCP connection, and writes linux-ipv6.pcap into the directory given as $1
# (default: the current directory). Only RFC 5180 benchmarking addresses (2001:2::/48) are
# used, inside namespaces created here and deleted on exit.
set -u
OUT=${1:-.}
cleanup() { ip netns del wcap6a 2>/dev/null; ip netns del wcap6b 2>/dev/null; }
trap cleanup EXIT
cleanup
ip netns add wcap6a; ip netns add wcap6b
ip link add c0 netns wcap6a type veth peer s0 netns wcap6b
ip -n wcap6a link set c0 address 02:00:00:00:00:01
ip -n wcap6b link set s0 address 02:00:00:00:00:02
for ns in wcap6a wcap6b; do ip -n $ns link set lo up; done
ip netns exec wcap6a ethtool -K c0 tx off tso off gso off >/dev/null
ip netns exec wcap6b ethtool -K s0 tx off tso off gso off >/dev/null
# Both ends up before tcpdump starts (it refuses a device that is down), addresses after it.
ip -n wcap6a link set c0 up; ip -n wcap6b link set s0 up
ip netns exec wcap6b tcpdump -i s0 -w "$OUT/linux-ipv6.pcap" -U -s 0 2>/dev/null &
T=$!
sleep 1
ip -n wcap6a addr add 2001:2::1/64 dev c0; ip -n wcap6b addr add 2001:2::2/64 dev s0
# Wait for duplicate address detection to finish on both ends.
for _ in $(seq 50); do
    tentative=$(ip -n wcap6a -6 addr show tentative; ip -n wcap6b -6 addr show tentative)
    [[ -z "$tentative" ]] && break
    sleep 0.2
done
ip netns exec wcap6a ping -6 -c 1 -W 1 2001:2::2 >/dev/null
timeout 10 ip netns exec wcap6b python3 -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(("2001:2::2", 10000)); s.listen(1); s.settimeout(5)
c, _ = s.accept(); c.settimeout(5)
got = b""
while True:
    d = c.recv(100)
    if not d: break
    got += d
c.sendall(b"reply " + got); c.close()
' &
S=$!
sleep 0.5
timeout 10 ip netns exec wcap6a python3 -c '
import socket
c = socket.create_connection(("2001:2::2", 10000), timeout=5)
c.sendall(b"hello ipv6"); c.shutdown(socket.SHUT_WR)
print(c.recv(100)); c.close()
'
wait $S
sleep 0.5
kill $T; wait $T 2>/dev/null
