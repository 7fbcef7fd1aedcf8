"""Which code cells an explorer needs: the browser test's budget-aware mode.

Strict nbval already runs every cell of every notebook top to bottom; running them all a second
time in the browser would double the notebooks' share of ``make test``. What only a browser can
test is the explorers, so by default the browser test runs the setup cell, every explorer cell,
and the cells those need: the cells that bind or modify (``x[...] = ``, ``x.attr = ``,
``x.method(...)`` as a statement) a name an included cell reads, found backwards by static
analysis (names read inside a function body count unless local to it). ``COURSE_BROWSER_CELLS=all``
runs every cell instead.
"""

from __future__ import annotations

import ast
import builtins

EXPLORER_TEXT = "[interactive explorer:"  # the text form of course_lib.widgets.Explorer
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_BUILTINS = set(dir(builtins))


def _python(source: str) -> str:
    """IPython syntax (magics, ``!cmd``) turned into plain Python."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return source
    return TransformerManager().transform_cell(source)


class _Names(ast.NodeVisitor):
    """Module-level bindings, modifications and free reads of one cell."""

    def __init__(self):
        self.binds, self.mutates, self.reads = set(), set(), set()
        self.modules = set()  # imported names: plt.show() does not make a cell a dependency
        self.late = set()     # names read inside function bodies: looked up when called, not here

    # bindings --------------------------------------------------------------------------------
    def _bind_target(self, target):
        if isinstance(target, ast.Name):
            self.binds.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._bind_target(t)
        elif isinstance(target, ast.Starred):
            self._bind_target(target.value)
        else:  # x[...] = / x.attr = : modifies x
            root = target
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if isinstance(root, ast.Name):
                self.mutates.add(root.id)
            self.visit(target)

    def visit_Assign(self, node):
        self.visit(node.value)
        for t in node.targets:
            self._bind_target(t)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)
        self._bind_target(node.target)

    def visit_AugAssign(self, node):
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self.reads.add(node.target.id)
            self.mutates.add(node.target.id)
        else:
            self._bind_target(node.target)

    def visit_For(self, node):
        self.visit(node.iter)
        self._bind_target(node.target)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    def visit_With(self, node):
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._bind_target(item.optional_vars)
        for stmt in node.body:
            self.visit(stmt)

    def visit_NamedExpr(self, node):
        self.visit(node.value)
        self.binds.add(node.target.id)

    def visit_Import(self, node):
        for alias in node.names:
            self.binds.add(alias.asname or alias.name.split(".")[0])
            self.modules.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node):
        for alias in node.names:
            self.binds.add(alias.asname or alias.name)
            self.modules.add(alias.asname or alias.name)

    def visit_Expr(self, node):  # x.method(...) as a statement: assume it modifies x
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            root = call.func.value
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if isinstance(root, ast.Name):
                self.mutates.add(root.id)
        self.visit(call)

    # scopes: names read in a function body count unless local to it ---------------------------
    def _function(self, node, args, body):
        for d in getattr(node, "decorator_list", []):
            self.visit(d)
        for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
            self.visit(default)
        params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        inner = _Names()
        for stmt in body if isinstance(body, list) else [body]:
            inner.visit(stmt)
        declared_global = {n for stmt in ast.walk(node) if isinstance(stmt, ast.Global) for n in stmt.names}
        local = (params | inner.binds) - declared_global
        self.reads |= (inner.reads | inner.mutates) - local
        self.late |= ((inner.reads | inner.mutates) - local) | inner.late
        self.binds |= inner.binds & declared_global

    def visit_FunctionDef(self, node):
        self._function(node, node.args, node.body)
        self.binds.add(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._function(node, node.args, node.body)

    def visit_ClassDef(self, node):
        for expr in node.bases + node.keywords + node.decorator_list:
            self.visit(expr)
        inner = _Names()
        for stmt in node.body:
            inner.visit(stmt)
        self.reads |= inner.reads - inner.binds
        self.late |= inner.late
        self.binds.add(node.name)

    def _comprehension(self, node, elements):
        inner = _Names()
        for gen in node.generators:
            inner.visit(gen.iter)
            inner._bind_target(gen.target)
            for cond in gen.ifs:
                inner.visit(cond)
        for e in elements:
            inner.visit(e)
        self.reads |= (inner.reads | inner.mutates) - inner.binds
        self.late |= inner.late

    def visit_ListComp(self, node):
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node):
        self._comprehension(node, [node.key, node.value])

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self.reads.add(node.id)
        else:
            self.binds.add(node.id)


def cell_names(source: str):
    """``(binds, mutates, reads, imported, late)`` of a cell, or ``None`` if it cannot be parsed.

    ``late``: the names read inside function bodies (also in ``reads``).
    """
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return None
    names = _Names()
    for stmt in tree.body:
        names.visit(stmt)
    return names.binds, names.mutates, names.reads - _BUILTINS, names.modules, names.late - _BUILTINS


def is_explorer_cell(cell) -> bool:
    """An explorer is made here: ``explorer(...)`` is called, or the stored output shows one."""
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        text = data.get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else text
        if WIDGET_VIEW in data or text.startswith(EXPLORER_TEXT):
            return True
    try:
        tree = ast.parse(_python(cell["source"]))
    except SyntaxError:
        return False
    return any(isinstance(n, ast.Call) and (getattr(n.func, "id", None) == "explorer"
                                            or getattr(n.func, "attr", None) == "explorer")
               for n in ast.walk(tree))


def needed_cells(cells) -> tuple[list[int], list[int]]:
    """``(needed, explorers)``: indices (into ``cells``, code cells only) to run, and the explorer cells.

    ``cells``: the notebook's cells (dicts with ``cell_type``, ``source``, ``outputs``). The first
    code cell (imports, style, seed) is always run; a cell that cannot be parsed is always run.
    """
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    explorers = [i for i in code if is_explorer_cell(cells[i])]
    names = {i: cell_names(cells[i]["source"]) for i in code}
    forced = set(explorers) | set(code[:1]) | {i for i in code if names[i] is None}
    imported = set().union(*(n[3] for n in names.values() if n is not None))
    while True:
        needed = _backwards(code, names, forced, imported)
        # a function reads its globals when it is called (by the explorer, at the end): every cell
        # before the last explorer that binds or modifies such a name matters, not only the last
        late = set().union(*(names[i][4] for i in needed if names[i] is not None))
        last = max(explorers, default=code[-1] if code else 0)
        extra = {i for i in code if i < last and names[i] is not None
                 and (names[i][0] | names[i][1] - imported) & late} - forced
        if not extra:
            return needed, explorers
        forced |= extra


def _backwards(code, names, forced, imported) -> list[int]:
    needed, need = [], set()
    for i in reversed(code):
        if names[i] is None:
            needed.append(i)
            continue
        binds, mutates, reads, _, _ = names[i]
        mutates = mutates - imported
        if i in forced or (binds | mutates) & need:
            needed.append(i)
            need -= binds - reads - mutates   # rebound here: earlier values do not matter
            need |= reads | mutates
    return sorted(needed)
