"""Token scopes as ``/token`` receives them (``core/scopes.py``).

Properties: nothing escapes (a malformed scope is ``None``: no access); a parsed scope
splits as the token spec says (the type ends at the first ':', the actions start after
the last), has no empty action, and renders to text that parses back to the same scope;
``parse_scopes`` yields exactly the scopes of its whitespace-separated items, or refuses
more than ``MAX_SCOPES`` of them (``TooManyScopes``, its one documented error).
"""

from __future__ import annotations

from imagegate.core.scopes import MAX_SCOPES, TooManyScopes, parse_scope, parse_scopes


def test_one_input(data: bytes) -> None:
    # Query strings are percent-decoded as UTF-8 with replacement: no lone surrogates.
    text = data.decode("utf-8", "replace")
    scope = parse_scope(text)
    if scope is not None:
        assert scope.type and ":" not in scope.type, scope
        assert scope.name, scope
        assert text == f"{scope.type}:{scope.name}:{text.rpartition(':')[2]}", (text, scope)
        assert all(action and "," not in action for action in scope.actions), scope
        assert set(text.rpartition(":")[2].split(",")) - {""} == scope.actions, (text, scope)
        assert parse_scope(str(scope)) == scope, (text, scope)
    items = text.split()
    try:
        parsed = parse_scopes([text, *items])
    except TooManyScopes:
        assert len(items) * 2 > MAX_SCOPES, (text, items)
        return
    assert len(items) * 2 <= MAX_SCOPES, (text, items)
    expected = [s for s in map(parse_scope, items) if s is not None]
    assert parsed == expected * 2, (text, parsed)
