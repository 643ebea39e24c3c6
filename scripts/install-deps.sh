#!/usr/bin/env bash
# Installs everything palisade needs to build, run and test, from Debian 12's archive only.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config git
  # source habits checked in CI: formatting and lint (scripts/check-format.sh, check-tidy.sh)
  clang-format clang-tidy
  # eBPF: compiler for the BPF target, libbpf, bpftool for vmlinux.h and skeletons
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  # libraries
  nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libcli11-dev libsqlite3-dev libssl-dev
  # file integrity: XXH3 for the fast content hash
  libxxhash-dev
  # containers: gRPC/protobuf for the containerd client, generated from containerd's own .proto
  # files; containerd, runc, umoci and busybox-static for the real-container tests
  libgrpc++-dev libprotobuf-dev protobuf-compiler-grpc golang-github-containerd-containerd-dev
  containerd runc umoci busybox-static
  # hypervisor: the libvirt and libguestfs client libraries (scripts/libvirt-up.sh installs the
  # daemon, QEMU and what the test guest is made of)
  libvirt-dev libxml2-dev libguestfs-dev
  # Kubernetes API client; python3 and openssl run the tests' local API server with a test CA
  libcpprest-dev python3 openssl
  # the chart's values table (scripts/chart-values-table.py) reads values.yaml
  python3-yaml
  # hypervisor: read-only guest-disk inspection with libguestfs, whose appliance boots the host's
  # kernel (linux-image-amd64); the tests build disk images with mkfs.ext4 -d, sfdisk, qemu-img
  libguestfs-dev libguestfs-tools linux-image-amd64 qemu-utils e2fsprogs fdisk
  # metrics: prometheus-cpp's registry and text format; the Prometheus server scrapes it in tests
  prometheus-cpp-dev prometheus
  # exporters: the NATS client (nats.c) and, for the tests, nats-server (a 3-node cluster)
  libnats-dev nats-server
  # the Helm chart's tests render it with Go's text/template and Sprig (Helm's own engine and
  # function library) in a small renderer (charts/renderer), offline in GOPATH mode, and check
  # the values against values.schema.json with gojsonschema (the validator Helm uses)
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev
  golang-github-xeipuuv-gojsonschema-dev
  # tests, fuzzing (libFuzzer ships in clang's runtime package) and benchmarks
  libgtest-dev libgmock-dev libclang-rt-14-dev libbenchmark-dev sqlite3 procps
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
