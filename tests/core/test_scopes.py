from imagegate.core.scopes import Scope, parse_scope, parse_scopes


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
