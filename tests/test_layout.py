"""The package's layout: imports run one way down the layers, no cycle, no function-local import of the
package's own modules, and the README's module table lists exactly the modules in the tree.

``python tests/test_layout.py`` prints the import graph (modules, arrows, cycles, local imports)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "metartt_lite"
LAYERS = ["core", "data", "model", "train", "track", "evaluation", "course"]  # lowest first; top level above all


def modules() -> dict[str, Path]:
    """dotted name (without the package prefix; a package's __init__ is the package name) -> path."""
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def layer(mod: str) -> int:
    head = mod.split(".")[0]
    return LAYERS.index(head) if head in LAYERS else len(LAYERS)


def _resolve(mod: str, path: Path, node: ast.ImportFrom | ast.Import, known: set[str]) -> list[str]:
    """The package modules an import statement names (submodules imported by ``from X import sub`` count)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names if a.name.startswith("metartt_lite")]
        return [n.removeprefix("metartt_lite").lstrip(".") for n in names if n.removeprefix("metartt_lite").lstrip(".") in known]
    if node.level == 0:
        if not (node.module or "").startswith("metartt_lite"):
            return []
        base = node.module.removeprefix("metartt_lite").lstrip(".")
    else:
        here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        here = [h for h in here if h]
        up = here[: len(here) - (node.level - 1)] if node.level > 1 else here
        base = ".".join(up + ([node.module] if node.module else []))
    out = []
    for a in node.names:
        sub = f"{base}.{a.name}" if base else a.name
        if sub in known:
            out.append(sub)
        elif base in known:
            out.append(base)
    return list(dict.fromkeys(out))


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """(module-level arrows importer -> imported, function-local imports of package modules)."""
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    local = []
    for m, p in mods.items():
        tree = ast.parse(p.read_text())
        top = set(id(n) for n in tree.body)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = [t for t in _resolve(m, p, node, known) if t != m]
                if id(node) in top:
                    edges[m].update(targets)
                elif targets:
                    local.append((m, node.lineno, ", ".join(targets)))
    return edges, local


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_graph_helpers_on_a_hand_made_graph():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_run_one_way():
    edges, _ = import_graph()
    upward = [f"{a} -> {b}" for a, bs in edges.items() for b in bs if layer(b) > layer(a)]
    assert not upward, "a lower layer imports a higher one: " + "; ".join(sorted(upward))
    assert any(edges.values()), "the graph found no import at all"
    assert "core.utils" in edges["track.rtmdnet"] and "train.inner_loop" in edges["track.rtmdnet"]


def test_no_import_cycle():
    edges, _ = import_graph()
    assert cycles(edges) == []


def test_no_function_local_import_of_the_package():
    _, local = import_graph()
    assert not local, "function-local imports of package modules: " + "; ".join(f"{m}:{l} ({t})" for m, l, t in local)


def test_readme_module_table_matches_the_tree():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## What is inside"):readme.index("## Command line")]
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", section, re.M))
    tree = {p.relative_to(PKG).as_posix() for p in PKG.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert listed == tree, f"README lists but tree lacks: {sorted(listed - tree)}; tree has but README lacks: {sorted(tree - listed)}"


if __name__ == "__main__":
    edges, local = import_graph()
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} arrows, cycles: {cycles(edges) or 'none'}, "
          f"function-local package imports: {len(local)}")
    for a in sorted(edges):
        print(f"  {a:24s} -> {', '.join(sorted(edges[a]))}")
