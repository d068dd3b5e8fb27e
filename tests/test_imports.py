"""No import cycle among pacodec's modules, imports inside functions included.

Every ``.py`` under ``pacodec/`` is parsed (not imported); each ``import``/``from ... import``
anywhere in it -- at the top, in a function, under ``try`` or ``if`` -- is an edge to the pacodec
module it names (``from . import x`` names the module ``x`` when there is one, else the package).
A package's ``__init__`` running before its submodules is Python's doing, not an edge.  A
cycle is reported with the lines that make it.
"""
import ast
import pathlib

import pacodec

ROOT = pathlib.Path(pacodec.__file__).resolve().parent


def modules():
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("pacodec",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _known(name, mods):
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports(name, path, mods):
    """(module imported, line) for every import statement of the module ``name``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in mods else target), node.lineno


def graph():
    mods = modules()
    edges = {m: {} for m in mods}
    for m, path in mods.items():
        for target, line in imports(m, path, mods):
            t = _known(target, mods)
            if t is not None and t != m:
                edges[m].setdefault(t, line)
    return edges


def cycles(edges):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_pacodec_modules():
    edges = graph()
    found = cycles(edges)
    lines = [f"{a} -> {b} (line {edges[a][b]})" for comp in found for a in comp for b in edges[a]
             if b in comp]
    assert not found, "import cycles:\n" + "\n".join(lines)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    edges = graph()
    assert "pacodec.quality" in edges["pacodec.batch"] or any(
        "pacodec.quality" in edges[m] for m in edges if m.startswith("pacodec.batch"))
    assert "pacodec.cli" not in edges["pacodec.listen"]
    assert cycles({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}) == [["a", "b", "c"]]


def test_the_front_ends_import_in_one_direction():
    """cli on top; batch, listen and the streaming commands below it, never importing it; the
    library module dataset does not import the batch tool."""
    edges = graph()
    below = [m for m in edges if m.startswith(("pacodec.batch", "pacodec.stream", "pacodec.listen",
                                               "pacodec.gst", "pacodec._frontend",
                                               "pacodec._audioin"))]
    assert {m for m in below if "pacodec.cli" in edges[m]} == set()
    assert not any(t.startswith("pacodec.batch") for t in edges["pacodec.dataset"])
