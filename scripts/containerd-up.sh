#!/usr/bin/env bash
# Starts containerd (when it is not already serving) and imports the small test image
# docker.io/library/palisade-bb:latest, built locally from busybox-static (no registry needed).
# Used by the tests and by anyone trying palisade on a host without Kubernetes.
set -euo pipefail
socket=${CONTAINERD_SOCKET:-/run/containerd/containerd.sock}
image=docker.io/library/palisade-bb:latest

if ! ctr --address "$socket" version >/dev/null 2>&1; then
  mkdir -p /var/log
  echo "starting containerd (log: /var/log/containerd.log)" >&2
  setsid containerd >>/var/log/containerd.log 2>&1 </dev/null &
  for _ in $(seq 100); do
    ctr --address "$socket" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  ctr --address "$socket" version >/dev/null
fi

if ! ctr --address "$socket" -n k8s.io images ls -q | grep -qx "$image"; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$work"
  umoci init --layout bb >/dev/null
  umoci new --image bb:latest
  umoci unpack --rootless --image bb:latest bundle >/dev/null
  mkdir -p bundle/rootfs/bin
  cp /bin/busybox bundle/rootfs/bin/
  for c in sh ls cat sleep echo wget nc true id rm touch; do ln -sf busybox "bundle/rootfs/bin/$c"; done
  umoci repack --image bb:latest bundle
  umoci config --image bb:latest --config.cmd /bin/sh
  tar -C bb -cf bb.tar .
  ctr --address "$socket" -n k8s.io image import --index-name "$image" bb.tar >/dev/null
  echo "imported $image" >&2
fi
