#!/usr/bin/env bash
# Regenerates the committed vmlinux.h of this machine's architecture from its kernel's BTF (or
# from the BTF file given as the first argument). The eBPF programs are CO-RE: the header only needs
# to declare the types and fields they use, so it is refreshed when a program needs a newer one.
set -euo pipefail
cd "$(dirname "$0")/.."
btf=${1:-/sys/kernel/btf/vmlinux}
case $(uname -m) in
  x86_64) arch=x86 ;;
  aarch64) arch=arm64 ;;
  *) echo "unsupported architecture: $(uname -m)" >&2; exit 1 ;;
esac
mkdir -p "node-agent/src/vmlinux/$arch"
bpftool btf dump file "$btf" format c >"node-agent/src/vmlinux/$arch/vmlinux.h.tmp"
mv "node-agent/src/vmlinux/$arch/vmlinux.h.tmp" "node-agent/src/vmlinux/$arch/vmlinux.h"
echo "wrote node-agent/src/vmlinux/$arch/vmlinux.h from $btf" >&2
