#!/usr/bin/env bash
# Prepare a Debian machine for mip4: Debian packages (when missing) and a venv in .venv.
# Idempotent; sourced by scripts/test.sh and scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v tshark >/dev/null 2>&1 || need_pkgs+=(tshark)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v nft >/dev/null 2>&1 || need_pkgs+=(nftables)
command -v tcpdump >/dev/null 2>&1 || need_pkgs+=(tcpdump)
# the home AAA server of the AAA tests and the lab (started with a generated configuration;
# the package's own service is not used)
command -v freeradius >/dev/null 2>&1 || need_pkgs+=(freeradius)
# radclient (the Disconnect-Request sender of tests/aaa/test_disconnect.py): its own package,
# which a machine with freeradius may lack
command -v radclient >/dev/null 2>&1 || need_pkgs+=(freeradius-utils)
# the Mobile IP MIB (issue 15): net-snmp's snmpd as the AgentX master of the tests (started
# with a generated configuration; the package's own service is not used) and its tools
# (snmpwalk, snmpget, snmptable)
command -v snmpd >/dev/null 2>&1 || [[ -x /usr/sbin/snmpd ]] || need_pkgs+=(snmpd)
command -v snmpwalk >/dev/null 2>&1 || need_pkgs+=(snmp)
# systemd-analyze: tests/daemon/test_systemd_units.py verifies contrib/systemd/*.service
command -v systemd-analyze >/dev/null 2>&1 || need_pkgs+=(systemd)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
# the tc-BPF data plane (issue 12): libbpf at run time; clang, llvm-strip, the libbpf
# headers and make to build bpf/mip4_tunnel.bpf.c; bpftool to look at it
ldconfig -p 2>/dev/null | grep -q 'libbpf\.so\.1 ' || need_pkgs+=(libbpf1)
command -v clang >/dev/null 2>&1 || need_pkgs+=(clang)
command -v llvm-strip >/dev/null 2>&1 || need_pkgs+=(llvm)
[[ -f /usr/include/bpf/bpf_helpers.h ]] || need_pkgs+=(libbpf-dev)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc)  # the registration benchmark's load generator
command -v bpftool >/dev/null 2>&1 || need_pkgs+=(bpftool)
if ((${#need_pkgs[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${need_pkgs[*]} (run as root, or: sudo apt-get install ${need_pkgs[*]})" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.mip4-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing mip4 and its development dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

# The BPF objects shipped as package data (the tc-BPF tunnel, the control-socket steering
# of issue 13): rebuilt only when a source changed since the recorded build (the build is
# deterministic: see bpf/Makefile and tests/bpf/test_object.py).
if command -v clang >/dev/null 2>&1 && command -v make >/dev/null 2>&1; then
  for obj in mip4_tunnel mip4_steer; do
    src_hash=$(sha256sum "bpf/$obj.bpf.c" | cut -d' ' -f1)
    if ! grep -q "\"sha256\": \"$src_hash\"" "src/mip4/data/$obj.bpf.json" 2>/dev/null; then
      echo "setup: building the BPF objects (bpf/$obj.bpf.c changed)"
      make -s -B -C bpf
      break
    fi
  done
fi

# Bytecode for mip4's own modules (an editable install gets none from pip): a daemon started
# with PYTHONDONTWRITEBYTECODE set would otherwise compile every module it imports at each
# start: 0.2-0.4 s of the 0.6-0.9 s a home agent took to read its configuration (issue 15:
# a restarted agent is back within 1 s).
# A stale file is never used (Python checks the source's time and size).
.venv/bin/python -m compileall -q src >/dev/null
