import pytest

from imagegate.core.scopes import MAX_SCOPES, Scope, TooManyScopes, parse_scope, parse_scopes


def test_scope_with_host_and_port_splits_on_last_two_colons() -> None:
    scope = parse_scope("repository:localhost:5000/acme/app:pull,push")
    assert scope == Scope("repository", "localhost:5000/acme/app", frozenset({"pull", "push"}))


def test_malformed_scopes_are_dropped() -> None:
    assert parse_scope("repository") is None
    assert parse_scope("repository::pull") is None
    assert parse_scopes(["repository:a/b:pull repository:c:pull", "nonsense"]) == [
        Scope("repository", "a/b", frozenset({"pull"})),
        Scope("repository", "c", frozenset({"pull"})),
    ]


def test_empty_actions() -> None:
    assert parse_scope("repository:a/b:") == Scope("repository", "a/b", frozenset())
    assert (
        str(Scope("repository", "a/b", frozenset({"push", "pull"}))) == "repository:a/b:pull,push"
    )


def test_a_token_request_names_at_most_max_scopes() -> None:
    many = ["repository:a/b:pull"] * (MAX_SCOPES - 2) + ["repository:c:pull nonsense"]
    assert len(parse_scopes(many)) == MAX_SCOPES - 1  # the malformed one is dropped
    with pytest.raises(TooManyScopes) as refused:
        parse_scopes([*many, "repository:d:pull"])
    assert refused.value.status == 400
    assert refused.value.message.startswith(f"a token request may name at most {MAX_SCOPES}")
    assert refused.value.detail == {"scopes": MAX_SCOPES + 1, "limit": MAX_SCOPES}
