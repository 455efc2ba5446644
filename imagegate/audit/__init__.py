"""The audit trail: what happened, who did it, and where it goes.

``events`` (the event and the catalog of actions, pure), ``context`` (who acts and from
where, for the request or command being served), ``recorder`` (batched, never-silent
writes off the pull path), ``webhooks`` (delivery to receivers as CNCF distribution
notifications) and ``retention`` (the periodic prune).
"""
