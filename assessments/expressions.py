"""The expression language of data quality rules: checked and parsed once, when a rule is loaded
(a trial's file, an instrument's file), then evaluated many times with never a Python `eval`.

No Django import: instrument definitions (assessments.definitions) and trial rules (quality)
both compile their expressions here, and it can be tested alone.

Why simpleeval (pinned in requirements.txt): it is small, pure Python, maintained since 2013,
and evaluates a parsed Python syntax tree with its own walker, so nothing reaches the
interpreter; its syntax (`and`, `or`, `not`, comparisons, arithmetic) is what a data manager
writes in REDCap or OpenClinica rules. A CEL implementation (cel-python) is heavier (a Lark
grammar) and slower per evaluation, which matters for a rule run on every form save; JSON Logic
writes `a > b` as nested mappings that nobody reviews comfortably in YAML.

simpleeval alone is not the guard: `compile_expression` walks the tree first with an
allow-list and refuses, with the reason, anything else: attribute access (other than a
reference to data, below), subscripts, comprehensions, lambdas, keyword arguments, exponents
other than a small constant, a tree nested deeper than MAX_DEPTH, a text longer than
MAX_LENGTH, a name that is not data, a function not in FUNCTIONS.

References to data are dotted names (`gaf_f.gaf_f`, `previous.gaf_f.gaf_f`,
`visits.baseline.gaf_f.gaf_f`, `visit.date`): the caller's `resolve(parts)` says what each one
means (or raises ExpressionError with why not), and the compiled tree holds one flat name per
reference, so evaluation looks each up in a dict and reads no attribute of any object.

Values: numbers, booleans, text, dates; an item not answered, or given a missing-value code,
is None. A comparison or sum with None raises inside the evaluation: `evaluate` then says the
rule does not apply (returns None), so a rule never flags a value that is not there; the
built-in rule for blank required items covers those, and `answered(x)` asks about presence.
"""

from __future__ import annotations

import ast
import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass

from simpleeval import DEFAULT_OPERATORS, IterableTooLong, NumberTooHigh, SimpleEval

MAX_LENGTH = 500
MAX_DEPTH = 12
MAX_EXPONENT = 4
MAX_TEXT_CONSTANT = 100
# round()'s ndigits, either way: Python's round(1, -n) builds 10**n (seconds at n = 10**7,
# minutes and gigabytes beyond), and no rule needs more digits than a float holds.
MAX_ROUND_DIGITS = 15


def _days_between(earlier, later):
    if not isinstance(earlier, datetime.date) or not isinstance(later, datetime.date):
        raise TypeError("days_between takes two dates")
    return (later - earlier).days


def _round(number, ndigits=None):
    if ndigits is not None and (
        not isinstance(ndigits, int) or isinstance(ndigits, bool) or abs(ndigits) > MAX_ROUND_DIGITS
    ):
        raise ValueError(f"round takes at most {MAX_ROUND_DIGITS} digits")
    return round(number, ndigits)


def _modulo(a, b):
    """`%` on numbers only: on text it is printf formatting ('%999999999d' % 1 is a gigabyte
    of spaces), from a constant or from a text item's value."""
    if isinstance(a, str | bytes) or isinstance(b, str | bytes):
        raise TypeError("% takes numbers")
    return a % b


def _answered(value):
    return value is not None


FUNCTIONS = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": _round,
    "answered": _answered,
    "days_between": _days_between,
}
_CONSTANT_NAMES = {"None": None, "True": True, "False": False}
_OPERATORS = {
    op: DEFAULT_OPERATORS[op]
    for op in (
        ast.Add,
        ast.Sub,
        ast.Mult,
        ast.Div,
        ast.FloorDiv,
        ast.Mod,
        ast.Pow,
        ast.Eq,
        ast.NotEq,
        ast.Gt,
        ast.Lt,
        ast.GtE,
        ast.LtE,
        ast.Not,
        ast.USub,
        ast.UAdd,
    )
}
_OPERATORS[ast.Mod] = _modulo
_ALLOWED = (
    ast.Expr,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.BinOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    *_OPERATORS,
)


class ExpressionError(ValueError):
    """The expression is refused; the message says why."""


@dataclass(frozen=True)
class Compiled:
    """A checked expression: its text, its parsed tree (references flattened) and the data it
    reads, as the keys `resolve` gave."""

    text: str
    tree: ast.AST
    reads: tuple[str, ...]

    def evaluate(self, names):
        """True (the rule is broken), False, or None (it does not apply: a value it needs is
        not there, or not of a type the expression can use)."""
        evaluator = _evaluator()
        evaluator.names = names
        try:
            result = evaluator.eval(self.text, previously_parsed=self.tree)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, ArithmeticError):
            return None
        except (NumberTooHigh, IterableTooLong):
            # simpleeval's own limits on the values (a power's base past MAX_POWER, a text
            # repeated past MAX_STRING_LENGTH): not a rule that applies to these data.
            return None
        return bool(result)


