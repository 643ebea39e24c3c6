#!/usr/bin/env python3
"""Checks that palisade's components depend on each other in one direction only.

Two views of the same rule:
  1. The CMake target graph (cmake --graphviz) of palisade's own libraries has no cycle; the
     graph, reduced to those libraries, is docs/component-graph.dot (--write regenerates it).
  2. Every #include "palisade/<component>/..." in a component's sources names a component it is
     allowed to depend on (LAYERS below).
  3. Libraries that must stay light do not reach the heavy ones through any chain of links
     (MUST_NOT_REACH): the hypervisor builds without libbpf, gRPC and the Kubernetes client.

Usage: scripts/check-layering.py BUILD_DIR [--write]
"""
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

# component (a directory) -> the components it may include; the order is the layering, bottom
# first. A component may always include its own headers.
LAYERS = {
    "core/base": [],
    "core/model": ["core/base"],
    "core/ocsf": ["core/base", "core/model"],
    "policies": ["core/base", "core/model"],
    "core/metrics": ["core/base"],
    "core/runtime": ["core/base", "core/model", "core/ocsf", "policies", "core/metrics"],
    "fim": ["core/base"],
    "k8s": ["core/base"],
    "exporters": ["core/base", "core/model", "core/ocsf", "core/metrics", "core/runtime"],
    "node-agent": ["core/base", "core/model", "core/ocsf", "policies", "core/metrics",
                   "core/runtime", "fim", "k8s", "exporters"],
    "hypervisor": ["core/base", "core/model", "core/ocsf", "policies", "core/metrics",
                   "core/runtime", "fim", "exporters"],
    "cli": ["core/base", "core/model", "core/ocsf", "policies", "core/metrics", "core/runtime",
            "fim", "k8s", "exporters", "node-agent", "hypervisor"],
}
# The include prefix each component's public headers live under.
HEADER_PREFIX = {
    "base": "core/base",
    "model": "core/model",
    "ocsf": "core/ocsf",
    "metrics": "core/metrics",
    "runtime": "core/runtime",
    "policies": "policies",
    "fim": "fim",
    "exporters": "exporters",
    "k8s": "k8s",
    "agent": "node-agent",
    "hypervisor": "hypervisor",
}
# library -> libraries it must not depend on, directly or not.
MUST_NOT_REACH = {
    "palisade_hypervisor": ["palisade_agent", "palisade_k8s"],
    "palisade_runtime": ["palisade_agent", "palisade_k8s", "palisade_fim"],
    "palisade_policies": ["palisade_ocsf", "palisade_runtime", "palisade_agent"],
    "palisade_fim": ["palisade_agent", "palisade_policies"],
    "palisade_exporters": ["palisade_agent", "palisade_k8s", "palisade_hypervisor"],
    "palisade_metrics": ["palisade_model", "palisade_runtime", "palisade_agent", "palisade_k8s"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"palisade/([a-z_]+)/([^"]+)"', re.M)


def include_violations():
    found = set()
    for component in LAYERS:
        directory = ROOT / component
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*")):
            if path.suffix not in (".h", ".cpp", ".c") or "vmlinux" in path.parts:
                continue
            for match in INCLUDE.finditer(path.read_text(errors="replace")):
                target = HEADER_PREFIX.get(match.group(1))
                if target is None:
                    found.add(f"{path.relative_to(ROOT)} -> unknown component palisade/{match.group(1)}/")
                elif target != component and target not in LAYERS[component]:
                    found.add(f"{path.relative_to(ROOT)} -> palisade/{match.group(1)}/{match.group(2)}")
    return found


def reachable(start, edges):
    seen, todo = set(), [start]
    while todo:
        n = todo.pop()
        for a, b in edges:
            if a == n and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def target_graph(build_dir):
    with tempfile.TemporaryDirectory() as tmp:
        dot = pathlib.Path(tmp) / "graph.dot"
        subprocess.run(["cmake", f"--graphviz={dot}", str(build_dir)], check=True,
                       stdout=subprocess.DEVNULL)
        text = dot.read_text()
    names = dict(re.findall(r'"(node\d+)"\s*\[\s*label\s*=\s*"([^"]+)"', text))
    edges = set()
    for a, b in re.findall(r'"(node\d+)"\s*->\s*"(node\d+)"', text):
        x, y = names.get(a, ""), names.get(b, "")
        if x.startswith("palisade_") and y.startswith("palisade_"):
            edges.add((x, y))
    nodes = sorted({n for n in names.values() if n.startswith("palisade_")})
    return nodes, sorted(edges)


def find_cycle(nodes, edges):
    succ = {n: [b for a, b in edges if a == n] for n in nodes}
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in succ[n]:
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                cycle = visit(m)
                if cycle:
                    return cycle
        state[n] = 2
        stack.pop()
        return None

    for n in nodes:
        if n not in state:
            cycle = visit(n)
            if cycle:
                return cycle
    return None


def render_dot(nodes, edges):
    out = ["// Generated by scripts/check-layering.py from `cmake --graphviz`: palisade's libraries",
           "// and what each links. Do not edit; CI checks it is current and has no cycle.",
           "digraph palisade {", "  rankdir=BT;"]
    out += [f'  "{n}";' for n in nodes]
    out += [f'  "{a}" -> "{b}";' for a, b in edges]
    out.append("}")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build_dir, write = pathlib.Path(sys.argv[1]), "--write" in sys.argv[2:]
    failed = False

    nodes, edges = target_graph(build_dir)
    cycle = find_cycle(nodes, edges)
    if cycle:
        print("component cycle: " + " -> ".join(cycle), file=sys.stderr)
        failed = True
    graph_file = ROOT / "docs/component-graph.dot"
    dot = render_dot(nodes, edges)
    if write:
        graph_file.write_text(dot)
    elif not graph_file.exists() or graph_file.read_text() != dot:
        print(f"{graph_file.relative_to(ROOT)} is stale: scripts/check-layering.py {build_dir} --write",
              file=sys.stderr)
        failed = True

    for library, banned in MUST_NOT_REACH.items():
        reached = reachable(library, edges)
        for b in banned:
            if b in reached:
                print(f"{library} depends on {b}", file=sys.stderr)
                failed = True

    for v in sorted(include_violations()):
        print(f"layering violation: {v}", file=sys.stderr)
        failed = True
    if not failed:
        print(f"layering: {len(nodes)} libraries, no cycle, every include points down",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
