"""``make mutate``'s scratch copy: decorated functions rewritten so mutmut mutates them too."""

from __future__ import annotations

import textwrap

from tests.mutate import MODULES, decorated_functions, undecorated

SOURCE = textwrap.dedent(
    """\
    from functools import lru_cache


    @lru_cache(maxsize=2)
    def cached(x):
        return x


    class Box:
        @property
        def size(self):
            return 1

        @staticmethod
        def kept():
            return 2

        @property
        def twice(self):
            return 3

        @twice.setter
        def twice(self, value):
            pass


    @outer.route("/a", status=201)
    @inner
    async def handler():
        return 4


    def plain():
        return 5
    """
)


def test_decorators_are_applied_by_assignment_after_the_function() -> None:
    text, moved = undecorated(SOURCE)
    assert moved == ["cached", "Box.size", "handler"]
    assert "def cached(x):\n    return x\ncached = cached\n" in text  # the cache dropped
    assert "    def size(self):\n        return 1\n    size = (property)(size)\n" in text
    assert "    @staticmethod\n    def kept():" in text
    assert "    @property\n    def twice(self):" in text  # a name defined twice: left as is
    assert 'handler = (outer.route("/a", status=201))((inner)(handler))' in text
    assert "def plain():\n    return 5\n" in text


def test_the_rewritten_module_behaves_as_the_decorated_one() -> None:
    calls: list[str] = []

    def register(name: str):  # type: ignore[no-untyped-def]
        def add(function):  # type: ignore[no-untyped-def]
            calls.append(f"{name}:{function.__name__}")
            return function

        return add

    source = "@register('a')\n@register('b')\ndef f():\n    return 7\n"
    text, _ = undecorated(source)
    space: dict[str, object] = {"register": register}
    exec(compile(text, "<scratch>", "exec"), space)  # noqa: S102 - our own rewritten text
    assert calls == ["b:f", "a:f"]  # innermost first, as decorators apply
    assert space["f"]() == 7  # type: ignore[operator]


def test_comments_and_pragmas_stay_and_a_decorator_may_span_lines() -> None:
    source = (
        "class A:\n"
        "    @validator(\n"
        "        'x',  # the field\n"
        "    )\n"
        "    def check(cls, v):  # pragma: no mutate\n"
        "        return v"
    )
    text, moved = undecorated(source)
    assert moved == ["A.check"]
    assert "    def check(cls, v):  # pragma: no mutate\n" in text
    assert "    check = (validator(\n        'x',  # the field\n    ))(check)\n" in text
    compile(text, "<scratch>", "exec")


def test_the_policy_operands_registered_by_decorator_are_found() -> None:
    operands = next(m for m in MODULES if m.name == "policies/limits+operands")
    assert {"columns", "count", "date_time", "recipient"} <= set(decorated_functions(operands))