_local = threading.local()


def _evaluator():
    """One evaluator per thread, reused (building one costs more than most evaluations); its
    operators and functions are the same for every expression, only the names change."""
    if (evaluator := getattr(_local, "evaluator", None)) is None:
        evaluator = _local.evaluator = SimpleEval(operators=_OPERATORS, functions=FUNCTIONS)
    return evaluator


def _reference(node):
    """The parts of a dotted name (a.b.c), or None if it is anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return tuple(reversed(parts))


def _depth(node):
    children = list(ast.iter_child_nodes(node))
    return 1 + max((_depth(child) for child in children), default=0)


def compile_expression(text, resolve: Callable[[tuple[str, ...]], str]):
    """Check and parse `text`; return Compiled or raise ExpressionError saying why."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression must be non-empty text")
    text = text.strip()
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        module = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        raise ExpressionError(f"not a valid expression ({reason})") from None
    if len(module.body) != 1 or not isinstance(module.body[0], ast.Expr):
        raise ExpressionError("write one expression (no statements, assignments or ';')")
    expression = module.body[0]
    try:
        depth = _depth(expression)
    except RecursionError:
        depth = MAX_DEPTH + 1
    if depth > MAX_DEPTH:
        raise ExpressionError(f"the expression is nested deeper than {MAX_DEPTH} levels")
    reads = []
    expression = _Checker(resolve, reads).visit(expression)
    return Compiled(text=text, tree=expression, reads=tuple(dict.fromkeys(reads)))


class _Checker(ast.NodeTransformer):
    """Refuses every node not allowed; replaces each reference by one flat name."""

    def __init__(self, resolve, reads):
        self.resolve, self.reads = resolve, reads

    def visit_Attribute(self, node):
        parts = _reference(node)
        if parts is None or any(part.startswith("_") for part in parts):
            raise ExpressionError(
                "attribute access is not allowed (only references to data such as "
                "gaf_f.gaf_f or previous.gaf_f.gaf_f)"
            )
        return self._data(node, parts)

    def visit_Name(self, node):
        if node.id in _CONSTANT_NAMES:
            return ast.copy_location(ast.Constant(_CONSTANT_NAMES[node.id]), node)
        if node.id in FUNCTIONS:
            raise ExpressionError(f"{node.id} is a function: call it, as {node.id}(...)")
        if node.id.startswith("_"):
            raise ExpressionError(f"unknown name {node.id!r}")
        return self._data(node, (node.id,))

    def _data(self, node, parts):
        key = self.resolve(parts)  # raises ExpressionError naming what is unknown
        self.reads.append(key)
        return ast.copy_location(ast.Name(id=key, ctx=ast.Load()), node)

    def visit_Call(self, node):
        if isinstance(node.func, ast.Attribute):
            raise ExpressionError("attribute access is not allowed (no methods: only FUNCTIONS)")
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExpressionError(
                f"unknown function {name!r} (allowed: {', '.join(sorted(FUNCTIONS))})"
            )
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ExpressionError("functions take plain arguments only")
        node.args = [self.visit(arg) for arg in node.args]
        return node

    def visit_BinOp(self, node):
        if isinstance(node.op, ast.Pow):
            exponent = node.right
            if (
                not isinstance(exponent, ast.Constant)
                or isinstance(exponent.value, bool)
                or not isinstance(exponent.value, int | float)
                or abs(exponent.value) > MAX_EXPONENT
            ):
                raise ExpressionError(
                    f"an exponent must be a number from -{MAX_EXPONENT} to {MAX_EXPONENT}"
                )
        return self.generic_visit(node)

    def visit_Compare(self, node):
        for op in node.ops:
            if type(op) not in _OPERATORS:
                raise ExpressionError(f"the comparison {type(op).__name__} is not allowed")
        return self.generic_visit(node)

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, str) and len(value) > MAX_TEXT_CONSTANT:
            raise ExpressionError(f"text constants are at most {MAX_TEXT_CONSTANT} characters")
        if not isinstance(value, bool | int | float | str) and value is not None:
            raise ExpressionError(f"the constant {value!r} is not allowed")
        return node

    def generic_visit(self, node):
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(f"{_describe(node)} is not allowed in a rule")
        return super().generic_visit(node)


def _describe(node):
    names = {
        ast.Subscript: "indexing ([...])",
        ast.Lambda: "lambda",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.NamedExpr: "assignment (:=)",
        ast.JoinedStr: "an f-string",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a mapping",
        ast.Set: "a set",
    }
    return names.get(type(node), type(node).__name__)
