#!/usr/bin/env python3
"""Writes the containerd fuzzer's seeds (tests/fuzz/corpus/containerd/): one Envelope per topic
the watcher acts on (and one it ignores), as containerd's Subscribe stream sends them, and the
container records a Get returns for each cgroup driver. Encoded by protoc from containerd's own
.proto files (the stripped copies a build makes under build/containerd-api).

    python3 tests/fuzz/make_containerd_seeds.py [BUILD_DIR]
"""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TREE = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build") / "containerd-api"
API = "github.com/containerd/containerd/api"
OUT = ROOT / "tests/fuzz/corpus/containerd"
ID = "3f1c9d0b7a2e4c58a6b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3"


def encode(proto, message, text):
    return subprocess.run(
        ["protoc", f"-I{TREE}", "-I/usr/include", f"--encode={message}", f"{API}/{proto}"],
        input=text.encode(), capture_output=True, check=True).stdout


def escaped(data):
    return "".join(f"\\{b:03o}" for b in data)


def envelope(topic, message, text):
    proto = "events/container.proto" if message.startswith("Container") else "events/task.proto"
    payload = encode(proto, f"containerd.events.{message}", text)
    return encode("services/events/v1/events.proto", "containerd.services.events.v1.Envelope",
                  f'timestamp {{ seconds: 1764806400 nanos: 5 }} namespace: "k8s.io" '
                  f'topic: "{topic}" event {{ type_url: "containerd.events.{message}" '
                  f'value: "{escaped(payload)}" }}')


def container(name, cgroups_path):
    spec = '{"ociVersion":"1.1.0","linux":{"cgroupsPath":"%s"}}' % cgroups_path
    return encode("services/containers/v1/containers.proto",
                  "containerd.services.containers.v1.Container",
                  f'id: "{ID}" image: "docker.io/library/{name}:latest" '
                  f'labels {{ key: "io.kubernetes.pod.uid" value: "6c1b6a1e-1" }} '
                  f'labels {{ key: "io.cri-containerd.kind" value: "container" }} '
                  f'runtime {{ name: "io.containerd.runc.v2" }} '
                  f'spec {{ type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec" '
                  f'value: "{escaped(spec.encode())}" }}')


SEEDS = {
    "container-create": envelope("/containers/create", "ContainerCreate",
                                 f'id: "{ID}" image: "nginx" runtime {{ name: "io.containerd.runc.v2" }}'),
    "container-update": envelope("/containers/update", "ContainerUpdate",
                                 f'id: "{ID}" image: "nginx" labels {{ key: "a" value: "b" }}'),
    "container-delete": envelope("/containers/delete", "ContainerDelete", f'id: "{ID}"'),
    "task-create": envelope("/tasks/create", "TaskCreate",
                            f'container_id: "{ID}" bundle: "/run/containerd/b" pid: 4242'),
    "task-start": envelope("/tasks/start", "TaskStart", f'container_id: "{ID}" pid: 4242'),
    "task-exit": envelope("/tasks/exit", "TaskExit",
                          f'container_id: "{ID}" id: "{ID}" pid: 4242 exit_status: 137'),
    "task-exec-exit": envelope("/tasks/exit", "TaskExit",
                               f'container_id: "{ID}" id: "exec-1" pid: 4300 exit_status: 0'),
    "task-oom-ignored": envelope("/tasks/oom", "TaskOOM", f'container_id: "{ID}"'),
    "record-cgroupfs": container("nginx", f"/kubepods/besteffort/pod6c1b6a1e-1/{ID}"),
    "record-systemd": container(
        "redis", f"kubepods-besteffort-pod6c1b6a1e_1.slice:cri-containerd:{ID}"),
    "record-default": container("busybox", ""),
}

OUT.mkdir(parents=True, exist_ok=True)
for name, data in SEEDS.items():
    (OUT / name).write_bytes(data)
print(f"{len(SEEDS)} seeds in {OUT.relative_to(ROOT)}")
