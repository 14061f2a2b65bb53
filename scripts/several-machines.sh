#!/usr/bin/env bash
# Heddle on several machines, one step per host: README's "Running on several machines" shows these steps in order,
# and the test bed (tests/Heddle.EndToEnd.Tests/Hosts) runs them on hosts in network namespaces. Each step prints the
# command it runs; the long-running ones (etcd, controller, agent) replace this script with the process (exec), so a
# supervisor or systemd unit can run the same line.
#
#   several-machines.sh pki DIR MEMBERS CONTROLLERS
#       On the first controller host: the cluster CA in DIR, a certificate per etcd member (DIR/etcd-NAME/) and an etcd
#       client certificate per controller (DIR/controller-NAME/). MEMBERS: e1=ADDR,e2=ADDR,...; CONTROLLERS: c1,c2,...
#       Carry DIR/etcd-NAME to etcd host NAME, and DIR/ca.crt, DIR/ca.key and DIR/controller-NAME to controller NAME.
#   several-machines.sh etcd NAME ADDR DATA PKI MEMBERS
#       On each etcd host: member NAME at ADDR (clients on 2379, peers on 2380, TLS both ways), data in DATA, its
#       certificate in PKI (DIR/etcd-NAME from the pki step), MEMBERS as above.
#   several-machines.sh controller STATE ADDR MEMBERS PKI [heddle controller options...]
#       On each controller host: API on ADDR:7443, agents on ADDR:7001, the store on the etcd MEMBERS, its etcd client
#       certificate in PKI (DIR/controller-NAME). STATE must hold the cluster's ca.crt and ca.key (from the pki step).
#   several-machines.sh agent STATE ADDR CONTROLLERS FAULT_DOMAIN [heddle agent options...]
#       On each node host, with the join string in $HEDDLE_JOIN: the agent at ADDR, its controllers' agent ports
#       (c1-addr,c2-addr,... : port 7001 on each), in FAULT_DOMAIN.
#
# HEDDLE (default: heddle on PATH) and ETCD (default /usr/bin/etcd) name the executables.
set -euo pipefail

heddle="${HEDDLE:-heddle}"
etcd="${ETCD:-/usr/bin/etcd}"
api_port=7443
agent_port=7001

run() { echo "+ $*" >&2; "$@"; }
run_exec() { echo "+ $*" >&2; exec "$@"; }

# e1=10.0.0.1,e2=10.0.0.2 -> https://10.0.0.1:2379,https://... (clients) or e1=https://10.0.0.1:2380,... (peers)
members_store() { local out="" m; for m in ${1//,/ }; do out+="${out:+,}${m#*=}:2379"; done; echo "etcd://$out"; }
members_peers() { local out="" m; for m in ${1//,/ }; do out+="${out:+,}${m%%=*}=https://${m#*=}:2380"; done; echo "$out"; }

step="${1:-}"
shift || true
case "$step" in
  pki)
    dir="$1" members="$2" controllers="$3"
    run "$heddle" ca create --dir "$dir"
    for m in ${members//,/ }; do
      run "$heddle" ca issue-etcd-member --dir "$dir" --name "${m%%=*}" --address "${m#*=}" --out "$dir/etcd-${m%%=*}"
    done
    for c in ${controllers//,/ }; do
      run "$heddle" ca issue-etcd-client --dir "$dir" --name "$c" --out "$dir/controller-$c"
    done
    ;;
  etcd)
    name="$1" addr="$2" data="$3" pki="$4" members="$5"
    run_exec "$etcd" --name "$name" --data-dir "$data" \
      --listen-client-urls "https://$addr:2379" --advertise-client-urls "https://$addr:2379" \
      --listen-peer-urls "https://$addr:2380" --initial-advertise-peer-urls "https://$addr:2380" \
      --initial-cluster "$(members_peers "$members")" --initial-cluster-state new --initial-cluster-token heddle \
      --pre-vote \
      --cert-file "$pki/$name.crt" --key-file "$pki/$name.key" --trusted-ca-file "$pki/ca.crt" --client-cert-auth \
      --client-cert-allowed-hostname heddle-etcd-client \
      --peer-cert-file "$pki/$name.crt" --peer-key-file "$pki/$name.key" --peer-trusted-ca-file "$pki/ca.crt" --peer-client-cert-auth
    ;;
  controller)
    state="$1" addr="$2" members="$3" pki="$4"
    shift 4
    name="$(basename "$pki")"; name="${name#controller-}"
    run_exec "$heddle" controller --state "$state" --listen "$addr" --api-port "$api_port" --agent-port "$agent_port" \
      --store "$(members_store "$members")" --etcd-ca "$pki/ca.crt" --etcd-cert "$pki/$name.crt" --etcd-key "$pki/$name.key" "$@"
    ;;
  agent)
    state="$1" addr="$2" controllers="$3" fd="$4"
    shift 4
    urls=""; for c in ${controllers//,/ }; do urls+="${urls:+,}https://$c:$agent_port"; done
    : "${HEDDLE_JOIN:?set HEDDLE_JOIN to a join string from 'heddle token create --join'}"
    run_exec "$heddle" agent --state "$state" --address "$addr" --controller "$urls" --fault-domain "$fd" "$@"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
